"""How long `octavia redub` takes to change one line of a long dub ("seconds, not minutes", issue 3).

The benchmark input is dubbed once (serve-p2, no separation; kept in WORK for the next run), copied, and then
lines of the copy are changed through the CLI, each edit timed as the user waits for it (a new process: imports,
loading the TTS, synthesis of the line, fit, mix, mux). Edits that keep the fit plan's video slow-downs keep the
slowed background spans; one that makes a line too long for its slot adds a slow-down (the picture is copied with
new timestamps either way: the benchmark input is H.264).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.media import long_conversation
from pipeline.mux import same_retiming
from pipeline.records import DubbedLine, LanguageResult, TranscriptDocument

LANGUAGE = "es"


@dataclass(frozen=True)
class RedubTiming:
    edit: str
    segment_id: int
    wall_seconds: float
    slowdowns_before: int
    slowdowns_after: int
    retimed: bool  # the plan slows the video over other spans than before


def dubbed(work: Path, minutes: float) -> tuple[Path, Path]:
    """(transcript, artifact dir) of the benchmark input dubbed into Spanish, dubbing it if WORK has none."""
    sample = long_conversation(work, minutes)
    out = work / f"redub-{minutes:g}min"
    artifacts = work / f"redub-{minutes:g}min-artifacts"
    transcript = out / f"{sample.path.stem}.transcript.json"
    if not transcript.exists():
        print(f"[bench] dubbing the {minutes:g}-minute input once for the redubs ...", flush=True)
        command = [sys.executable, "-m", "pipeline.job", "--input", str(sample.path), "--to", LANGUAGE, "--out",
                   str(out), "--from", "en", "--profile", "offline", "--separation", "none"]  # fmt: skip
        with (work / f"redub-{minutes:g}min-dub.log").open("w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                           env={**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts), "RAY_ADDRESS": ""})  # fmt: skip
    return transcript, artifacts


def edits(lines: Sequence[DubbedLine], shorter: int) -> list[tuple[str, DubbedLine, str]]:
    """`shorter` lines spread over the dub, each cut to half its words (the slow-downs stay as they are), then one
    line said three times over (too long for its slot: a new slow-down). Only lines that slowed nothing down."""
    plain = [line for line in lines
             if line.fit is not None and line.fit.slowdown is None and len(line.text.split()) >= 4]  # fmt: skip
    if len(plain) < shorter + 1:
        raise RuntimeError(f"the dub has only {len(plain)} lines to edit")
    picks = [plain[len(plain) * k // (shorter + 2)] for k in range(1, shorter + 2)]
    chosen = [("half the words", line, " ".join(line.text.split()[: len(line.text.split()) // 2]))
              for line in picks[:shorter]]  # fmt: skip
    last = picks[-1]
    return [*chosen, ("said three times", last, " ".join([last.text] * 3))]


def _dub(transcript: Path) -> LanguageResult:
    return TranscriptDocument.model_validate_json(transcript.read_text()).languages[LANGUAGE]


def run(minutes: float, work: Path, shorter: int = 3) -> list[RedubTiming]:
    transcript, artifacts = dubbed(work, minutes)
    copy = work / f"redub-{minutes:g}min-run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(transcript.parent, copy)
    target = copy / transcript.name
    results = []
    try:
        dub = _dub(target)
        before = dub.plan
        for edit, line, text in edits(dub.lines, shorter):
            print(f"[bench] redub line {line.segment_id} ({edit}) ...", flush=True)
            command = [sys.executable, "-m", "octavia.cli", "redub", str(target), "--lang", LANGUAGE,
                       "--line", str(line.segment_id), "--text", text]  # fmt: skip
            started = time.monotonic()
            subprocess.run(command, check=True, capture_output=True,
                           env={**os.environ, "OCTAVIA_ARTIFACT_DIR": str(artifacts)})  # fmt: skip
            wall = time.monotonic() - started
            after = _dub(target).plan
            retimed = not same_retiming(before, after)
            results.append(
                RedubTiming(edit, line.segment_id, wall, len(before.slowdowns), len(after.slowdowns), retimed)
            )
            before = after  # the next edit starts from this one's result
            print(f"[bench] {wall:.1f} s", flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return results


def report(results: list[RedubTiming], minutes: float) -> str:
    rows = [
        "| edit | line | wall (the CLI, start to exit) | video slow-downs before → after | retiming |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        retiming = "changed" if r.retimed else "kept"
        rows.append(f"| {r.edit} | {r.segment_id} | {r.wall_seconds:.1f} s | {r.slowdowns_before} → "
                    f"{r.slowdowns_after} | {retiming} |")  # fmt: skip
    kept = [r.wall_seconds for r in results if not r.retimed]
    retimed = [r.wall_seconds for r in results if r.retimed]
    lines = ["\n".join(rows), ""]
    if kept:
        lines.append(f"- one line of a {minutes:g}-minute dub, slow-downs unchanged: {statistics.median(kept):.1f} s "
                     f"(median of {len(kept)}; issue 3's goal: seconds, not minutes)")  # fmt: skip
    if retimed:
        lines.append(f"- one line that adds a slow-down: {statistics.median(retimed):.1f} s")
    return "\n".join(lines)
