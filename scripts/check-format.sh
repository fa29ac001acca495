#!/usr/bin/env bash
# The format check CI runs: swift-format's lint with the repository's .swift-format (4-space
# indent, 120 columns), plus a plain check that no Swift line is longer than 120 characters
# (swift-format cannot break long string literals or comments, so it does not flag them).
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict --recursive Sources Tests Package.swift
python3 - <<'PY'
import subprocess, sys
long = [(f, n + 1) for f in subprocess.check_output(["git", "ls-files", "*.swift"], text=True).split()
        for n, line in enumerate(open(f, encoding="utf-8").read().split("\n")) if len(line) > 120]
for f, n in long: print(f"{f}:{n}: line longer than 120 characters", file=sys.stderr)
sys.exit(1 if long else 0)
PY
echo "format check passed" >&2
