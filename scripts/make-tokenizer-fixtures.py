#!/usr/bin/env python3
"""Train two small byte-level BPE tokenizers with Hugging Face `tokenizers` and record the ids
it produces for a varied corpus, so the Swift tokenizer can be checked for exact parity.

  llama3-style: Split(Llama-3 regex, isolated) + ByteLevel(use_regex=False), special tokens
  gpt2-style:   ByteLevel(add_prefix_space=False) with its built-in GPT-2 regex

Writes Tests/NemotronTests/Fixtures/tokenizers/<name>/{tokenizer.json, tokenizer_config.json,
cases.jsonl}; each case line is {"text", "ids", "decoded"} from encode(text,
add_special_tokens=False) and decode(ids, skip_special_tokens=False). Needs `tokenizers`.
"""
import json, os, random
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, Regex

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NemotronTests", "Fixtures", "tokenizers")
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

PROSE = """The quick brown fox jumps over the lazy dog. It's a truth universally acknowledged, that a single
man in possession of a good fortune, must be in want of a wife. We'll see; they've said they'd come, I'm sure.
Nemotron-H mixes Mamba2 layers with attention, MLP and mixture-of-experts layers. Tensor parallelism splits heads."""
CODE = """func forward(_ x: [Float]) -> [Float] {\n    let y = x.map { max($0, 0) * max($0, 0) }\n    return y\n}
for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }  // dot product
def main():\n\tprint(f"{x:>8.3f}")\n\treturn 0x1F + 0b1010\n"""
WORLD = """Café, naïve, façade, coöperate, Ærøskøbing, São Paulo, Zürich, Ελληνικά, русский текст, עברית, العربية
日本語のテキストと漢字、中文分词测试，한국어 문장입니다. हिन्दी पाठ, ภาษาไทย
Emoji: 😀 😃 🚀 👩‍💻 🇫🇷 ❤️ 👍🏽 — and “quotes”, ‘single’, «guillemets», ellipsis… dash – em — ™ © ®"""
DIGITS = "0 7 42 123 1234 12345 3.14159 -2.5e-10 1,000,000 2026-11-24 12:34:56 $19.99 100% #1 v2.3.4"


def corpus(rng):
    base = (PROSE + "\n" + CODE + "\n" + WORLD + "\n" + DIGITS).split("\n")
    lines = list(base)
    for _ in range(3000):
        a, b = rng.choice(base), rng.choice(base)
        lines.append(a[rng.randrange(len(a) + 1):] + " " + b[: rng.randrange(len(b) + 1)])
    return lines


def cases(rng):
    base = [l for l in (PROSE + "\n" + CODE + "\n" + WORLD + "\n" + DIGITS).split("\n") if l]
    out = list(base)
    out += ["", " ", "  ", "\n", "\n\n\n", "\t\t", " \n \n", "a  b   c    d", "trailing spaces   ", "   leading",
            "line\r\nwindows\r\n", "x\n\n\ny", "mixed \t\n whitespace \u00a0 nbsp", "ÀÉÎÕÜ àéîõü", "e\u0301 composed",
            "I'M LOUD, YOU'RE LOUD, WE'LL SEE", "don't won't can't shouldn't", "'s 't 're 've 'm 'll 'd",
            "1234567890", "12 345 6789", "3.0e+8", "🚀🚀🚀", "👩‍👩‍👧‍👦", "日本", "a😀b", "\u200b zero width"]
    specials = SPECIAL + ["<|eot_id|><|eot_id|>", "<|begin_of_text|>Hello", "text<|end_of_text|>", "a <|eot_id|> b",
                          "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"]
    out += specials
    pieces = base + specials + ["  ", "\n", "\t", "😀", "ß", "—", "123", "x"]
    while len(out) < 360:
        n = rng.randrange(1, 5)
        s = "".join(rng.choice(pieces)[: rng.randrange(1, 40)] + rng.choice(["", " ", "  ", "\n"]) for _ in range(n))
        out.append(s)
    return out


def train(name, pre, rng):
    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIAL if name == "llama3-style" else ["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(rng), trainer)
    return tok


def main():
    rng = random.Random(1234)
    configs = {
        "llama3-style": pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]),
        "gpt2-style": pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    }
    texts = cases(random.Random(99))
    for name, pre in configs.items():
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        tok = train(name, pre, rng)
        tok.save(os.path.join(d, "tokenizer.json"))
        bos = "<|begin_of_text|>" if name == "llama3-style" else None
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": bos, "eos_token": "<|eot_id|>" if bos else "<|endoftext|>", "add_bos_token": bos is not None,
                       "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
        with open(os.path.join(d, "cases.jsonl"), "w") as f:
            for text in texts:
                ids = tok.encode(text, add_special_tokens=False).ids
                f.write(json.dumps({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)},
                                   ensure_ascii=False) + "\n")
        print(f"{name}: vocab {tok.get_vocab_size()}, {len(texts)} cases")


if __name__ == "__main__":
    main()
