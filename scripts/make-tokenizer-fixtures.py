#!/usr/bin/env python3
"""Train four small byte-level BPE tokenizers with Hugging Face `tokenizers` and record what it
produces for a varied corpus, so the Swift tokenizer can be checked for exact parity.

  llama3-style:        Split(Llama-3 regex) + ByteLevel(use_regex=False), special tokens, no post-processor
  gpt2-style:          ByteLevel(add_prefix_space=False) with its built-in GPT-2 regex
  tekken-style:        Split(Mistral tekken regex, as in Nemotron-H's tokenizers) + ByteLevel; `<unk>` `<s>` `</s>`
                       and `<SPECIAL_n>` specials; TemplateProcessing post-processor adding `<s>`
  llama3-ignore-merges: like llama3-style, with `ignore_merges: true`, whole words added to the vocabulary that no
                       merge sequence builds, and Llama 3's post-processor Sequence[ByteLevel, TemplateProcessing]

Writes Tests/NemotronTests/Fixtures/tokenizers/<name>/{tokenizer.json, tokenizer_config.json, cases.jsonl}. Each
case line is {"text", "ids", "decoded", "ids_special", "decoded_special"}: encode(text, add_special_tokens=False)
and add_special_tokens=True, each decoded with skip_special_tokens=False. When `transformers` is importable, the
script also checks that AutoTokenizer(dir)(text)["input_ids"] equals ids_special (transformers 5 ignores
tokenizer_config.json's add_bos_token when tokenizer.json exists).

Also writes split-cases.jsonl: {"text", "gpt2", "llama3", "tekken"}, the pieces each split pattern gives for
short random strings drawn from character classes the patterns treat differently (letters of every case
category, marks, digits, whitespace kinds, CR/LF, slash, punctuation), to check the hand-written scanners.

Needs `tokenizers` (and optionally `transformers`).
"""
import json, os, random
from tokenizers import Tokenizer, models, pre_tokenizers, processors, decoders, trainers, Regex

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "NemotronTests", "Fixtures", "tokenizers")
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
          r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
          r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
TEKKEN_SPECIAL = ["<unk>", "<s>", "</s>"] + [f"<SPECIAL_{i}>" for i in range(3, 20)]

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
MORE = """HTTPServer iPhone McDonald's XMLHttpRequest camelCaseWord snake_case_name SCREAMING_CASE ABCdef aBC
https://example.com/path/to/file.txt?q=1&r=2#frag  C:\\Users\\name\\file  ./a/b//c/ ;/\n/ <tag attr="v">x</tag>
שָׁלוֹם עוֹלָם  مَرْحَبًا بِالْعَالَمِ  Ǆemal ǅemal ǈuba ʰʲʷ ˈstress 々 ª º ℌ ℍ Ⅻ ½ ² ³ ٣٤٥ ०१२ ๑๒
a\u0301 e\u0301\u0323 \u0301start o\u0308\u0304 Z\u0335\u0321A\u0336L\u0337G\u0338O  ᄀ\u1161 ก\u0e34 น\u0e49ำ
tabs\tand\u000bvertical\u000cform\u0085nel\u2028ls\u2029ps\u3000ideo\u00a0nbsp\u2009thin\u202fnarrow\u001cfs
mixed:\r\n\r\nwindows\rmac\nunix  \n  \n\t\n  end   """


def lines(more=True):
    return [l for l in (PROSE + "\n" + CODE + "\n" + WORLD + "\n" + DIGITS + ("\n" + MORE if more else "")).split("\n") if l]


def corpus(rng, more):
    """Training text (the two older tokenizers keep the corpus they were first trained on)."""
    base = lines(more) if more else (PROSE + "\n" + CODE + "\n" + WORLD + "\n" + DIGITS).split("\n")
    out = list(base)
    for _ in range(3000):
        a, b = rng.choice(base), rng.choice(base)
        out.append(a[rng.randrange(len(a) + 1):] + " " + b[: rng.randrange(len(b) + 1)])
    return out


def cases(rng):
    """Text cases shared by every tokenizer (each adds strings from its own vocabulary)."""
    base = lines()
    out = list(base)
    out += ["", " ", "  ", "\n", "\n\n\n", "\t\t", " \n \n", "a  b   c    d", "trailing spaces   ", "   leading",
            "line\r\nwindows\r\n", "x\n\n\ny", "mixed \t\n whitespace \u00a0 nbsp", "ÀÉÎÕÜ àéîõü", "e\u0301 composed",
            "I'M LOUD, YOU'RE LOUD, WE'LL SEE", "don't won't can't shouldn't", "'s 't 're 've 'm 'll 'd",
            "1234567890", "12 345 6789", "3.0e+8", "🚀🚀🚀", "👩‍👩‍👧‍👦", "日本", "a😀b", "\u200b zero width"]
    # U+FEFF is text like any other: at the start, repeated, inside, before specials.
    out += ["\ufeff", "\ufeffHello", "\ufeff\ufeff two", "\ufeff hello", "a\ufeffb", "\ufeff<s>x", "\ufeff\n", "x\ufeff",
            "\ufeff123", "\ufeffÉcole", "\ufeff日本語"]
    # Contractions, numbers, whitespace runs, slashes and newlines.
    out += ["it's", "It'S", "IT'S", "we'LL", "you'Re", "they'VE", "I'D", "'", "''", "'ss", "'x", " 's", "rock'n'roll"]
    out += ["0", "00", "007", "1.5", "1/2", "10/10/2010", "3,141,592", "-0", "+1", "1e9", "٣٤٥", "١٢٣", "½¾", "²³", "Ⅻ"]
    out += [" " * n for n in range(1, 9)] + ["\t" * n for n in range(1, 4)] + ["\n" * n for n in range(1, 5)]
    out += ["a" + " " * n + "b" for n in range(1, 7)] + [" " * n + "x" for n in range(1, 5)] + ["x" + " " * n for n in range(1, 5)]
    out += ["a\r\nb", "\r\n", "\r", "\r\r\n\n", " \r\n ", "a \n b", "a\t\n\tb", "x  \n\n  y   z", "a/b", "a//b", "/", "///",
            "?/\n/x", "end.\n/", "a;\n/b", "):\r\n/", " /usr/bin/env", "</", "//comment\n", "\\n", "\\\\"]
    # Combining marks, accents, RTL, letter case categories.
    out += ["\u0301", "\u0301\u0302", "\u0301A.", " \u0301x", "1\u0301", "a\u0301b\u0302C\u0303", "É", "E\u0301", "ÉCOLE école",
            "Ǆ", "ǅ", "ǆ", "ǅemal", "ʰ", "ʰa", "Aʰ", "Aʰ.", "ʰA", "々々", "ªº", "中A", "A中", "中a", "ab中CD", "Ωmega", "ΣΊΣΥΦΟΣ",
            "şğüöçİı", "Straße STRASSE", "ﬁne ﬂow", "ＡＢＣ１２３", "ｶﾀｶﾅ", "שָׁלוֹם", "مَرْحَبًا", "עברית123", "abc עברית def",
            "हिन्दी", "ภาษาไทย", "한국어", "ᄀ\u1161", "Z\u0335A\u0336L\u0337G\u0338O", "\u0915\u094d\u0937", "n\u0303o"]
    # Other whitespace and control characters.
    out += ["\u000b", "\u000c", "\u0085", "\u2028", "\u2029", "\u3000", "\u00a0", "\u2009", "\u001c\u001d\u001e\u001f",
            "a\u0085b", "a\u2028b", "x\u00a0\u00a0y", "\u0000", "a\u0007b", "\u200d", "\u200e\u200f", "\ue000 private"]
    # Emoji sequences.
    out += ["😀", "👍🏽", "🇫🇷🇩🇪", "❤️", "👨‍👩‍👧", "1️⃣", "🏳️‍🌈", "😀😀", " 😀", "😀\n", "a😀", "😀a"]
    specials = LLAMA3_SPECIAL + ["<|eot_id|><|eot_id|>", "<|begin_of_text|>Hello", "text<|end_of_text|>", "a <|eot_id|> b",
                                 "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>", "<|endoftext|>",
                                 "<s>", "</s>", "<unk>", "<s>Hello</s>", " <s> ", "<s><s>", "<SPECIAL_10>System\nHi<SPECIAL_12>\n",
                                 "<SPECIAL_11>User\nQ\n<SPECIAL_11>Assistant\n", "<SPECIAL_1000>", "<SPECIAL_1>", "<s"]
    out += specials
    pieces = base + specials + ["  ", "\n", "\t", "😀", "ß", "—", "123", "x", "\u0301", "ǅ", "ʰ", "/", "\r\n", "'s", "\ufeff",
                                "HTTP", "iPhone", "中", "ש", "٣"]
    while len(out) < 640:
        n = rng.randrange(1, 6)
        out.append("".join(rng.choice(pieces)[: rng.randrange(1, 40)] + rng.choice(["", " ", "  ", "\n", "/"]) for _ in range(n)))
    return out


def vocabulary_words(tok, rng, count):
    """Strings that are whole tokens of the vocabulary (longer tokens, as the text they stand for)."""
    special = set(tok.get_added_tokens_decoder())
    long = sorted(i for t, i in tok.get_vocab(with_added_tokens=False).items() if len(t) >= 4 and i not in special)
    words = [tok.decode([i]) for i in rng.sample(long, min(count, len(long)))]
    return words + [" ".join(rng.sample(words, 3)) for _ in range(10)]


def train(specials, pre, rng, vocab_size, ignore_merges=False, more=True):
    tok = Tokenizer(models.BPE(byte_fallback=False, ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(rng, more), trainer)
    return tok


WHOLE_WORDS = [" hello", " world", "Hello", " tokenizer", " Nemotron", " the", "The", " quick", " brown", " merges",
               "ignore", " ignore", " vocabulary", " Zürich", " naïve", " über", " 日本語", " テキスト", "...", "?!", " ->",
               "  ", "   ", "\n\n", " {", "});", "123", "999", "00", " :)", "HTTP", " Server", " iPhone", "\t\t", " ====",
               " ü", "é", " 😀", "😀", "👍🏽"]


def add_whole_words(tok):
    """Adds WHOLE_WORDS (as byte-level text) to the model vocabulary with no merges that build them, so only
    ignore_merges can ever produce them, then reloads the tokenizer."""
    byte_char = {b: c for b, c in zip(range(256), bytes_to_unicode())}
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    next_id = max(max(vocab.values()), max(t["id"] for t in data["added_tokens"])) + 1
    for word in WHOLE_WORDS:
        key = "".join(byte_char[b] for b in word.encode("utf-8"))
        if key not in vocab:
            vocab[key] = next_id
            next_id += 1
    data["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(data))


def bytes_to_unicode():
    """GPT-2's byte-to-character table (characters in byte order)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def template(bos, bos_id):
    return processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)])


def build():
    rng = random.Random(1234)
    split = lambda pattern: pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    out = {}
    tok = train(LLAMA3_SPECIAL, split(LLAMA3), rng, 1200, more=False)
    out["llama3-style"] = (tok, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": True})
    tok = train(["<|endoftext|>"], pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True), rng, 1200, more=False)
    out["gpt2-style"] = (tok, {"bos_token": None, "eos_token": "<|endoftext|>", "add_bos_token": False})
    tok = train(TEKKEN_SPECIAL, split(TEKKEN), random.Random(7), 3000)
    tok.post_processor = template("<s>", tok.token_to_id("<s>"))
    out["tekken-style"] = (tok, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    tok = add_whole_words(train(LLAMA3_SPECIAL, split(LLAMA3), random.Random(11), 2000, ignore_merges=True))
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        template("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    out["llama3-ignore-merges"] = (tok, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})
    return out


def main():
    try:
        from transformers import AutoTokenizer
    except ImportError:
        AutoTokenizer = None
    shared = cases(random.Random(99))
    for name, (tok, config) in build().items():
        d = os.path.join(ROOT, name)
        os.makedirs(d, exist_ok=True)
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({**config, "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)
        texts = shared + vocabulary_words(tok, random.Random(5), 40)
        if name == "llama3-ignore-merges":
            texts += WHOLE_WORDS + ["".join(WHOLE_WORDS[i:i + 4]) for i in range(0, len(WHOLE_WORDS), 4)]
        hf = AutoTokenizer.from_pretrained(d) if AutoTokenizer else None
        with open(os.path.join(d, "cases.jsonl"), "w") as f:
            for text in texts:
                ids = tok.encode(text, add_special_tokens=False).ids
                special = tok.encode(text, add_special_tokens=True).ids
                if hf is not None:
                    assert hf(text)["input_ids"] == special, (name, text)
                f.write(json.dumps({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
                                    "ids_special": special, "decoded_special": tok.decode(special, skip_special_tokens=False)},
                                   ensure_ascii=False) + "\n")
        print(f"{name}: vocab {tok.get_vocab_size()}, {len(texts)} cases, transformers check: {hf is not None}")
    write_split_cases()


def write_split_cases():
    rng = random.Random(2024)
    alphabet = ["a", "z", "A", "Z", "é", "É", "ß", "ǅ", "ǈ", "ʰ", "ˈ", "々", "ª", "中", "ש", "ا", "ก", "\u0301", "\u0308",
                "\u093f", "\u0e34", "\u20dd", "0", "9", "٣", "½", "²", "Ⅻ", " ", " ", " ", "\t", "\u00a0", "\u3000", "\u2028",
                "\u0085", "\u000b", "\r", "\n", "/", ".", ",", "'", "s", "t", "L", "D", "-", "_", "😀", "\ufeff", "\u200b",
                "€", "\u0000", "\u001f"]
    splitters = {name: pre_tokenizers.Split(Regex(p), behavior="isolated") for name, p in
                 [("gpt2", GPT2), ("llama3", LLAMA3), ("tekken", TEKKEN)]}
    with open(os.path.join(ROOT, "split-cases.jsonl"), "w") as f:
        for _ in range(2000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
            row = {"text": text}
            for name, s in splitters.items():
                row[name] = [piece for piece, _ in s.pre_tokenize_str(text)]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print("split-cases: 2000")


if __name__ == "__main__":
    main()
