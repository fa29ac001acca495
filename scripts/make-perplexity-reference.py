#!/usr/bin/env python3
"""Reference perplexities for the `perplexity` command, computed with transformers.

Writes Tests/NemotronTests/Fixtures/perplexity/:
  tokenizer.json, tokenizer_config.json  a small byte-level BPE (vocab 512, `<s>` added by its
                                         post-processor), to pair with the weights of the `dense`
                                         fixture (vocab 512) in a checkpoint directory the test assembles
  text.txt                               the text scored
  reference.json                         per (context, stride): tokens, tokens_scored, mean_nll, perplexity

Protocol (Hugging Face guide "Perplexity of fixed-length models"): windows of `context` tokens
start every `stride` tokens until one reaches the end; each window scores only the tokens the
previous one did not reach, each from the logits of the position before it in the window, so a
window's first token is never scored. The NLL is summed per token in float64.
Needs torch (CPU wheel), transformers >= 5 and tokenizers; the tests do not.
"""
import json, math, os
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors
from transformers import NemotronHForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NemotronTests", "Fixtures")
OUT = os.path.join(ROOT, "perplexity")

TEXT = """Perplexity measures how well a language model predicts a text. For a model that reads a
fixed number of tokens at a time, the text is cut into windows; each window conditions on the
tokens before it and scores the ones it adds. Shorter strides give every token more context and
cost more passes over the model.

Mamba layers carry a state from token to token, attention layers look back over a cache, and the
mixture-of-experts layers route each token to a few experts. The engine must give the same
numbers as the reference, whatever the number of processes: 1, 2 or 4 ranks, or ranks that each
take their own windows. Über-naïve café text, 日本語, and emoji 🙂 keep the byte-level path honest.
"""


def windows(count, context, stride):
    out, previous, begin = [], 0, 0
    while begin < count:
        end = min(begin + context, count)
        first = max(previous, begin + 1)
        out.append((begin, end, first))
        previous = end
        if end == count:
            break
        begin += stride
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT] * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    assert tok.get_vocab_size() <= 512
    tok.save(os.path.join(OUT, "tokenizer.json"))
    with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f, indent=2)
    with open(os.path.join(OUT, "text.txt"), "w", encoding="utf-8") as f:
        f.write(TEXT)

    ids = tok.encode(TEXT).ids
    assert ids[0] == 1
    model = NemotronHForCausalLM.from_pretrained(os.path.join(ROOT, "dense"), torch_dtype=torch.float32).eval()
    cases = []
    for context, stride in [(64, 32), (48, 17), (40, 40), (512, 256)]:
        total, scored = 0.0, 0
        for begin, end, first in windows(len(ids), context, stride):
            with torch.no_grad():
                logits = model(torch.tensor([ids[begin:end]])).logits[0].double()
            logprobs = torch.log_softmax(logits, dim=-1)
            for t in range(first, end):
                total -= logprobs[t - 1 - begin, ids[t]].item()
                scored += 1
        cases.append({"context": context, "stride": stride, "tokens": len(ids), "tokens_scored": scored,
                      "mean_nll": total / scored, "perplexity": math.exp(total / scored)})
        print(cases[-1])
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"model": "dense", "cases": cases}, f, indent=2)


if __name__ == "__main__":
    main()
