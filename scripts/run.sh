#!/usr/bin/env bash
# The default run: installs what is missing, builds, and generates from the trained demo model
# shipped in models/demo-dense under `mpirun -np 2` (tensor parallel over 2 processes).
# Extra arguments go to `nemotron-run generate`, e.g. ./scripts/run.sh --json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release >&2
flags=()
[[ $(id -u) -eq 0 ]] && flags+=(--allow-run-as-root)
(( $(nproc) < 2 )) && flags+=(--oversubscribe)
exec mpirun "${flags[@]}" -np 2 .build/release/nemotron-run generate --config configs/demo.yaml "$@"
