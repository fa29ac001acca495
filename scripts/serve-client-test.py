#!/usr/bin/env python3
"""Drives a running `nemotron-run serve` with the `openai` Python package and with curl, and
checks its answers against `generate`'s (the test that starts both passes them in a JSON file).

    serve-client-test.py --base-url http://127.0.0.1:PORT --expected expected.json [--checks a,b,...]

expected.json: {"model": NAME, "max_model_len": N, "max_request_bytes": N, "capacity": N,
                "cases": [{"kind": "completion" | "chat", "prompt": TEXT, "max_tokens": N,
                           "sampling": {...} (optional), "prompt_ids": [...], "generated_ids": [...],
                           "text": TEXT, "finish_reason": "eos" | "stop" | "length"}]}

Local only: every request goes to the loopback address given, with a timeout, and the number of
requests is fixed. Prints one line per check and 'N passed, N failed'; exits 1 on any failure.
"""

import argparse
import concurrent.futures
import json
import signal
import subprocess
import sys
import time
import urllib.parse

import openai

TIMEOUT = 120
RESULTS = []


def check(name, condition, detail=""):
    RESULTS.append(bool(condition))
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"), flush=True)
    return condition


def curl(base, path, body=None, raw=None, stream=False, timeout=TIMEOUT):
    """(status, body text) of one request through curl."""
    command = ["curl", "-sS", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}", base + path]
    if stream:
        command.insert(1, "-N")
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    if data is not None:
        command += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    run = subprocess.run(command, input=data.encode() if isinstance(data, str) else data, capture_output=True,
                         timeout=timeout + 10)
    text = run.stdout.decode("utf-8", errors="replace")
    head, _, status = text.rpartition("\n")
    return int(status or 0), head


def sse_events(text):
    return [line[len("data: "):] for line in text.split("\n") if line.startswith("data: ")]


def reason(finish):
    return "stop" if finish in ("eos", "stop") else finish


def request_body(case, stream=False):
    body = {"model": MODEL, "max_tokens": case["max_tokens"], "temperature": 0, "return_token_ids": True}
    body.update(case.get("sampling", {}))
    if case["kind"] == "chat":
        body["messages"] = [{"role": "user", "content": case["prompt"]}]
    else:
        body["prompt"] = case["prompt"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def openai_call(client, case, stream=False):
    """(ids, text, finish reason, chunk count, usage) of one request through the openai client."""
    body = request_body(case, stream)
    extra = {k: body.pop(k) for k in list(body) if k in ("return_token_ids", "top_k", "ignore_eos")}
    endpoint = client.chat.completions if case["kind"] == "chat" else client.completions
    args = dict(body)
    if case["kind"] == "completion":
        args.setdefault("prompt", case["prompt"])
    result = endpoint.create(extra_body=extra, **args)
    if not stream:
        choice = result.choices[0]
        text = choice.message.content if case["kind"] == "chat" else choice.text
        return choice.model_extra.get("token_ids"), text, choice.finish_reason, 1, result.usage
    ids, text, finish, chunks, usage = [], "", None, 0, None
    for chunk in result:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            piece = choice.delta.content if case["kind"] == "chat" else choice.text
            text += piece or ""
            ids += (choice.model_extra or {}).get("token_ids") or []
            finish = choice.finish_reason or finish
    return ids, text, finish, chunks, usage


def check_parity(base, client, cases):
    """temperature 0 (and a seeded sampled case): the ids and text of generate, through both clients."""
    for i, case in enumerate(cases):
        label = f"{case['kind']} {i}"
        ids, text, finish, _, usage = openai_call(client, case)
        check(f"openai {label}: ids as generate", ids == case["generated_ids"], f"{ids} != {case['generated_ids']}")
        check(f"openai {label}: text as generate", text == case["text"], f"{text!r} != {case['text']!r}")
        check(f"openai {label}: finish reason", finish == reason(case["finish_reason"]), finish)
        check(f"openai {label}: usage", usage.prompt_tokens == len(case["prompt_ids"])
              and usage.completion_tokens == len(case["generated_ids"]), usage)
        ids, text, finish, chunks, usage = openai_call(client, case, stream=True)
        check(f"openai stream {label}: chunks concatenate to the text", text == case["text"],
              f"{text!r} != {case['text']!r}")
        check(f"openai stream {label}: ids as generate", ids == case["generated_ids"], ids)
        # One chunk per token, one with the finish reason, one with the usage.
        check(f"openai stream {label}: one chunk per token", chunks == len(case["generated_ids"]) + 2, chunks)
        check(f"openai stream {label}: usage chunk", usage is not None
              and usage.completion_tokens == len(case["generated_ids"]), usage)
        path = "/v1/chat/completions" if case["kind"] == "chat" else "/v1/completions"
        status, text = curl(base, path, request_body(case))
        answer = json.loads(text) if status == 200 else {}
        choice = (answer.get("choices") or [{}])[0]
        got = choice.get("message", {}).get("content") if case["kind"] == "chat" else choice.get("text")
        check(f"curl {label}: 200, same ids and text", status == 200 and got == case["text"]
              and choice.get("token_ids") == case["generated_ids"]
              and choice.get("prompt_token_ids") == case["prompt_ids"], f"{status} {text[:300]}")
        status, text = curl(base, path, request_body(case, stream=True), stream=True)
        events = sse_events(text)
        pieces = [json.loads(e) for e in events[:-1]]
        streamed = "".join((c["choices"][0]["delta"].get("content", "") if case["kind"] == "chat"
                            else c["choices"][0]["text"]) for c in pieces if c["choices"])
        check(f"curl stream {label}: SSE chunks, [DONE], same text", status == 200 and events[-1:] == ["[DONE]"]
              and streamed == case["text"], f"{status} {text[:300]}")


def prompt_of_length(n):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    return " ".join(words[(i * 7 + n) % len(words)] + str(i % 13) for i in range(n))


def check_concurrency(client, count=32):
    """count requests of different lengths, each first alone, then all at once: the same ids."""
    cases = [{"kind": "completion", "prompt": prompt_of_length(1 + (i * 5) % 40), "max_tokens": 4 + (i * 7) % 29,
              "sampling": {"ignore_eos": i % 3 != 0}} for i in range(count)]
    alone = [openai_call(client, case)[0] for case in cases]
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(openai_call, client, case, i % 2 == 1) for i, case in enumerate(cases)]
        together = [f.result(timeout=TIMEOUT * 2)[0] for f in futures]
    same = [i for i in range(count) if alone[i] == together[i] and alone[i]]
    check(f"{count} concurrent requests (half streamed) get the ids each gets alone", len(same) == count,
          f"differ: {[i for i in range(count) if i not in same]}")
    lengths = {len(ids) for ids in alone}
    check(f"{count} concurrent requests: different lengths ({len(lengths)} distinct)", len(lengths) > 5, lengths)


def check_bad_requests(base, limits):
    path = "/v1/completions"
    long_prompt = list(range(3, 3 + limits["max_model_len"] + 5))
    bad = [
        ("malformed JSON", '{"prompt": "hi", "max_tokens": ', 400, None),
        ("not an object", '[1, 2]', 400, None),
        ("wrong type: max_tokens a string", json.dumps({"prompt": "hi", "max_tokens": "ten"}), 400, "max_tokens"),
        ("wrong type: prompt a number", json.dumps({"prompt": 5}), 400, "prompt"),
        ("wrong type: stream a string", json.dumps({"prompt": "hi", "stream": "yes"}), 400, "stream"),
        ("max_tokens 0", json.dumps({"prompt": "hi", "max_tokens": 0}), 400, "max_tokens"),
        ("max_tokens -3", json.dumps({"prompt": "hi", "max_tokens": -3}), 400, "max_tokens"),
        ("temperature 5", json.dumps({"prompt": "hi", "temperature": 5}), 400, "temperature"),
        ("prompt longer than max_model_len", json.dumps({"prompt": long_prompt, "max_tokens": 1}), 400, "prompt"),
        ("token id outside the vocabulary", json.dumps({"prompt": [1, 10 ** 9]}), 400, "prompt"),
        ("missing prompt", json.dumps({"max_tokens": 3}), 400, "prompt"),
        ("n = 2", json.dumps({"prompt": "hi", "n": 2}), 400, "n"),
    ]
    chat = [
        ("empty messages", json.dumps({"messages": []}), 400, "messages"),
        ("messages not a list", json.dumps({"messages": "hi"}), 400, "messages"),
        ("message without role", json.dumps({"messages": [{"content": "hi"}]}), 400, "messages"),
    ]
    cases = [(path, *b) for b in bad] + [("/v1/chat/completions", *c) for c in chat]
    for where, name, raw, want, param in cases:
        status, text = curl(base, where, raw=raw)
        try:
            error = json.loads(text)["error"]
            shaped = isinstance(error["message"], str) and error["type"] == "invalid_request_error"
            shaped = shaped and (param is None or error.get("param") == param)
        except (ValueError, KeyError, TypeError):
            shaped = False
        check(f"bad request ({name}): {want} with an OpenAI error object", status == want and shaped,
              f"{status} {text[:200]}")
    big = json.dumps({"prompt": "x" * (limits["max_request_bytes"] + 10)})
    status, text = curl(base, path, raw=big)
    check("oversized body: 413 with an OpenAI error object", status == 413 and "error" in json.loads(text or "{}"),
          f"{status} {text[:200]}")
    status, text = curl(base, "/v1/nothing-here", body={})
    check("unknown endpoint: 404 with an OpenAI error object", status == 404 and "error" in text, f"{status} {text}")
    status, text = curl(base, "/v1/completions", body={"model": "another-model", "prompt": "hi"})
    check("unknown model: 404", status == 404 and "model_not_found" in text, f"{status} {text}")
    status, text = curl(base, "/v1/completions", body={"model": MODEL, "prompt": "still serving", "max_tokens": 3})
    check("after the bad requests the server still serves", status == 200 and
          json.loads(text)["usage"]["completion_tokens"] >= 1, f"{status} {text[:200]}")


def metric(base, name):
    status, text = curl(base, "/metrics")
    for line in text.split("\n"):
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return None


def check_killed_client(base, client, case):
    """A streaming client killed mid-stream: its request is cancelled; another one is not disturbed."""
    body = {"model": MODEL, "prompt": "a long story", "max_tokens": 200, "ignore_eos": True, "stream": True}
    victim = subprocess.Popen(["curl", "-sS", "-N", "--max-time", str(TIMEOUT), base + "/v1/completions",
                               "-H", "Content-Type: application/json", "-d", json.dumps(body)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        other = pool.submit(openai_call, client, case, True)
        first = victim.stdout.readline()  # the first chunk: the request is running
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        ids = other.result(timeout=TIMEOUT)[0]
    check("killed client: its stream had started", first.startswith(b"data: "), first)
    check("killed client: a concurrent stream completes with its own ids", ids == case["generated_ids"], ids)
    deadline = time.time() + 10
    cancelled = 0
    while time.time() < deadline:
        cancelled = metric(base, 'nemotron_requests_finished_total{finish_reason="cancelled"}') or 0
        if cancelled >= 1 and metric(base, "nemotron_running_requests") == 0:
            break
        time.sleep(0.2)
    check("killed client: its request is cancelled and leaves the batch", cancelled >= 1, cancelled)


def check_queue_full(client, limits):
    """More requests than the server holds (running batches + max_queue): the rest get 503."""
    count = limits["capacity"] + 8
    cases = [{"kind": "completion", "prompt": "queue " + str(i), "max_tokens": 40, "sampling": {"ignore_eos": True}}
             for i in range(count)]

    def one(case):
        try:
            return openai_call(client, case)[0] is not None
        except openai.APIStatusError as error:
            return error.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        outcomes = list(pool.map(one, cases, timeout=TIMEOUT * 2))
    served = outcomes.count(True)
    refused = outcomes.count(503)
    check(f"{count} requests at once with room for {limits['capacity']}: the rest get 503",
          refused >= 1 and served + refused == count and served >= limits["capacity"] - 4, outcomes)


def check_endpoints(base):
    status, text = curl(base, "/v1/models")
    check("GET /v1/models lists the model", status == 200 and json.loads(text)["data"][0]["id"] == MODEL, text)
    status, text = curl(base, "/health")
    check("GET /health", status == 200, f"{status} {text}")
    status, text = curl(base, "/metrics")
    needed = ["nemotron_requests_received_total", "nemotron_queue_depth", "nemotron_batch_size",
              "nemotron_time_to_first_token_seconds_bucket", "nemotron_inter_token_latency_seconds_count",
              "nemotron_generation_tokens_total"]
    check("GET /metrics: Prometheus text with the counters, gauges and histograms",
          status == 200 and all(n in text for n in needed), [n for n in needed if n not in text])
    ttft = metric(base, "nemotron_time_to_first_token_seconds_count")
    check("GET /metrics: time to first token observed", ttft is not None and ttft > 0, ttft)


def main():
    global MODEL
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--checks", default="parity,concurrency,bad,killed,queue,endpoints")
    args = parser.parse_args()
    host = urllib.parse.urlparse(args.base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("serve-client-test.py talks to the loopback address only")
    expected = json.load(open(args.expected))
    MODEL = expected["model"]
    client = openai.OpenAI(base_url=args.base_url + "/v1", api_key="none", max_retries=0, timeout=TIMEOUT)
    checks = args.checks.split(",")
    started = time.time()
    if "parity" in checks:
        check_parity(args.base_url, client, expected["cases"])
    if "concurrency" in checks:
        check_concurrency(client)
    if "bad" in checks:
        check_bad_requests(args.base_url, expected)
    if "killed" in checks:
        check_killed_client(args.base_url, client, expected["cases"][0])
    if "queue" in checks:
        check_queue_full(client, expected)
    if "endpoints" in checks:
        check_endpoints(args.base_url)
    failed = RESULTS.count(False)
    print(f"client checks took {time.time() - started:.1f} s")
    print(f"{RESULTS.count(True)} passed, {failed} failed")
    sys.exit(1 if failed else 0)


MODEL = ""
if __name__ == "__main__":
    main()
