#!/usr/bin/env bash
# Set up .venv and run the local demo of everything the node can do so far.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/islandnode demo "$@"
