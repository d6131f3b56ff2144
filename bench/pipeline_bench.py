"""Dub benchmarks (issue 3, item 6): real time factor, parallel speedup, Ray overhead and peak memory.

Each case is one `python -m pipeline.job` process with a fresh artifact store (nothing cached), on the embedded
Ray cluster unless `--local`. Wall time is measured from outside; the job logs when its cluster and Serve
applications are ready, so start-up is reported apart from the dub itself. Memory is the peak, sampled every
0.25 s, of the summed RSS of the job's whole process tree (driver, raylet, GCS, Serve replicas, Data actors);
pages shared between processes (Ray's object store, shared libraries) count once per process, so it is an upper
bound.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.media import long_conversation


@dataclass(frozen=True)
class Case:
    name: str
    separation: str = "none"
    parallelism: int = 2
    local: bool = False

    def arguments(self) -> list[str]:
        args = ["--separation", self.separation, "--parallelism", str(self.parallelism)]
        # Local runs its engines with one thread each, like the Serve replicas of serve-cpu.yaml: (c) compares
        # the same work on the same cores, with and without Ray.
        return [*args, "--local", "--local-threads", "1"] if self.local else args


@dataclass(frozen=True)
class Measurement:
    case: Case
    minutes: float
    media_seconds: float
    wall_seconds: float
    startup_seconds: float  # ray.init + Serve deploy (0 for --local)
    peak_rss_bytes: int

    @property
    def dub_seconds(self) -> float:
        return self.wall_seconds - self.startup_seconds

    @property
    def rtf(self) -> float:
        return self.wall_seconds / self.media_seconds

    @property
    def dub_rtf(self) -> float:
        return self.dub_seconds / self.media_seconds


class TreeMemory:
    """Peak summed RSS of a process and all its descendants, sampled on a thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                with contextlib.suppress(psutil.Error):  # a process that ended between listing and reading
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)


_READY = re.compile(r"cluster ready in ([0-9.]+) s")


def run_case(case: Case, sample_path: Path, media_seconds: float, minutes: float, work: Path) -> Measurement:
    out = Path(tempfile.mkdtemp(prefix=f"out-{case.name}-", dir=work))
    artifacts = Path(tempfile.mkdtemp(prefix=f"artifacts-{case.name}-", dir=work))
    log_path = work / f"{case.name}-{minutes:g}min.log"
    command = [sys.executable, "-m", "pipeline.job", "--input", str(sample_path), "--to", "es", "--out", str(out),
               "--from", "en", "--profile", "offline", *case.arguments()]  # fmt: skip
    env = {"OCTAVIA_ARTIFACT_DIR": str(artifacts), "RAY_ADDRESS": ""}
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
        with TreeMemory(proc.pid) as memory:
            code = proc.wait()
    wall = time.monotonic() - started
    text = log_path.read_text()
    if code != 0:
        raise RuntimeError(f"{case.name} exited {code}; see {log_path}:\n{text[-3000:]}")
    ready = _READY.search(text)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(artifacts, ignore_errors=True)
    return Measurement(case, minutes, media_seconds, wall, float(ready.group(1)) if ready else 0.0, memory.peak)


CASES = {
    "serve-p2": Case("serve-p2"),
    "serve-p2-spleeter": Case("serve-p2-spleeter", separation="spleeter"),
    "serve-p1": Case("serve-p1", parallelism=1),
    "local": Case("local", parallelism=1, local=True),
}


def run(
    minutes: float,
    long_minutes: float | None,
    work: Path,
    cases: list[str],
    on_result: Callable[[list[Measurement]], None] = lambda _: None,
) -> list[Measurement]:
    """Every case on a `minutes` input, then serve-p2 on a `long_minutes` one. Results accumulate in
    WORK/results.json across runs (a case measured again replaces its row); `on_result` gets all of them after
    each case, so a long run that is stopped keeps what it measured."""
    saved = _load(work)
    results: list[Measurement] = []

    def record(m: Measurement) -> None:
        results.append(m)
        saved[(m.case.name, m.minutes)] = m
        _save(work, saved)
        on_result(sorted(saved.values(), key=lambda r: (r.minutes, list(CASES).index(r.case.name))))

    sample = long_conversation(work, minutes)
    for name in cases:
        print(f"[bench] {name} on {minutes:g} min ...", flush=True)
        m = run_case(CASES[name], sample.path, sample.duration, minutes, work)
        print(f"[bench] {name}: {m.wall_seconds:.1f} s wall, rtf {m.rtf:.3f}, peak {m.peak_rss_bytes / 2**30:.2f} GiB",
              flush=True)  # fmt: skip
        record(m)
    if long_minutes:
        long_sample = long_conversation(work, long_minutes)
        print(f"[bench] serve-p2 on {long_minutes:g} min ...", flush=True)
        m = run_case(CASES["serve-p2"], long_sample.path, long_sample.duration, long_minutes, work)
        print(f"[bench] serve-p2 ({long_minutes:g} min): {m.wall_seconds:.1f} s, "
              f"peak {m.peak_rss_bytes / 2**30:.2f} GiB", flush=True)  # fmt: skip
        record(m)
    return results


@dataclass(frozen=True)
class Pair:
    """A serve-p2 run next to a serve-p1 run of the same input: only such a pair compares parallelism, because
    the host's speed drifts between runs (docs/benchmarks.md: p2 swung by 18 % on one machine, p1 by 0.4 %)."""

    p2: Measurement
    p1: Measurement
    p2_first: bool

    @property
    def speedup(self) -> float:
        return self.p1.wall_seconds / self.p2.wall_seconds

    @property
    def dub_speedup(self) -> float:
        return self.p1.dub_seconds / self.p2.dub_seconds


def pair_orders(pairs: int) -> list[tuple[str, str]]:
    """The order of the two runs in each pair, alternating, so that neither parallelism always runs first (on a
    warmer or a quieter host)."""
    return [("serve-p2", "serve-p1") if i % 2 == 0 else ("serve-p1", "serve-p2") for i in range(pairs)]


def run_pairs(
    minutes: float, pairs: int, work: Path, on_result: Callable[[list[Pair]], None] = lambda _: None
) -> list[Pair]:
    """(b) as `pairs` alternating pairs of serve-p2 and serve-p1 on a `minutes` input; `on_result` gets the pairs
    measured so far after each one."""
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    sample = long_conversation(work, minutes)
    done: list[Pair] = []
    for i, order in enumerate(pair_orders(pairs), 1):
        runs = {}
        for name in order:
            print(f"[bench] pair {i}/{pairs}: {name} on {minutes:g} min ...", flush=True)
            runs[name] = run_case(CASES[name], sample.path, sample.duration, minutes, work)
            print(f"[bench] {name}: {runs[name].wall_seconds:.1f} s wall", flush=True)
        done.append(Pair(runs["serve-p2"], runs["serve-p1"], p2_first=order[0] == "serve-p2"))
        on_result(done)
    return done


def report_pairs(pairs: list[Pair]) -> str:
    lines = [
        "Each pair is a serve-p2 and a serve-p1 run of the same input, one after the other, the order alternating "
        "from pair to pair; (b) = p1 wall ÷ p2 wall.",
        "",
        "| pair | order | p2 wall | p1 wall | (b) | p2 start-up | p1 start-up | (b) without start-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, pair in enumerate(pairs, 1):
        order = "p2, p1" if pair.p2_first else "p1, p2"
        lines.append(
            f"| {i} | {order} | {pair.p2.wall_seconds:.1f} s | {pair.p1.wall_seconds:.1f} s | {pair.speedup:.2f}× | "
            f"{pair.p2.startup_seconds:.1f} s | {pair.p1.startup_seconds:.1f} s | {pair.dub_speedup:.2f}× |"
        )
    speedups = [p.speedup for p in pairs]
    lines += [
        "",
        f"- (b) parallelism 2 vs 1, median of {len(pairs)} pair{'s' if len(pairs) > 1 else ''}: "
        f"{statistics.median(speedups):.2f}× (range {min(speedups):.2f}-{max(speedups):.2f}×; without start-up "
        f"{statistics.median([p.dub_speedup for p in pairs]):.2f}×; target ≥ 1.7×)",
    ]
    return "\n".join(lines)


def _load(work: Path) -> dict[tuple[str, float], Measurement]:
    path = work / "results.json"
    if not path.exists():
        return {}
    rows = [Measurement(**{**r, "case": Case(**r["case"])}) for r in json.loads(path.read_text())]
    return {(m.case.name, m.minutes): m for m in rows}


def _save(work: Path, saved: dict[tuple[str, float], Measurement]) -> None:
    (work / "results.json").write_text(json.dumps([dataclasses.asdict(m) for m in saved.values()], indent=1))


def report(results: list[Measurement]) -> str:
    by = {(m.case.name, m.minutes): m for m in results}
    short = min(m.minutes for m in results)
    lines = [
        "Cases: `serve-p2`/`serve-p1` = Serve + Data at parallelism 2/1, `-spleeter` = with separation, `local` = "
        "every stage in one process (`--local`). Rows accumulate over runs (`out/bench/results.json`); "
        "the command below made the last one.",
        "",
        "| case | input | wall | start-up | dub | wall ÷ duration | dub ÷ duration | peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in results:
        lines.append(
            f"| {m.case.name} | {m.media_seconds / 60:.1f} min | {m.wall_seconds:.1f} s | {m.startup_seconds:.1f} s | "
            f"{m.dub_seconds:.1f} s | {m.rtf:.3f} | {m.dub_rtf:.3f} | {m.peak_rss_bytes / 2**30:.2f} GiB |"
        )
    lines.append("")
    checks = []
    if (a := by.get(("serve-p2", short))) is not None:
        checks.append(f"- (a) without separation: {a.rtf:.2f}× real time (target ≤ 1.0×)")
    if (s := by.get(("serve-p2-spleeter", short))) is not None:
        checks.append(f"- (a) with Spleeter separation: {s.rtf:.2f}× real time (target ≤ 2.0×)")
    if a is not None and (p1 := by.get(("serve-p1", short))) is not None:
        checks.append(
            f"- (b) parallelism 2 vs 1: {p1.wall_seconds / a.wall_seconds:.2f}× faster overall, "
            f"{p1.dub_seconds / a.dub_seconds:.2f}× on the dub without start-up (target ≥ 1.7×)"
        )
        if (local := by.get(("local", short))) is not None:
            checks.append(
                f"- (c) Ray overhead, Serve + Data at parallelism 1 vs every stage in one process: "
                f"{(p1.wall_seconds / local.wall_seconds - 1) * 100:+.1f}% overall, "
                f"{(p1.dub_seconds / local.wall_seconds - 1) * 100:+.1f}% without cluster start-up (target ≤ 10%)"
            )
    longs = [m for m in results if m.case.name == "serve-p2" and m.minutes != short]
    if a is not None and longs:
        big = longs[0]
        checks.append(
            f"- (d) peak memory: {a.peak_rss_bytes / 2**30:.2f} GiB for {short:g} min, "
            f"{big.peak_rss_bytes / 2**30:.2f} GiB for {big.minutes:g} min: "
            f"{big.peak_rss_bytes / a.peak_rss_bytes:.2f}× (target ≤ 1.2×)"
        )
    return "\n".join(lines + checks)
