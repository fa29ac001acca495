#!/usr/bin/env bash
# Scaling measurements on a many-core host (README, "The 16-core host"): every figure is printed
# by nemotron-run's own bench commands, one JSON object per line, into OUTDIR.
#
#   scripts/host-scaling.sh OUTDIR [bench] [allreduce] [serve]     (default: all three)
#
#   bench      the 0.74 B bench model (made with scripts/make-bench-model.py if missing), bf16 and
#              int8 weights: one process with every core, then mpirun -np 2, 4, 8 and 16 with
#              cores / ranks threads each (bench.jsonl)
#   allreduce  bench-allreduce at 2, 4, 8 and 16 ranks, T = 1, 8, 64, 512, H = 2048, 4096
#              (allreduce-N.jsonl)
#   serve      scripts/serve-load.py on the demo model at -np 2, continuous batching against one
#              request at a time (serve.txt)
#
# NEMOTRON_BIN picks the binary (default .build/release/nemotron-run); CORES the core count;
# SERVE_CONCURRENCY the serve levels (default "1 4 16 64").
# Ranks run unbound (--bind-to none); their threads are placed by the OS (NEMOTRON_PIN=1 pins them, see
# CPUAffinity).
set -uo pipefail
OUT=${1:?usage: scripts/host-scaling.sh OUTDIR [bench] [allreduce] [serve]}
shift
SECTIONS=${*:-bench allreduce serve}
BIN=${NEMOTRON_BIN:-.build/release/nemotron-run}
CORES=${CORES:-$(nproc)}
MPI=(mpirun --bind-to none --oversubscribe)
[[ $(id -u) -eq 0 ]] && MPI+=(--allow-run-as-root)
mkdir -p "$OUT"
log() { echo "host-scaling: $*" >&2; }

bench() {
    [[ -d models/bench-0.74b ]] || python3 scripts/make-bench-model.py >&2
    for quantize in none int8; do
        local common=(--model models/bench-0.74b --quantize "$quantize" --prompt-tokens 512 --new-tokens 64
            --repetitions 3 --json)
        log "bench $quantize: 1 x $CORES"
        "$BIN" bench "${common[@]}" --threads "$CORES" | sed "s/^{/{\"ranks\":1,\"quantize\":\"$quantize\",/" \
            >>"$OUT/bench.jsonl"
        for ranks in 2 4 8 16; do
            ((ranks <= CORES)) || continue
            log "bench $quantize: $ranks x $((CORES / ranks))"
            "${MPI[@]}" -np "$ranks" "$BIN" bench "${common[@]}" --threads $((CORES / ranks)) |
                sed "s/^{/{\"ranks\":$ranks,\"quantize\":\"$quantize\",/" >>"$OUT/bench.jsonl"
        done
    done
}

allreduce() {
    for ranks in 2 4 8 16; do
        ((ranks <= CORES)) || continue
        log "bench-allreduce: $ranks ranks"
        "${MPI[@]}" -np "$ranks" "$BIN" bench-allreduce --tokens 1 8 64 512 --hidden 2048 4096 --iterations 100 \
            --json >"$OUT/allreduce-$ranks.jsonl"
    done
}

serve() {
    local threads=$((CORES / 2))
    log "serve: 2 ranks x $threads threads"
    # shellcheck disable=SC2086 # SERVE_CONCURRENCY is a list of levels
    MPIRUN_FLAGS="--bind-to none" python3 scripts/serve-load.py --binary "$BIN" --concurrency ${SERVE_CONCURRENCY:-1 4 16 64} \
        --serve "continuous batching=--config configs/serve-demo.yaml --threads $threads" \
        --serve "one request at a time=--config configs/serve-demo.yaml --threads $threads --max-batch-size 1" \
        >"$OUT/serve.txt"
}

for section in $SECTIONS; do
    case $section in
    bench | allreduce | serve) $section ;;
    *) echo "host-scaling: unknown section '$section' (bench, allreduce or serve)" >&2 && exit 2 ;;
    esac
done
