#!/usr/bin/env python3
"""Hugging Face `tokenizers` side of `nemotron-run bench-tokenizer`: the same corpus, built the same way
(the JSON-lines strings, or the "text" of JSON objects, repeated to about 4 MB), one `encode(text, add_special_tokens=False)` call per string on one
thread, a fresh tokenizer for every pass (so no cache carries over), best of --repeats passes.

  RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 scripts/bench-tokenizer-peer.py --model DIR --jsonl F

(The script sets both variables itself before importing `tokenizers`.) Needs `tokenizers`.
"""
import argparse, json, os, time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="directory with tokenizer.json")
    parser.add_argument("--jsonl", required=True, help='corpus: one JSON string, or object with a "text" string, per line')
    parser.add_argument("--repeats", type=int, default=5, help="passes over the corpus (the best is reported)")
    args = parser.parse_args()

    with open(args.jsonl, encoding="utf-8") as f:
        values = [json.loads(line) for line in f.read().split("\n") if line]
    texts = [v if isinstance(v, str) else v.get("text") for v in values]
    texts = [t for t in texts if isinstance(t, str)]
    size = sum(len(t.encode("utf-8")) for t in texts)
    corpus = texts * max(1, 4_000_000 // max(1, size))
    total = sum(len(t.encode("utf-8")) for t in corpus)
    path = os.path.join(args.model, "tokenizer.json")
    encode_best = decode_best = 0.0
    tokens = 0
    for _ in range(args.repeats):
        tok = Tokenizer.from_file(path)
        start = time.perf_counter()
        ids = [tok.encode(t, add_special_tokens=False).ids for t in corpus]
        encode_best = max(encode_best, total / (time.perf_counter() - start) / 1e6)
        tokens = sum(len(i) for i in ids)
        start = time.perf_counter()
        decoded = [tok.decode(i, skip_special_tokens=False) for i in ids]
        decode_best = max(decode_best, total / (time.perf_counter() - start) / 1e6)
        assert len(decoded) == len(corpus)
    print(f"tokenizers {__import__('tokenizers').__version__}: {len(corpus)} strings, {total / 1e6:.2f} MB, {tokens} tokens; "
          f"encode {encode_best:.1f} MB/s, decode {decode_best:.1f} MB/s (best of {args.repeats}, one thread)")


if __name__ == "__main__":
    main()
