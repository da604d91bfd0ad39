#!/usr/bin/env bash
# Create .venv (once) and install islandrun with its test extras into it.
# Idempotent: re-installs only when pyproject.toml changed, so llama-cpp-python
# (compiled from source, ~8 min on 2 cores) is built once; pip's wheel cache
# keeps the build for fresh clones on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "islandrun needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.islandrun-installed
# sha256sum on Linux, shasum on macOS.
if command -v sha256sum >/dev/null; then hash=(sha256sum); else hash=(shasum -a 256); fi
want="$("${hash[@]}" pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "==> installing islandrun and dependencies (first time: llama-cpp-python compiles, ~8 min)"
    .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
    .venv/bin/python -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
fi
