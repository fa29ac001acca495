#!/usr/bin/env bash
# The soak: GENERATIONS generations (default 1000) in one process, prompts of varied lengths in
# batches of 1-3, greedy and sampled, with stop strings and chat-rendered prompts, on MODEL
# (default models/demo-dense); prints the peak resident memory of every 100 and fails if the
# last 100's peak is more than 5 % above the first 100's. (Tests/NemotronTests/Reliability/
# SoakTests.swift; the loop and the measure are `MemorySoak` in the library.)
#
#   scripts/soak.sh [GENERATIONS] [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
NEMOTRON_SOAK=${1:-1000} NEMOTRON_SOAK_MODEL=$(realpath "${2:-models/demo-dense}") \
    swift test --skip-build --filter "SoakTests" 2>&1 | grep -E "soak:|✔|✘|error"
