#!/usr/bin/env bash
# The whole test suite from a fresh clone: system packages, the format check, then `swift test`
# (Swift Testing; includes tests that run the built nemotron-run binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh
swift build --build-tests
swift test --skip-build
