#!/usr/bin/env python3
"""Render every chat template in Tests/NemotronTests/Fixtures/chat/templates/ on every
conversation below with `transformers` (`tokenizer.apply_chat_template`, which runs jinja2's
sandboxed environment with trim_blocks, lstrip_blocks and loopcontrols, transformers' `tojson`,
`raise_exception` and `strftime_now`), and record the text and token ids, so the Swift renderer
can be checked byte for byte.

Writes, under Tests/NemotronTests/Fixtures/chat/:
  nano2-tokenizer/      tokenizer.json (the llama3-style fixture tokenizer plus <SPECIAL_10..12>,
                        <think>, ...) and tokenizer_config.json holding the nano2-style template
                        as its `chat_template` string, bos/eos as strings
  nemotron3-tokenizer/  tokenizer.json (plus <|im_start|>, <|im_end|>, ...), chat_template.jinja
                        (the nemotron3-style template), tokenizer_config.json with bos/eos as
                        AddedToken objects and no chat_template key
  conversations.json    {"name": {"messages": [...], "tools": [...]?, "documents": [...]?}}
  cases.jsonl           one line per template x conversation x add_generation_prompt x kwargs:
                        {"template", "tokenizer", "conversation", "add_generation_prompt", "kwargs",
                         "text", "ids"} or, where transformers raised, {"error_type", "error"}
  expressions.jsonl     small templates probing Jinja/Python semantics with a context:
                        {"template", "context", "text"} or {"error_type", "error"}; "unsupported":
                        true marks output the Swift renderer refuses on purpose (Python prints
                        memory addresses there)

Needs jinja2 >= 3.1.6, transformers and tokenizers (e.g. /work/pyenv/bin/python).
"""
import json, os, sys

import jinja2
from tokenizers import AddedToken, Tokenizer
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import _compile_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "NemotronTests", "Fixtures")
CHAT = os.path.join(FIXTURES, "chat")
BASE_TOKENIZER = os.path.join(FIXTURES, "tokenizers", "llama3-style", "tokenizer.json")

TOKENIZERS = {
    "nano2-tokenizer": ["<SPECIAL_10>", "<SPECIAL_11>", "<SPECIAL_12>", "<think>", "</think>", "<TOOLCALL>",
                        "</TOOLCALL>", "<AVAILABLE_TOOLS>", "</AVAILABLE_TOOLS>", "<TOOL_RESPONSE>", "</TOOL_RESPONSE>"],
    "nemotron3-tokenizer": ["<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
                            "<tool_response>", "</tool_response>"],
}

# Which tokenizer (special tokens, ids) each template is rendered with, and the keyword
# arguments it is rendered with (each also with add_generation_prompt False and True).
TEMPLATES = {
    "nano2-style": ("nano2-tokenizer", [{}]),
    "nemotron3-style": ("nemotron3-tokenizer", [{}, {"enable_thinking": False}, {"truncate_history_thinking": False},
                                                {"enable_thinking": True, "truncate_history_thinking": False}]),
    "plain-lines": ("nano2-tokenizer", [{}]),
    "python-values": ("nemotron3-tokenizer", [{}]),
    "strict-turns": ("nano2-tokenizer", [{}]),
    "tool-schemas": ("nemotron3-tokenizer", [{}, {"reasoning_effort": "high"}]),
    "chatml-minimal": ("nemotron3-tokenizer", [{}]),
}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.\n",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}},
        "required": ["city"]}}}
SEARCH = {"name": "search", "description": "Search the web", "parameters": {"type": "object", "properties": {
    "query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 10},
    "filters": {"type": "object", "properties": {"site": {"type": "string"}}, "nullable": True}},
    "required": ["query"]}}
CALC = {"type": "function", "function": {"name": "calc", "parameters": {"type": "object", "properties": {
    "expr": {"type": "string", "description": "  An arithmetic expression  "}, "precision": {"type": "number"}}}}}


def call(name, arguments, id=None):
    c = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if id:
        c["id"] = id
    return c


def sys_(text):
    return {"role": "system", "content": text}


def user(text):
    return {"role": "user", "content": text}


def asst(text, **extra):
    return {"role": "assistant", "content": text, **extra}


def tool(text, **extra):
    return {"role": "tool", "content": text, **extra}


CONVERSATIONS = {
    "single-user": {"messages": [user("Hello!")]},
    "system-user": {"messages": [sys_("You are terse."), user("What is 2+2?")]},
    "empty-user": {"messages": [user("")]},
    "empty-system": {"messages": [sys_(""), user("Hi")]},
    "system-only": {"messages": [sys_("Only a system prompt.")]},
    "two-turns": {"messages": [user("Hi there."), asst("Hello! How can I help?"), user("Tell me a joke.")]},
    "three-turns-system": {"messages": [sys_("Be kind."), user("One"), asst("Two"), user("Three"), asst("Four"),
                                        user("Five?")]},
    "ends-on-assistant": {"messages": [user("Write a haiku."), asst("Autumn moonlight—\na worm digs silently\ninto the chestnut.")]},
    "think-in-history": {"messages": [user("What is 17*3?"), asst("<think>\n17*3 = 51.\n</think>\n51."), user("And 17*4?")]},
    "think-last-assistant": {"messages": [user("Is 91 prime?"), asst("<think>91 = 7*13</think>No, 91 = 7 × 13.")]},
    "think-multiple": {"messages": [sys_("Reason carefully. /think"), user("A?"), asst("<think>a</think>A."),
                                    user("B?"), asst("<think>b1</think><think>b2</think>B."), user("C?")]},
    "think-unclosed": {"messages": [user("Q"), asst("<think>never closed"), user("Q2")]},
    "system-no-think": {"messages": [sys_("You are a bot. /no_think"), user("Hi")]},
    "user-no-think": {"messages": [user("Quick answer please /no_think"), asst("Sure."), user("Thanks")]},
    "switch-back-think": {"messages": [sys_("/no_think"), user("first"), asst("ok"), user("now think /think")]},
    "reasoning-field": {"messages": [user("Why is the sky blue?"),
                                     asst("Rayleigh scattering.", reasoning_content="Shorter wavelengths scatter more."),
                                     user("And sunsets?")]},
    "reasoning-thinking-field": {"messages": [user("x"), asst("y", thinking="considering x"), user("z")]},
    "empty-assistant": {"messages": [user("Say nothing."), asst(""), user("Thanks.")]},
    "null-content-assistant": {"messages": [user("Weather in Paris?"),
                                            asst(None, tool_calls=[call("get_weather", {"city": "Paris"}, "call_1")]),
                                            tool('{"temp": 18, "sky": "clear"}', tool_call_id="call_1")],
                               "tools": [WEATHER]},
    "tools-no-calls": {"messages": [sys_("Use tools when needed."), user("Hi")], "tools": [WEATHER, SEARCH]},
    "tools-no-system": {"messages": [user("Search for Swift 6 news")], "tools": [SEARCH]},
    "tool-call-and-answer": {"messages": [sys_("Assistant with tools."), user("Weather in Zürich and Oslo?"),
                                          asst("Let me check both.", tool_calls=[
                                              call("get_weather", {"city": "Zürich", "unit": "celsius"}, "a"),
                                              call("get_weather", {"city": "Oslo"}, "b")]),
                                          tool("11°C, rain", tool_call_id="a"), tool("4°C, snow", tool_call_id="b"),
                                          asst("Zürich: 11°C and rain; Oslo: 4°C and snow.")],
                             "tools": [WEATHER]},
    "tool-string-arguments": {"messages": [user("Compute 2**10"),
                                           asst("", tool_calls=[call("calc", '{"expr": "2**10"}')]),
                                           tool("1024"), user("Thanks!")], "tools": [CALC]},
    "tool-nested-arguments": {"messages": [user("Find docs"),
                                           asst("Searching.", tool_calls=[{"function": {"name": "search", "arguments": {
                                               "query": "jinja \"sandbox\"", "limit": 3, "filters": {"site": "docs.rs"},
                                               "tags": ["a", "b"], "exact": True, "score": 0.5, "none": None}}}]),
                                           tool("[]")], "tools": [SEARCH, CALC]},
    "tool-call-last": {"messages": [user("Weather?"), asst("", tool_calls=[call("get_weather", {"city": "Rome"})])],
                       "tools": [WEATHER]},
    "tool-response-first": {"messages": [tool("orphan result"), user("what was that?")]},
    "documents": {"messages": [user("Summarise the documents.")],
                  "documents": [{"title": "Doc A", "text": "Alpha text."}, {"title": "Doc B", "text": "Beta — β."}]},
    "cjk": {"messages": [sys_("请用中文回答。"), user("日本語でも大丈夫ですか？"), asst("はい、大丈夫です。"), user("한국어는요?")]},
    "emoji": {"messages": [user("🚀 launch? 👩‍💻🇫🇷"), asst("👍🏽 Ready ❤️"), user("🙂")]},
    "accents-combining": {"messages": [user("Café naïve façade e\u0301 Å"), asst("Ærøskøbing, São Paulo.")]},
    "rtl-and-greek": {"messages": [user("עברית العربية Ελληνικά русский"), asst("ok")]},
    "unicode-spaces": {"messages": [user("\u00a0nbsp\u3000ideographic\u2028line sep\u2009thin "), asst("\u200bzero width\ufeff")]},
    "whitespace-heavy": {"messages": [sys_("\n\n  padded system  \n"), user("  leading and trailing  \t\n"),
                                      asst("\n\nanswer\n\n"), user("\t")]},
    "quotes-backslashes": {"messages": [user("She said \"hi\" and 'bye' \\ back\\slash \\n not a newline"),
                                        asst("C:\\path\\to\\file and a \"quoted\" 'word'")]},
    "jinja-looking-text": {"messages": [user("{{ not_a_variable }} {% if %} {# comment #} {{- raw -}}"),
                                        asst("{% endfor %}")]},
    "special-tokens-in-text": {"messages": [user("Text with <|im_end|> and <SPECIAL_11> inside"), asst("</think> early")]},
    "long-multiline": {"messages": [sys_("Rules:\n1. Be brief.\n2. Be right.\n3. Cite sources."),
                                    user("Line one\nLine two\n\nParagraph two with `code` and\ttabs."),
                                    asst("```python\nprint('hi')\n```\nDone."), user("More?\n")]},
    "numbers-only": {"messages": [user("42"), asst("3.14159"), user("-1e-5")]},
    "slash-commands-not-switches": {"messages": [user("Path /thinking/no_thinker is a folder"), asst("Noted.")]},
    "multimodal-parts": {"messages": [user([{"type": "text", "text": "Describe:"}, {"type": "image", "url": "x.png"},
                                           {"type": "text", "text": "briefly."}]), asst("An image.")]},
    "extra-keys": {"messages": [{"role": "user", "content": "hi", "name": "alice", "id": 7},
                                {"role": "assistant", "content": "hello", "name": "bot", "meta": {"k": [1, 2.5, None]}}]},
    "double-user": {"messages": [user("first"), user("second, no answer in between")]},
    "unknown-role": {"messages": [user("hi"), {"role": "critic", "content": "meh"}]},
    "user-after-system-twice": {"messages": [sys_("A"), sys_("B"), user("C")]},
    "many-turns": {"messages": [m for i in range(6) for m in (user(f"question {i}"), asst(f"<think>step {i}</think>answer {i}"))]
                   + [user("final")]},
}


def make_tokenizers(sources):
    tokenizers = {}
    for name, extra in TOKENIZERS.items():
        directory = os.path.join(CHAT, name)
        os.makedirs(directory, exist_ok=True)
        tok = Tokenizer.from_file(BASE_TOKENIZER)
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in extra])
        tok.save(os.path.join(directory, "tokenizer.json"))
        if name == "nano2-tokenizer":
            config = {"bos_token": "<|begin_of_text|>", "eos_token": "<SPECIAL_12>", "pad_token": "<|end_of_text|>",
                      "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": sources["nano2-style"]}
        else:
            def added(content):
                return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
            config = {"bos_token": added("<|begin_of_text|>"), "eos_token": added("<|im_end|>"),
                      "unk_token": None, "tokenizer_class": "PreTrainedTokenizerFast"}
            with open(os.path.join(directory, "chat_template.jinja"), "w", encoding="utf-8") as f:
                f.write(sources["nemotron3-style"])
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
        tokenizers[name] = AutoTokenizer.from_pretrained(directory)
    return tokenizers


def render_cases(sources, tokenizers):
    cases = []
    for template, (tokenizer_name, kwarg_sets) in TEMPLATES.items():
        tokenizer = tokenizers[tokenizer_name]
        own = template in ("nano2-style", "nemotron3-style")
        for conversation, spec in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                for kwargs in kwarg_sets:
                    case = {"template": template, "tokenizer": tokenizer_name, "conversation": conversation,
                            "add_generation_prompt": add_generation_prompt, "kwargs": kwargs}
                    arguments = dict(tools=spec.get("tools"), documents=spec.get("documents"),
                                     add_generation_prompt=add_generation_prompt, **kwargs)
                    if not own:
                        arguments["chat_template"] = sources[template]
                    try:
                        case["text"] = tokenizer.apply_chat_template(spec["messages"], tokenize=False, **arguments)
                        encoded = tokenizer.apply_chat_template(spec["messages"], tokenize=True, **arguments)
                        case["ids"] = list(encoded["input_ids"])
                    except jinja2.TemplateError as error:
                        raised = type(error) is jinja2.TemplateError
                        case["error_type"] = "raised" if raised else "render"
                        case["error"] = str(error)
                    except (TypeError, ValueError, KeyError, IndexError) as error:
                        case["error_type"] = "render"
                        case["error"] = f"{type(error).__name__}: {error}"
                    cases.append(case)
    return cases


# (template, context) probes of Jinja and Python semantics; a third element True marks output
# the Swift renderer refuses on purpose.
EXPRESSIONS = [
    ("{% set x = 0 %}{% for i in [1,2,3] %}{{ x }}{% set x = x + i %}{{ x }},{% endfor %}{{ x }}", {}),
    ("{% for i in [1,2,3] %}{% if i == 1 %}{% set y = 5 %}{% endif %}{{ y }},{% endfor %}", {}),
    ("{% if true %}{% set z = 3 %}{% endif %}{{ z }}", {}),
    ("{{ a.b }}", {}),
    ("{{ a.b.c }}", {"a": {}}),
    ("{{ a.b }}|{{ a['b'] }}", {"a": {}}),
    ("{{ a['items'] }}|{{ a.items is defined }}|{{ a.get('items') }}", {"a": {"items": 1}}),
    ("{{ a.items }}", {"a": {"items": 1}}, True),
    ("{{ 1.0 }} {{ 1e15 }} {{ 1e16 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 2**0.5 }} {{ 10/2 }} {{ 7//2 }} "
     "{{ -7//2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ -7.5 // 2 }} {{ 5 % -3 }} {{ 2 ** -2 }} {{ 1e300 * 10 }} {{ 123456789.125 }}", {}),
    ("{{ x }} {{ [x, y, z] }} {{ y|tojson }} {{ z|tojson }} {{ w }} {{ w|tojson }}",
     {"x": 1e22, "y": float("inf"), "z": float("nan"), "w": -0.0}),
    ("{{ [1, 'a', none, true, 1.5, {'k': 'v'}] }} {{ {'a': [1]} }} {{ (1,) }} {{ (1, 2) }} {{ () }}", {}),
    ("{{ \"it's\" }}|{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\t', 'nl\\n', 'é', '\\x01', '\\u2028'] }}", {}),
    ("{{ ['\\x85', '\\xa0', '\\u3000', '\\ufeff', '\\U0001F600', '\\x7f', '\\u00ad', '\\\\', '\\r'] }}", {}),
    ("{{ x is defined }}{{ x is none }}{{ none is none }}{{ x == y }}{{ x ~ 'a' }}", {}),
    ("{{ x + 'a' }}", {}),
    ("{{ 1 == 1.0 }}{{ true == 1 }}{{ 'a' == 1 }}{{ [1] == [1.0] }}{{ {'a':1} == {'b':1, 'a':1} }}{{ (1,) == [1] }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 'a' ~ 1 ~ none ~ true ~ 1.5 ~ [1] ~ {'b': none} }}", {}),
    ("{{ 'ab' in 'cabd' }}{{ 1 in [1,2] }}{{ 'k' in {'k':1} }}{{ 'x' not in 'abc' }}{{ 'a' in x }}", {}),
    ("{{ 'a' in none }}", {}),
    ("{{ x in 'abc' }}", {}),
    ("{{ m[1:] }} {{ m[:-1] }} {{ m[-1] }} {{ m[::-1] }} {{ 'héllo'[1:3] }} {{ 'abc'[-1] }} {{ m[5] }}|{{ m[-9:9:2] }}",
     {"m": [1, 2, 3]}),
    ("{{ m[0:5:0] }}", {"m": [1, 2]}),
    ("{{ m[5] is defined }}{{ 'abc'[1.0] }}|{{ m[true] }}{{ (1,2,3)[1:] }}", {"m": [1, 2, 3]}),
    ("{{ 'x' if false }}|{{ ('x' if false) is defined }}{{ 1 if 2 if 3 else 4 }}{{ 'a' if false else 'b' if true else 'c' }}", {}),
    ("{{ ' a b  '.split() }}{{ 'a,b,,c'.split(',') }}{{ 'a b c'.split(' ', 1) }}{{ ' a b c '.rsplit(None, 1) }}"
     "{{ 'a,b,c'.rsplit(',', 1) }}{{ '  x '.strip() }}|{{ 'xxaxx'.strip('x') }}{{ 'a b'.split(maxsplit=1) }}", {}),
    ("{{ 'a'.split('') }}", {}),
    ("{% for k, v in d.items() %}{{ loop.index }}{{ k }}={{ v }};{% endfor %}{{ d.items() }}{{ d.keys() }}{{ d.values() }}"
     "{{ d.items()|list }}{{ d.keys()|first }}{{ d.values()|last }}{{ d.items()[0] }}", {"d": {"b": 1, "a": 2}}),
    ("{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ d|tojson(2) }}|{{ 'é'|tojson }}|{{ [1.0, 1e20, none, true]|tojson }}"
     "|{{ d|tojson(sort_keys=true) }}|{{ [1,[2]]|tojson(separators=(',', ':')) }}|{{ [1]|tojson(indent='\\t') }}"
     "|{{ d|tojson(indent=0) }}|{{ ['\\x7f\\x00\\u2028', '😀']|tojson }}|{{ ['😀é']|tojson(ensure_ascii=true) }}",
     {"d": {"b": [1, {}], "a": "é\n\"<>&'\t\\"}}),
    ("{{ x|tojson }}", {}),
    ("{{ ns|tojson }}{% set ns = namespace() %}", {}),
    ("{{ x|default('d') }}{{ ''|default('e') }}{{ ''|default('f', true) }}{{ none|default('g') }}{{ x|d('h') }}"
     "{{ 0|default(1, boolean=true) }}{{ x|default }}|", {}),
    ("{{ [1,2]|length }}{{ 'héllo'|length }}{{ {'a':1}|count }}{{ x|length }}{{ 'e\u0301'|length }}{{ 'e\u0301' == 'é' }}", {}),
    ("{{ ['a','b']|join(', ') }}{{ [1,2]|join }}{{ 'abc'|join('-') }}{{ ' x '|trim }}{{ 'abxba'|trim('ab') }}{{ 1|string }}"
     "{{ none|string }}{{ x|string }}|{{ [1,2]|first }}{{ [1,2]|last }}{{ 'abc'|first }}{{ []|first }}|{{ 'ABC'|lower }}"
     "{{ 'abc'|upper }}{{ 'abc'|list }}{{ {'a':1}|list }}{{ x|list }}{{ [none, true]|join }}{{ [1, 2]|join(d='-') }}", {}),
    ("{{ 'a-b-c'|replace('-', '+') }}{{ 'aaa'|replace('a', 'b', 2) }}{{ 5|replace('5', 'five') }}", {}),
    ("{% for k, v in d|items %}{{ k }}{{ v }}{% endfor %}{{ d|items|list }}{{ x|items|list }}", {"d": {"z": 1, "y": [2]}}),
    ("{{ d|items }}", {"d": {}}, True),
    ("{{ 3 is divisibleby 3 }}{{ 'a' is string }}{{ 1 is number }}{{ true is number }}{{ {} is mapping }}{{ [] is sequence }}"
     "{{ 'a' is sequence }}{{ 'a' is iterable }}{{ 1 is iterable }}{{ none is none }}{{ true is true }}{{ 1 is true }}"
     "{{ 0 is false }}{{ x is undefined }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is integer }}{{ 'a' is lower }}"
     "{{ 'A1' is upper }}{{ x is sequence }}{{ x is iterable }}{{ 4 is even }}{{ 5 is odd }}{{ 2.0 is even }}", {}),
    ("{{ 1 is lt 2 }}{{ 1 is gt(0) }}{{ 1 is ne 1 }}{{ 1 is equalto 1 }}{{ 1 is ge 1 }}{{ 1 is le 0 }}{{ 1 is lessthan 2 }}"
     "{{ 2 is greaterthan 1 }}{{ 1 is in [1] }}{{ 'a' is eq 'a' }}{{ none is boolean }}{{ false is boolean }}", {}),
    ("{{ 'a' is defined is defined }}", {}),
    ("{{ x is defined if true }}", {"x": 1}),
    ("{{ raise_exception('bad thing: ' ~ 42) }}", {}),
    ("{% if x %}{{ raise_exception('x is set') }}{% endif %}ok", {"x": ""}),
    ("{{ x.y }}|{{ none.y }}|{{ 'abc'.y }}|{{ (1).y }}|{{ [1].y }}|{{ x[0] }}|{{ [1,2]['a'] }}|", {"x": None}),
    ("{{ x[0] }}", {"x": {}}),
    ("{{ 1 < 'a' }}", {}),
    ("{{ 1 + true }}{{ 1.5 + 1 }}{{ [1] + [2] }}{{ 'a' * 3 }}{{ 2 * 'b' }}{{ 'ab' * -1 }}{{ [0] * 2 }}{{ 5 / 2 }}{{ 4 / 2 }}"
     "{{ 2 ** 10 }}{{ -3 }}{{ - 3.5 }}{{ +2 }}{{ 2 ** 3 ** 2 }}{{ -2 ** 2 }}{{ 1 < 2 < 3 }}{{ 3 > 2 == 2 }}{{ 1 < 3 < 2 }}", {}),
    ("{{ 1 + 2 ~ 3 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ -'a' }}", {}),
    ("{{ not 1 }}{{ 1 and 2 }}{{ 0 or 'x' }}{{ none or [] }}{{ 0 and x }}{{ not x }}{{ x or 'fallback' }}", {}),
    ("{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('lo', 'x')) }}{{ 'Hello'.startswith('l', 2) }}{{ 'a-b'.replace('-', '+') }}"
     "{{ 'aaa'.replace('a', 'b', 2) }}{{ 'ab'.replace('', '.') }}{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 5) }}{{ 'AbC'.upper() }}"
     "{{ 'AbC'.lower() }}{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}"
     "{{ 'banana'.count('an') }}{{ '-'.join(['a', 'b']) }}{{ 'prefix-x'.removeprefix('prefix-') }}{{ 'x.py'.removesuffix('.py') }}",
     {"d": {"a": 1}}),
    ("{{ 'Straße'.upper() }}{{ 'ÀÉÎ'.lower() }}{{ 'é'|upper }}", {}),
    ("{{ d.get('a', default=1) }}", {"d": {}}),
    ("{{ ''.join(['a', 1]) }}", {}),
    ("{{ d.update }}|{{ d.update is defined }}|{{ [].append }}|{{ d.pop is defined }}", {"d": {}}),
    ("{{ d.pop('a') }}", {"d": {"a": 1}}),
    ("{% set l = [1] %}{{ l.append(2) }}", {}),
    ("{{ 'x'.center(5) }}", {}, True),
    ("{{ x.strip() }}", {}),
    ("{{ foo() }}", {}),
    ("{{ range(3)|list }}{{ range(1,3)|list }}{% for i in range(2) %}{{ i }}{% endfor %}{{ range(3) }}{{ range(0, 10, 3) }}"
     "{{ range(5, 0, -2)|list }}{{ range(3)[1] }}{{ range(3)|length }}{{ range(4)|last }}{{ range(2) is sequence }}", {}),
    ("{{ range(0) }}{{ range(200000)|length }}", {}),
    ("{{ dict(a=1) }}{{ dict({'b': 2}, c=3) }}{{ dict([('d', 4)]) }}{{ namespace(a=1) }}{{ namespace({'b': 2}, c=3).c }}", {}),
    ("{{ namespace(_x=1) }}", {}),
    ("{% set ns = namespace() %}{% set ns._y = 1 %}", {}),
    ("{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns.b }}{{ ns.c }}|{{ ns.c is defined }}{{ ns }}"
     "{{ ns['a'] }}{{ ns is mapping }}{{ ns is iterable }}", {}),
    ("{% set ns = namespace() %}{% for i in [1,2] %}{% set ns.t = i %}{% endfor %}{{ ns.t }}", {}),
    ("{% set x = 1 %}{% set x.a = 2 %}", {}),
    ("{% set y = 1 %}{% for i in [1] %}{% set y.a = 2 %}{% endfor %}", {}),
    ("{% macro m(a, b='d') %}[{{ a }}{{ b }}{{ g }}]{% endmacro %}{% set g = 'G' %}{{ m(1) }}{{ m(1, b=2) }}{{ m(1,2) }}{{ m() }}"
     "{{ m(1) + 'b' }}{{ m(1)|length }}{{ m is defined }}{{ m }}", {}),
    ("{% set a = 1 %}{% macro m() %}{{ a }}{% set q = 1 %}{% endmacro %}{% for a in [2] %}{{ m() }}{% endfor %}{{ q }}", {}),
    ("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(y=1) }}", {}),
    ("{% macro m(x, y=x ~ '!') %}{{ y }}{% endmacro %}{{ m('a') }}{{ m('a', 'b') }}", {}),
    ("{% generation %}x{{ 1 }}{% endgeneration %}", {}),
    ("{% for x in [1,2,3] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}"
     "{{ loop.revindex0 }}{{ loop.previtem }}{{ loop.nextitem }}{{ loop.cycle('a', 'b') }}{{ loop.depth }}{{ loop }};{% endfor %}", {}),
    ("{% for x in [] %}a{% else %}empty{% endfor %}{% for x in [1] %}{% break %}{% else %}E{% endfor %}"
     "{% for x in [1,2] %}{% continue %}{% else %}F{% endfor %}{% for x in [1,2] %}{% if x == 2 %}{% continue %}{% endif %}"
     "{% else %}G{% endfor %}", {}),
    ("{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}", {}),
    ("{% for x in [1,2,3,4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for x in [1,2] %}{% for y in [3] %}{{ loop.index }}{{ x }}{% endfor %}{% endfor %}", {}),
    ("{% for x in [] %}{% else %}{% set y = 1 %}[{{ loop }}]{% endfor %}{{ y }}", {}),
    ("{% set x = 5 %}{% for x in [1] %}{% endfor %}{{ x }}", {}),
    ("{% for i in [1] %}{% set x = 3 %}{% for j in [2] %}{{ x }}{% set x = 4 %}{{ x }}{% endfor %}{{ x }}{% endfor %}", {}),
    # Jinja's compile-time scoping: a name assigned before any use in a frame starts undefined there.
    ("{% macro m() %}[{{ c }}]{% endmacro %}{{ m() }}{% set c = 'top' %}{{ m() }}", {"c": "C"}),
    ("{% macro m() %}[{{ c }}]{% set c = 'i' %}[{{ c }}]{% endmacro %}{{ m() }}{% set c = c ~ '!' %}{{ m() }}", {"c": "C"}),
    ("{% for x in [1] %}[{{ c }}]{% endfor %}{% set c = 'top' %}[{{ c }}]", {"c": "C"}),
    ("{% for x in [1,2] %}{% for z in [1] %}[{{ c }}]{% endfor %}{% set c = x %}[{{ c }}]{% endfor %}", {"c": "C"}),
    ("{% if true %}{% for z in [1] %}[{{ c }}]{% endfor %}{% set c = 2 %}{% endif %}[{{ c }}]", {"c": "C"}),
    ("{% if false %}{% set c = 1 %}{% endif %}[{{ c }}]{% for x in [1] %}{% if false %}{% set c = 2 %}{% endif %}[{{ c }}]{% endfor %}",
     {"c": "C"}),
    ("{% set x %}{% set y = 1 %}{% endset %}[{{ y }}]{% generation %}{% set y = 2 %}{% endgeneration %}[{{ y }}]", {"y": "Y"}),
    ("{% set y = 'T' %}{% for x in [1,2] %}[{{ y }}]{% set y = x %}[{{ y }}]{% endfor %}[{{ y }}]", {"y": "Y"}),
    ("{% for x in none %}{% endfor %}", {}),
    ("{% for a, b in [[1,2],[3]] %}{{a}}{{b}}{% endfor %}", {}),
    ("{% for a, b in {'x': 1}.items() %}{{ a }}{{ b }}{% endfor %}{% for a, b in [('p', 'q')] %}{{ a }}{{ b }}{% endfor %}"
     "{% for a, b in ['xy'] %}{{ a }}{{ b }}{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %}{% for k in {'u': 1, 't': 2} %}{{ k }}{% endfor %}", {}),
    ("{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set d %}  hi {{ 1 }} {% endset %}[{{ d }}]", {}),
    ("{% print 'x', 1 %}{% if a, b %}T{% endif %}", {"a": 0, "b": 0}),
    ("{{ [1, 2, ] }}{{ {'a': 1, } }}{{ (1, ) }}{{ 1_000 }}{{ 0x1F }}{{ 0o17 }}{{ 0b101 }}{{ 1e3 }}{{ 1.5e-7 }}{{ 2.5E+3 }}", {}),
    ("{{ 'a' 'b' }}{{ 'line1\nline2' }}{{ 'q\\'s' }}{{ \"d\\\"q\" }}{{ 'tab\\tnl\\nbs\\\\' }}{{ '\\x41\\u00e9\\U0001F600\\101\\q\\é' }}", {}),
    ("{{ (x|safe) + '<' }}{{ ('<'|safe) ~ '<' }}{{ ('<' | safe) | length }}{{ '<' + ('>'|safe) }}{{ x|safe|string|trim }}", {"x": " a "}),
    ("{{ x|safe }}{{ [x|safe] }}", {"x": "it's"}),
    ("{{ (x|safe).strip() }}", {"x": " a "}, True),
    ("a\n  {% if true %}\n  x\n  {% endif %}\nb\n", {}),
    ("a  {% if true %}x{% endif %}  \n  {#c#}  \nb", {}),
    ("  {%+ if true %}x{% endif %}|{{ 'a' }}  {% if true %}x{% endif %}", {}),
    ("{% if true -%}   \n\n  x  {%- endif %}|x  \n {{- 'y' -}} \n z", {}),
    ("{% if true +%}\nx{% endif %}\n{# c #}\ny\n\t {%- if true %}\nz{% endif %}", {}),
    ("a\r\nb\rc\n", {}),
    ("a\n\n", {}),
    ("{%- if true %}\n\t\u00a0{% if true %}x{% endif %}\n{% endif %}", {}),
    ("{#- only a comment -#}\n\n  text\n{#+ kept #}\n", {}),
    ("{{ {'a': 1}.items }}", {}, True),
    ("{{ strftime_now('%Y-%m-%d') | length }}", {}),
    ("{% raw %}{{ x }}{% endraw %}", {}, True),
    ("{% filter upper %}x{% endfilter %}", {}, True),
    ("{{ x | map('upper') | list }}{{ x | map('replace', 'a', 'b') | join }}{{ d | map(attribute='n') | list }}"
     "{{ d | map(attribute='m.0', default='-') | list }}{{ d | selectattr('n') | list }}{{ d | rejectattr('n', 'gt', 1) | list }}"
     "{{ [0, 1, 2, 3] | select('odd') | list }}{{ [0, '', 'a'] | select | list }}{{ [1, 2] | reject('in', [2]) | list }}"
     "{{ x | map('upper') | first }}{{ [] | select | list }}",
     {"x": ["a", "ca"], "d": [{"n": 1, "m": [5]}, {"n": 0}, {"n": 2, "m": []}]}),
    ("{{ x | map('upper') }}", {"x": ["a"]}, True),
    ("{{ x | map('upper') | length }}", {"x": ["a"]}),
    ("{{ 'hello wORLD'|capitalize }}{{ 'ß x'|capitalize }}|{{ 'hello-wide (world) [x]<y>{z} a_b'|title }}{{ '  two  words'|title }}"
     "{{ 'abc'|reverse }}{{ [1, 2, 3]|reverse|list }}{{ {'a': 1, 'b': 2}|reverse|list }}{{ d|dictsort }}{{ d|dictsort(true) }}"
     "{{ d|dictsort(by='value', reverse=true) }}{{ '42'|int }}{{ ' 7 '|int }}{{ '4.9'|int }}{{ 'x'|int(3) }}{{ 3.99|int }}{{ -2.5|int }}"
     "{{ '0x1A'|int(0, 16) }}{{ true|int }}{{ none|int }}{{ '1.5'|float }}{{ 'x'|float }}{{ 2|float }}{{ -3|abs }}{{ -2.5|abs }}",
     {"d": {"b": 2, "A": 3, "a": 1}}),
    ("{{ x|sort }}", {"x": [2, 1]}, True),
    ("{{ 'ΟΔΟΣ ΟΔΟΣ. ΣΑ'|lower }}|{{ 'ΌΣΟΣ'.lower() }}|{{ 'straße ﬁ ŉ'|upper }}|{{ 'ǆemal'|capitalize }}|{{ 'ΣΑΣ σας'|title }}"
     "|{{ 'İstanbul'.lower()|length }}|{{ 'ǅ'|lower }}{{ 'ǅ'|upper }}", {}),
    ("{{ x.content.strip().split('\n')[-1] | trim }}|{{ (x.content ~ '').replace('\r\n', '\n') | length }}",
     {"x": {"content": " line one\r\nline two \r\n "}}),
    ("{% if false %}{{ x|nosuchfilter }}{{ y is nosuchtest }}{% endif %}ok{{ x|nosuchfilter if false else 1 }}", {}),
    ("{% if true %}{{ x|nosuchfilter }}{% endif %}", {}),
    ("{% if true %}{% for i in [1] %}{{ i|nosuchfilter }}{% endfor %}{% endif %}", {}),
    ("{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}{{ 1 is sameas 1 if false else 'skip' }}", {}),
    ("{{ x | nosuchfilter }}", {}),
    ("{% if x is nosuchtest %}{% endif %}", {}),
    ("{% include 'other.jinja' %}", {}, True),
    ("{% break %}", {}),
    ("{% for x in y %}", {}),
    ("{% endfor %}", {}),
    ("{{ x ", {}),
    ("{# never closed", {}),
    ("{{ 'unterminated }}", {}),
    ("{{ (1 }}", {}),
]


def render_expressions():
    out = []
    for entry in EXPRESSIONS:
        source, context = entry[0], entry[1]
        case = {"template": source, "context": context}
        if len(entry) > 2 and entry[2]:
            case["unsupported"] = True
        try:
            case["text"] = _compile_jinja_template(source).render(**context)
        except jinja2.TemplateSyntaxError as error:
            case["error_type"] = "syntax"
            case["error"] = f"{error} (line {error.lineno})"
        except jinja2.TemplateError as error:
            case["error_type"] = "raised" if type(error) is jinja2.TemplateError else "render"
            case["error"] = str(error)
        except Exception as error:  # Python's TypeError, ValueError, ... inside the render
            case["error_type"] = "render"
            case["error"] = f"{type(error).__name__}: {error}"
        if case.get("unsupported"):
            case.pop("text", None)
        out.append(case)
    return out


def main():
    sources = {}
    for name in TEMPLATES:
        with open(os.path.join(CHAT, "templates", name + ".jinja"), encoding="utf-8") as f:
            sources[name] = f.read()
    tokenizers = make_tokenizers(sources)
    cases = render_cases(sources, tokenizers)
    with open(os.path.join(CHAT, "conversations.json"), "w", encoding="utf-8") as f:
        json.dump(CONVERSATIONS, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(CHAT, "cases.jsonl"), "w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    expressions = render_expressions()
    with open(os.path.join(CHAT, "expressions.jsonl"), "w", encoding="utf-8") as f:
        for case in expressions:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    errors = sum("error" in c for c in cases)
    print(f"{len(TEMPLATES)} templates, {len(CONVERSATIONS)} conversations, {len(cases)} cases "
          f"({errors} raise), {len(expressions)} expression probes", file=sys.stderr)


if __name__ == "__main__":
    main()
