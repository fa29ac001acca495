#!/usr/bin/env python3
"""Evaluate a Nemotron-H checkpoint with transformers on CPU: the reference numbers that
`nemotron-run perplexity` and `generate` are compared with.

  scripts/eval-demo-model.py --model models/demo-dense [--text models/demo-dense/validation.txt]
      [--context 512] [--stride 256] [--corpus /usr/share/doc/python3.11/html/_sources]
      [--prompt TEXT ...] [--max-new-tokens 48] [--out models/demo-dense/evaluation.json]

Perplexity follows the Hugging Face guide "Perplexity of fixed-length models": the text is
tokenized as tokenizer(text) does (special tokens included, so <s> comes first); windows of
--context tokens start every --stride tokens; each window scores only the tokens the previous
window did not (its last end..this end), and the first token is never scored. Every token but
the first is scored exactly once, so tokens_scored = len(ids) - 1. The guide's code weights each
window's mean loss by (scored - 1) instead of scored; that variant is reported as
`perplexity_guide_code` beside the exact one.

The unigram baseline scores the same tokens with p(t) = (count(t) + 1) / (N + V), counts over the
training split as it was trained on (<s> doc </s> per training file, see splits.json; the files
are read from --corpus).

The model runs in float32 (the bf16 weights upcast) with the Mamba dt clamp off
(time_step_limit (0, inf), what nemotron-run does, whatever transformers version reads the
config). Continuations: greedy and sampled (temperature 0.8, top-p 0.95, seeded) for each prompt.
"""
import argparse, json, math, os, time

import numpy as np
import torch
import torch.nn.functional as F

PROMPTS = ["The :mod:`json` module", "To create a virtual environment, run", "A generator is a function that"]


def load(model_dir, threads):
    from transformers import AutoTokenizer, NemotronHForCausalLM
    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = NemotronHForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    for layer in model.model.layers:
        if hasattr(layer.mixer, "time_step_limit"):
            layer.mixer.time_step_limit = (0.0, float("inf"))
    return tok, model


@torch.no_grad()
def perplexity(model, ids, context, stride, batch=4):
    """Exact NLL sum / count over the guide's windows, plus the guide code's weighting."""
    windows, prev_end = [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + context, len(ids))
        windows.append((begin, end, end - prev_end))  # score the last (end - prev_end) tokens
        prev_end = end
        if end == len(ids):
            break
    nll_sum, count, guide_sum, guide_count = 0.0, 0, 0.0, 0
    t0 = time.time()
    for i in range(0, len(windows), batch):
        group = windows[i: i + batch]
        lengths = {e - b for b, e, _ in group}
        chunks = [group] if len(lengths) == 1 else [[w] for w in group]
        for chunk in chunks:
            x = torch.tensor([ids[b:e] for b, e, _ in chunk])
            logp = F.log_softmax(model(input_ids=x, use_cache=False).logits.float(), dim=-1)
            for row, (b, e, trg) in enumerate(chunk):
                n = e - b
                first = max(n - trg, 1)  # positions scored: first..n-1, predicted from the one before
                target = x[row, first:n]
                nll = -logp[row, first - 1: n - 1].gather(-1, target[:, None]).squeeze(-1).double()
                nll_sum += nll.sum().item()
                count += len(target)
                guide_n = trg - 1
                guide_sum += nll.mean().item() * guide_n
                guide_count += guide_n
    seconds = time.time() - t0
    return {"tokens": len(ids), "windows": len(windows), "tokens_scored": count, "mean_nll": nll_sum / count,
            "perplexity": math.exp(nll_sum / count), "perplexity_guide_code": math.exp(guide_sum / guide_count),
            "guide_code_token_count": guide_count, "seconds": round(seconds, 1),
            "tokens_per_second": round(count / seconds, 1)}


def unigram(tok, ids, corpus, splits):
    counts = np.zeros(len(tok), dtype=np.int64)
    for path in splits["train_files"]:
        with open(os.path.join(corpus, path), encoding="utf-8") as f:
            text = f.read()
        counts += np.bincount([1] + tok(text, add_special_tokens=False)["input_ids"] + [2], minlength=len(counts))
    n, v = counts.sum(), len(counts)
    target = np.asarray(ids[1:])
    nll = -np.log((counts[target] + 1) / (n + v))
    return {"train_tokens": int(n), "vocab": int(v), "tokens_scored": int(len(target)),
            "mean_nll": float(nll.mean()), "perplexity": float(math.exp(nll.mean()))}


@torch.no_grad()
def continuations(tok, model, prompts, max_new_tokens, seed, temperature, top_p):
    out = []
    for prompt in prompts:
        enc = tok(prompt, return_tensors="pt")
        plen = enc["input_ids"].shape[1]
        greedy = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens)[0, plen:].tolist()
        torch.manual_seed(seed)
        sampled = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                 max_new_tokens=max_new_tokens)[0, plen:].tolist()
        out.append({"prompt": prompt, "prompt_ids": enc["input_ids"][0].tolist(),
                    "greedy_ids": greedy, "greedy": tok.decode(greedy, skip_special_tokens=False),
                    "sampled_ids": sampled, "sampled": tok.decode(sampled, skip_special_tokens=False)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", help="default: MODEL/validation.txt")
    ap.add_argument("--splits", help="default: MODEL/splits.json (training files for the unigram counts)")
    ap.add_argument("--corpus", default="/usr/share/doc/python3.11/html/_sources")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--stride", type=int, default=None, help="default: context / 2")
    ap.add_argument("--prompt", nargs="*", default=PROMPTS)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-unigram", action="store_true")
    ap.add_argument("--out", help="default: MODEL/evaluation.json")
    args = ap.parse_args()
    stride = args.stride or args.context // 2
    if args.context <= 1 or not 1 <= stride <= args.context:
        raise SystemExit("need context > 1 and 1 <= stride <= context")
    text_path = args.text or os.path.join(args.model, "validation.txt")
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    tok, model = load(args.model, args.threads)
    import transformers
    ids = tok(text)["input_ids"]
    result = {"model": args.model, "text": text_path, "text_bytes": len(text.encode()),
              "protocol": {"context": args.context, "stride": stride, "tokenization": "tokenizer(text), <s> first",
                           "dtype": "float32", "dt_clamp": "none (time_step_limit (0, inf))"},
              "transformers_version": transformers.__version__, "torch_version": torch.__version__}
    result["model_perplexity"] = perplexity(model, ids, args.context, stride)
    print(json.dumps(result["model_perplexity"]), flush=True)
    if not args.skip_unigram:
        splits = json.load(open(args.splits or os.path.join(args.model, "splits.json")))
        result["unigram_baseline"] = unigram(tok, ids, args.corpus, splits)
        print(json.dumps(result["unigram_baseline"]), flush=True)
    result["generation"] = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                            "top_p": args.top_p, "seed": args.seed,
                            "samples": continuations(tok, model, args.prompt, args.max_new_tokens, args.seed,
                                                     args.temperature, args.top_p)}
    for s in result["generation"]["samples"]:
        print(f"--- {s['prompt']!r}\n[greedy]  {s['greedy']!r}\n[sampled] {s['sampled']!r}", flush=True)
    out = args.out or os.path.join(args.model, "evaluation.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
