#!/usr/bin/env python3
"""nemotron-run `bench` against llama.cpp's `llama-bench` on the same weights and threads, in one run.

  scripts/bench-vs-llama.py [--threads 2] [--rounds 2] [--cases dense-bf16,dense-int4,...]
                            [--gguf-dir /work/gguf] [--prompt-tokens 512] [--new-tokens 128]

Each case pairs one of our runs (a checkpoint and its flags) with a GGUF converted from the same
checkpoint by ../shared/tools/llama-cpp-peer.sh (`convert`, then `quantize` to Q8_0 / Q4_0):
  dense-*  models/bench-0.74b  (python3 scripts/make-bench-model.py)
  moe-*    models/bench-moe    (python3 scripts/make-bench-model.py --preset moe-bench --out models/bench-moe)
GGUF names: <gguf-dir>/bench-0.74b-{bf16,Q8_0,Q4_0}.gguf and bench-moe-{...}.gguf.

The two engines alternate, case by case, for --rounds rounds, so outside load on a shared machine
falls on both; the table prints every round's figures and the ratio of the medians. Decode is
tokens/s over --new-tokens generated tokens, prefill tokens/s over a --prompt-tokens prompt.
"""
import argparse, json, os, statistics, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(ROOT, "..", "shared", "tools", "llama-cpp-peer.sh")

# name: (checkpoint, our extra flags, GGUF stem, GGUF type)
CASES = {
    "dense-bf16": ("models/bench-0.74b", [], "bench-0.74b", "bf16"),
    "dense-int8": ("models/bench-0.74b", ["--quantize", "int8"], "bench-0.74b", "Q8_0"),
    "dense-int4": ("models/bench-0.74b", ["--quantize", "int4"], "bench-0.74b", "Q4_0"),
    "moe-bf16": ("models/bench-moe", [], "bench-moe", "bf16"),
    "moe-int8": ("models/bench-moe", ["--quantize", "int8"], "bench-moe", "Q8_0"),
    "moe-int4": ("models/bench-moe", ["--quantize", "int4"], "bench-moe", "Q4_0"),
}


def ours(binary, model, flags, args):
    command = [binary, "bench", "--model", model, "--threads", str(args.threads), "--prompt-tokens",
               str(args.prompt_tokens), "--new-tokens", str(args.new_tokens), "--repetitions", "1", "--json"] + flags
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench-vs-llama: {' '.join(command)} failed:\n{out.stderr}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["prefill_tokens_per_second"], report["decode_tokens_per_second"], report["weight_bytes_held"]


def peer(llama_bench, gguf, args):
    command = [llama_bench, "-m", gguf, "-t", str(args.threads), "-p", str(args.prompt_tokens), "-n",
               str(args.new_tokens), "-r", "1", "-o", "json"]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench-vs-llama: {' '.join(command)} failed:\n{out.stderr}")
    tests = json.loads(out.stdout)
    prefill = next(t["avg_ts"] for t in tests if t["n_prompt"] > 0 and t["n_gen"] == 0)
    decode = next(t["avg_ts"] for t in tests if t["n_gen"] > 0 and t["n_prompt"] == 0)
    return prefill, decode, os.path.getsize(gguf)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--gguf-dir", default="/work/gguf")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/nemotron-run"))
    args = parser.parse_args()
    names = args.cases.split(",")
    for name in names:
        if name not in CASES:
            sys.exit(f"bench-vs-llama: unknown case {name!r}; known: {', '.join(CASES)}")
    llama_bench = subprocess.run(["bash", PEER, "bin", "llama-bench"], capture_output=True, text=True).stdout.strip()
    if not llama_bench:
        sys.exit("bench-vs-llama: llama-bench is not built; run ../shared/tools/llama-cpp-peer.sh setup")
    results = {name: {"ours": [], "peer": []} for name in names}
    for round_ in range(args.rounds):
        for name in names:
            model, flags, stem, kind = CASES[name]
            gguf = os.path.join(args.gguf_dir, f"{stem}-{kind}.gguf")
            if not os.path.exists(gguf):
                sys.exit(f"bench-vs-llama: {gguf} is missing; convert {model} with ../shared/tools/llama-cpp-peer.sh")
            results[name]["peer"].append(peer(llama_bench, gguf, args))
            results[name]["ours"].append(ours(args.binary, model, flags, args))
            print(f"round {round_ + 1} {name}: ours {results[name]['ours'][-1][:2]}, "
                  f"llama.cpp {results[name]['peer'][-1][:2]}", file=sys.stderr, flush=True)

    print(f"{args.threads} threads, pp{args.prompt_tokens} and tg{args.new_tokens}, {args.rounds} alternating rounds "
          f"(tokens/s per round; ratio of the medians)")
    print("| case | llama.cpp type | decode: nemotron-run | decode: llama.cpp | ratio | prefill: nemotron-run "
          "| prefill: llama.cpp | ratio | weights held / GGUF file |")
    print("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda values: " / ".join(f"{v:.1f}" for v in values)
    for name in names:
        o, p = results[name]["ours"], results[name]["peer"]
        od, pd = [r[1] for r in o], [r[1] for r in p]
        op, pp = [r[0] for r in o], [r[0] for r in p]
        print(f"| {name} | {CASES[name][3]} | {fmt(od)} | {fmt(pd)} | "
              f"{statistics.median(od) / statistics.median(pd):.2f}× | {fmt(op)} | {fmt(pp)} | "
              f"{statistics.median(op) / statistics.median(pp):.2f}× | "
              f"{o[0][2] / 1e9:.3f} GB / {p[0][2] / 1e9:.3f} GB |")


if __name__ == "__main__":
    main()
