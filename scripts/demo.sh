#!/usr/bin/env bash
# Set up .venv and run the healthcare demo on a local mesh of real nodes (loopback only).
# Arguments go to `islandnode demo` (--short, --dir DIR, --report FILE); ISLANDRUN_DEMO_SHORT=1
# also selects the short form, for CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/islandnode demo "$@"
