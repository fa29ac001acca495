#!/usr/bin/env bash
# Prints the path of a Python with the `openai` package, for the serve tests and
# scripts/serve-load.py: a virtual environment under .build/ (ignored by git, so a CI run
# makes it once and every later test of the run reuses it), created with `python3 -m venv`
# and filled from PyPI with pip on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/serve-venv
if ! "$venv/bin/python" -c "import openai" 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p .build
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai>=1.40" >&2
fi
echo "$PWD/$venv/bin/python"
