"""Where the cores go while a dub runs: CPU seconds of every process on the machine, grouped by role, per step.

    python -m bench.process_cpu --out out/bench/cpu-p2.jsonl -- \\
        python -m pipeline.job --input out/bench/conversation-10min.mp4 --to es --out out/bench/cpu-p2 \\
        --from en --profile offline --separation none --parallelism 2

Runs the command, reads every process's CPU times once a second (psutil), and when it ends prints, for each
step the command logged with its duration ("analyze: 14 chunks in 62.1 s", "speaker profiles: 5.2 s", "cluster
ready in 37.3 s"), the share of a core each group of processes took. A model that gets less than a full core
while both cores are busy is losing time to the rest of the table (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

# Process command line -> group, first match wins. Ray names its workers' processes after what they run.
_GROUPS = (
    (re.compile(r"ServeReplica:(\w+):"), "replica:{}"),
    (re.compile(r"MapWorker"), "data actors"),
    (re.compile(r"_StatsActor|_AutoscalingCoordinatorActor|ActorLocationTracker"), "Ray Data's own actors"),
    (re.compile(r"ServeController"), "Serve controller"),
    (re.compile(r"DashboardAgent|RuntimeEnvAgent|dashboard\.py"), "dashboard and agents"),
    (re.compile(r"log_monitor\.py|monitor\.py"), "log and autoscaler monitors"),
    (re.compile(r"raylet|gcs_server"), "raylet and GCS"),
    (re.compile(r"ray::"), "other Ray workers"),
)
# The driver's ffmpeg processes often live for less than a sample: they are counted when the driver has reaped
# them (its children's CPU times), not while they run, so that none is counted twice or missed.
SUBPROCESSES = "subprocesses of the driver (ffmpeg)"
_STEP = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO [\w.]+: "
    r"(?:(?P<ready>cluster ready) in |(?P<step>[^:(]+?)(?: \([^)]*\))?: (?:[^:]*? in )?)(?P<seconds>\d+(?:\.\d+)?) s\b"
)


@dataclass(frozen=True)
class Step:
    name: str
    start: float  # epoch seconds
    end: float


@dataclass(frozen=True)
class Sample:
    at: float
    cpu: dict[int, tuple[str, float]]  # pid -> (group, CPU seconds so far)


def group_of(cmdline: str, driver_pid: int, pid: int) -> str:
    if pid == driver_pid:
        return "driver"
    for pattern, name in _GROUPS:
        if match := pattern.search(cmdline):
            return name.format(*match.groups())
    return "rest of the machine"


def sample(driver_pid: int) -> Sample:
    cpu: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter(["pid", "ppid", "cmdline", "name", "cpu_times"]):
        pid, times = process.info["pid"], process.info["cpu_times"]
        if times is None or (process.info["ppid"] == driver_pid and process.info["name"] == "ffmpeg"):
            continue
        cmdline = " ".join(process.info["cmdline"] or [process.info["name"] or ""])
        cpu[pid] = (group_of(cmdline, driver_pid, pid), times.user + times.system)
        if pid == driver_pid:
            cpu[-1] = (SUBPROCESSES, times.children_user + times.children_system)
    return Sample(time.time(), cpu)


def steps_in(log: str) -> list[Step]:
    steps = []
    for line in log.splitlines():
        if match := _STEP.match(line):
            end = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            name = "cluster start" if match["ready"] else match["step"].strip()
            steps.append(Step(name, end - float(match["seconds"]), end))
    return steps


def shares(samples: list[Sample], step: Step) -> dict[str, float]:
    """Each group's CPU seconds ÷ wall seconds over the samples inside `step` (1.0 = one full core)."""
    inside = [s for s in samples if step.start <= s.at <= step.end]
    if len(inside) < 2:
        return {}
    first, last = inside[0], inside[-1]
    used: dict[str, float] = defaultdict(float)
    for pid, (group, cpu) in last.cpu.items():
        used[group] += cpu - first.cpu.get(pid, (group, 0.0))[1]  # a process that started inside: from its start
    wall = last.at - first.at
    return {group: seconds / wall for group, seconds in used.items()}


def table(samples: list[Sample], steps: list[Step], *, min_share: float = 0.005) -> str:
    columns = [(step, shares(samples, step)) for step in steps if step.end - step.start >= 3.0]
    groups = sorted({g for _, s in columns for g, v in s.items() if v >= min_share},
                    key=lambda g: -max(s.get(g, 0.0) for _, s in columns))  # fmt: skip
    head = "| % of a core | " + " | ".join(f"{step.name} ({step.end - step.start:.0f} s)" for step, _ in columns)
    rows = [head + " |", "| --- |" + " --- |" * len(columns)]
    for g in groups:
        rows.append(f"| {g} | " + " | ".join(f"{100 * s.get(g, 0.0):.1f}" for _, s in columns) + " |")
    rows.append("| all | " + " | ".join(f"{100 * sum(s.values()):.1f}" for _, s in columns) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.process_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="samples (JSON lines) and the command's log")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_suffix(".log")
    samples: list[Sample] = []
    with log_path.open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        done = threading.Event()

        def watch() -> None:
            while not done.wait(1.0 if samples else 0.0):
                samples.append(sample(child.pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = child.wait()
        done.set()
        watcher.join()
    with args.out.open("w") as out:
        for s in samples:
            out.write(json.dumps({"at": s.at, "cpu": s.cpu}) + "\n")
    print(table(samples, steps_in(log_path.read_text())))
    print(f"\ncommand exit code {code}; log {log_path}, samples {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
