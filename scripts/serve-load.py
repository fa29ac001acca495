#!/usr/bin/env python3
"""A bounded load generator for `nemotron-run serve` (loopback only; standard library only).

At each concurrency level it keeps that many streaming completion requests in flight until a
fixed number of requests has been sent (or the level's time limit passes), and reports
requests/s, generated tokens/s, and percentiles of time to first token (TTFT) and inter-token
latency (ITL). Every request has its own time limit; nothing retries.

Against a running server:
    python3 scripts/serve-load.py --base-url http://127.0.0.1:8000

Or start the servers itself (each under mpirun -np 2, SIGTERM to the ranks afterwards), to
compare configurations in one run, e.g. continuous batching against one request at a time:
    python3 scripts/serve-load.py --serve "batched=--config configs/serve-demo.yaml" \\
        --serve "one at a time=--config configs/serve-demo.yaml --max-batch-size 1"
"""

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def token_prompts(count):
    """Token-id prompts of 16 to 128 tokens, for checkpoints without a tokenizer."""
    return [[(i * 131 + k * 17) % 2000 + 3 for k in range(16 + (i * 29) % 113)] for i in range(count)]


def prompts(count):
    """Prompts of varied lengths: runs of lines from the demo model's validation text."""
    path = os.path.join(ROOT, "models/demo-dense/validation.txt")
    lines = [l.strip() for l in open(path, encoding="utf-8") if len(l.strip()) > 20] if os.path.exists(path) else []
    if not lines:
        lines = ["The quick brown fox jumps over the lazy dog."] * 64
    out = []
    for i in range(count):
        start = (i * 37) % max(1, len(lines) - 8)
        out.append(" ".join(lines[start:start + 1 + i % 6]))
    return out


def one_request(host, port, body, timeout):
    """Streams one completion; returns (ok, start, token arrival times)."""
    start = time.perf_counter()
    times = []
    try:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        if response.status != 200:
            response.read()
            return False, start, times
        deadline = start + timeout
        for line in response:
            if time.perf_counter() > deadline:
                break
            if line.startswith(b"data: {") and b'"finish_reason":null' in line:
                times.append(time.perf_counter())
            elif line.startswith(b"data: [DONE]"):
                break
        connection.close()
        return True, start, times
    except (OSError, http.client.HTTPException):
        return False, start, times


def run_level(base, concurrency, requests, max_tokens, level_seconds, request_seconds, prompt_list):
    url = urllib.parse.urlparse(base)
    lock = threading.Lock()
    sent = [0]
    results = []
    level_deadline = time.perf_counter() + level_seconds

    def worker():
        while True:
            with lock:
                if sent[0] >= requests or time.perf_counter() > level_deadline:
                    return
                index = sent[0]
                sent[0] += 1
            body = json.dumps({"prompt": prompt_list[index % len(prompt_list)], "max_tokens": max_tokens,
                               "temperature": 0, "ignore_eos": True, "stream": True})
            outcome = one_request(url.hostname, url.port, body, request_seconds)
            with lock:
                results.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done = [r for r in results if r[0] and r[2]]
    ttft = [r[2][0] - r[1] for r in done]
    itl = [b - a for r in done for a, b in zip(r[2], r[2][1:])]
    tokens = sum(len(r[2]) for r in done)
    return {"concurrency": concurrency, "requests": len(done), "failed": len(results) - len(done),
            "seconds": wall, "requests_per_second": len(done) / wall, "tokens_per_second": tokens / wall,
            "ttft": percentiles(ttft), "itl": percentiles(itl)}


def percentiles(values):
    if not values:
        return {"p50": 0, "p90": 0, "p99": 0}
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": statistics.fmean(values)}


def table(label, rows, header=()):
    print(f"\n{label}\n")
    for line in header:
        print(f"    {line}")
    if header:
        print()
    print("| concurrency | requests | requests/s | tokens/s | TTFT p50 / p90 / p99 (ms) | ITL p50 / p90 / p99 (ms) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t, i = r["ttft"], r["itl"]
        print(f"| {r['concurrency']} | {r['requests']}{' (' + str(r['failed']) + ' failed)' if r['failed'] else ''} "
              f"| {r['requests_per_second']:.2f} | {r['tokens_per_second']:.1f} "
              f"| {t['p50'] * 1e3:.0f} / {t['p90'] * 1e3:.0f} / {t['p99'] * 1e3:.0f} "
              f"| {i['p50'] * 1e3:.1f} / {i['p90'] * 1e3:.1f} / {i['p99'] * 1e3:.1f} |", flush=True)


def summary(report, levels):
    """Per level: each configuration's tokens/s (median and range over the rounds) and the ratio
    of the first to the second within each round."""
    (a, rounds_a), (b, rounds_b) = report.items()
    print(f"\n| concurrency | {a} tokens/s | {b} tokens/s | ratio per round | median ratio |")
    print("|---|---|---|---|---|")
    for k, level in enumerate(levels):
        ta = [rows[k]["tokens_per_second"] for rows in rounds_a]
        tb = [rows[k]["tokens_per_second"] for rows in rounds_b]
        ratios = [x / y for x, y in zip(ta, tb) if y > 0]
        spread = lambda v: f"{statistics.median(v):.0f} ({min(v):.0f}–{max(v):.0f})" if len(v) > 1 else f"{v[0]:.0f}"
        print(f"| {level} | {spread(ta)} | {spread(tb)} | {' / '.join(f'{r:.2f}×' for r in ratios)} "
              f"| {statistics.median(ratios):.2f}× |", flush=True)


class Server:
    """`mpirun -np N nemotron-run serve --port 0 ARGS` on the loopback address."""

    def __init__(self, arguments, ranks, binary):
        flags = ["--allow-run-as-root"] if os.geteuid() == 0 else []
        flags += ["--oversubscribe"] if os.cpu_count() < ranks else []
        # e.g. MPIRUN_FLAGS="--bind-to none" on a many-core host, where the ranks run several threads
        flags += os.environ.get("MPIRUN_FLAGS", "").split()
        self.stderr = open(os.path.join("/tmp", f"serve-load-{os.getpid()}.log"), "w+")
        self.process = subprocess.Popen(
            ["mpirun", *flags, "-np", str(ranks), binary, "serve", "--host", "127.0.0.1", "--port", "0",
             *arguments.split()], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.time() + 300
        while time.time() < deadline and self.process.poll() is None:
            self.stderr.seek(0)
            log = self.stderr.read()
            found = re.search(r"http://127\.0\.0\.1:(\d+)", log)
            if found:
                self.base = f"http://127.0.0.1:{found.group(1)}"
                # The run header: ranks × threads, compute, and any note on the ranks' CPU binding.
                self.header = [line for line in log.splitlines() if line.startswith("nemotron-run: ")]
                return
            time.sleep(0.2)
        self.stop()
        self.stderr.seek(0)
        sys.exit("the server did not start:\n" + self.stderr.read())

    def stop(self):
        if self.process.poll() is None:
            children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
            for pid in children.stdout.split():
                os.kill(int(pid), signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running server (loopback only)")
    parser.add_argument("--serve", action="append", default=[], metavar="LABEL=ARGS",
                        help="start a server with these serve arguments (repeatable)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/nemotron-run"))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level (default: 16 × concurrency, at least 64: each client sends 16 or "
                             "more, so a level is mostly steady state rather than its ramp-up and drain)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-ids", action="store_true", help="send token-id prompts (no tokenizer needed)")
    parser.add_argument("--level-seconds", type=float, default=600, help="no new request after this, per level")
    parser.add_argument("--request-seconds", type=float, default=300)
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --serve: run the configurations in turn this many times (the machine's other "
                             "load moves the figures; alternating rounds lets them share it), then a summary")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if bool(args.base_url) == bool(args.serve):
        sys.exit("give --base-url or --serve")
    if args.base_url and urllib.parse.urlparse(args.base_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("serve-load.py sends load to the loopback address only")
    prompt_list = token_prompts(64) if args.prompt_ids else prompts(64)
    configurations = [("server", None)] if args.base_url else [tuple(s.split("=", 1)) for s in args.serve]
    report = {}
    for label, arguments in configurations * (args.rounds if args.serve else 1):
        server = Server(arguments, args.ranks, args.binary) if arguments is not None else None
        base = server.base if server else args.base_url
        try:
            # One short request first, so no level pays for warm-up.
            one_request(urllib.parse.urlparse(base).hostname, urllib.parse.urlparse(base).port,
                        json.dumps({"prompt": "warm up", "max_tokens": 4, "stream": True}), args.request_seconds)
            rows = []
            for concurrency in args.concurrency:
                requests = args.requests or max(64, 16 * concurrency)
                rows.append(run_level(base, concurrency, requests, args.max_tokens, args.level_seconds,
                                      args.request_seconds, prompt_list))
            table(f"{label}" + (f" (serve {arguments})" if arguments else f" ({base})"), rows,
                  server.header if server else [])
            report.setdefault(label, []).append(rows)
        finally:
            if server:
                server.stop()
    if len(report) == 2:
        summary(report, args.concurrency)
    if args.json:
        json.dump(report, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
