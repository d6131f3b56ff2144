"""`make bench`: run the benchmarks and write their results into docs/benchmarks.md.

    python -m bench.run pipeline [--minutes 10] [--long-minutes 60] [--cases serve-p2,local,...]
    python -m bench.run api [--seconds 30] [--get-rate 300] [--post-connections 4,8,16]
    python -m bench.run api-cpu [--requests 3000] [--concurrency 8] [--profile FILE]
    python -m bench.run scaling [--lines 40] [--chunks 2]
    python -m bench.run redub [--minutes 10] [--edits 3]

Each benchmark owns one section of docs/benchmarks.md (between `<!-- bench:NAME -->` markers) and rewrites only
that section, with the machine, the date and the command that produced it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Written by `make bench` (`python -m bench.run`); each section says the machine, the date and the command that
produced it. Targets are the issues'; a missed target is followed by where the time goes.
"""


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return (f"{names[0] if names else cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"no GPU, Python {platform.python_version()}")  # fmt: skip


def python_speed() -> float:
    """Seconds for a fixed pure-Python loop (best of 3), taken before a benchmark starts: the same code on the
    same kind of machine has measured 1.6x apart on different days, and this says which kind of day it was."""
    import time

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def write_section(name: str, title: str, body: str, speed: float) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    command = "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- bench:{name} -->\n## {title}\n\nMachine: {machine()}; a 5M-step Python loop took "
               f"{speed:.2f} s before the run. Date: {stamp}.\nCommand: `{command}`\n\n{body.strip()}\n"
               f"<!-- /bench:{name} -->")  # fmt: skip
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text.rstrip()}\n\n{section}\n"
    DOC.write_text(text if text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    sub = parser.add_subparsers(dest="what", required=True)
    pipe = sub.add_parser("pipeline", help="dub real time factor, parallel speedup, Ray overhead, peak memory")
    pipe.add_argument("--minutes", type=float, default=10.0)
    pipe.add_argument("--long-minutes", type=float, default=60.0, help="0 to skip the long-input memory case")
    pipe.add_argument("--cases", default="serve-p2,serve-p2-spleeter,serve-p1,local")
    pipe.add_argument("--work", type=Path, default=ROOT / "out" / "bench")
    pairs = sub.add_parser("speedup", help="(b) as the median of alternating serve-p2 / serve-p1 pairs")
    pairs.add_argument("--minutes", type=float, default=10.0)
    pairs.add_argument("--pairs", type=int, default=3)
    pairs.add_argument("--work", type=Path, default=ROOT / "out" / "bench")
    api = sub.add_parser("api", help="control plane under load: GET /v1/jobs/{id} p99, POST /v1/jobs throughput")
    api.add_argument("--seconds", type=int, default=30)
    api.add_argument("--get-rate", type=float, default=300.0)
    api.add_argument("--post-connections", default="4,8,16", help="POST /v1/jobs runs, one per connection count")
    cpu = sub.add_parser("api-cpu", help="control plane CPU and database round trips per request, in one process")
    cpu.add_argument("--requests", type=int, default=3000, help="GET requests; half as many POSTs")
    cpu.add_argument("--concurrency", type=int, default=8)
    cpu.add_argument("--profile", type=Path, default=None, help="write a cProfile of the event loop's thread here")
    scale = sub.add_parser("scaling", help="the model work alone vs two processes at once, no Ray: the (b) ceiling")
    scale.add_argument("--lines", type=int, default=40)
    scale.add_argument("--chunks", type=int, default=2, help="60 s ASR chunks per process")
    scale.add_argument("--work", type=Path, default=ROOT / "out" / "bench")
    redub = sub.add_parser("redub", help="`octavia redub` of one line of a long dub, as the user waits for it")
    redub.add_argument("--minutes", type=float, default=10.0)
    redub.add_argument("--edits", type=int, default=3, help="lines shortened (then one made too long)")
    redub.add_argument("--work", type=Path, default=ROOT / "out" / "bench")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    speed = python_speed()
    if args.what == "pipeline":
        from bench.pipeline_bench import report as pipeline_report
        from bench.pipeline_bench import run

        def write(results: list) -> None:  # type: ignore[type-arg]
            write_section(
                "pipeline", "Dub pipeline (offline profile, es, embedded Ray)", pipeline_report(results), speed
            )

        run(
            args.minutes, args.long_minutes or None, args.work, [c for c in args.cases.split(",") if c], on_result=write
        )
    if args.what == "speedup":
        from bench.pipeline_bench import report_pairs, run_pairs

        def write_pairs(done: list) -> None:  # type: ignore[type-arg]
            title = f"Parallel speedup (b): alternating pairs on a {args.minutes:g}-minute dub"
            write_section("speedup", title, report_pairs(done), speed)

        run_pairs(args.minutes, args.pairs, args.work, on_result=write_pairs)
    if args.what == "api":
        from bench.api_bench import report as api_report
        from bench.api_bench import run as run_api

        results = run_api(args.seconds, args.get_rate, tuple(int(c) for c in args.post_connections.split(",")))
        write_section("api", "Control plane (PostgreSQL, `octavia api --workers 2`, wrk on loopback)",
                      api_report(results), speed)  # fmt: skip
    if args.what == "api-cpu":
        from bench.api_cpu import report as cpu_report
        from bench.api_cpu import run as run_cpu

        cpu_results = run_cpu(args.requests, args.concurrency, args.profile)
        write_section("api-cpu", "Control plane CPU per request (PostgreSQL, one worker, raw ASGI calls)",
                      cpu_report(cpu_results), speed)  # fmt: skip
    if args.what == "scaling":
        from bench.scaling import report as scaling_report
        from bench.scaling import run as run_scaling

        write_section("scaling", "Two cores without Ray: the ceiling for the dub's parallel speedup",
                      scaling_report(run_scaling(args.lines, args.chunks, args.work)), speed)  # fmt: skip
    if args.what == "redub":
        from bench.redub_bench import report as redub_report
        from bench.redub_bench import run as run_redub

        write_section("redub", f"Redub one line of a {args.minutes:g}-minute dub (offline profile, es)",
                      redub_report(run_redub(args.minutes, args.work, args.edits), args.minutes), speed)  # fmt: skip
    print(f"results in {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
