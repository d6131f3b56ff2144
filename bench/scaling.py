"""What two cores give the dub's model work on this machine, without Ray: the ceiling for (b) of issue 3.

The heaviest stages' engines (Kokoro speaking Spanish lines, Whisper transcribing a 60 s chunk), one thread each as
in serve-cpu.yaml, run in one process alone and then in two processes started together on the same work. Each
phase (synthesis, then ASR) starts at a barrier, after the models are loaded and warmed up, so the figure is the
engines' own throughput: `2 × alone ÷ together` is the most that a second core can speed their work up. The
dub's (b) can reach it only for the parts of the job that run in parallel at all.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.media import long_conversation, script


@dataclass(frozen=True)
class WorkTimes:
    """Seconds per item of one process, with the CPU it got while timing."""

    synthesis_per_line: float
    asr_per_chunk: float
    cpu_share: float  # process CPU seconds ÷ wall seconds over the timed part


@dataclass(frozen=True)
class Scaling:
    lines: int
    chunks: int
    alone: WorkTimes
    together: tuple[WorkTimes, WorkTimes]

    def speedup(self, pick: str) -> float:
        """2 × (seconds per item alone) ÷ (mean seconds per item when two processes share the machine)."""
        paired = sum(getattr(t, pick) for t in self.together) / len(self.together)
        return 2 * getattr(self.alone, pick) / paired


def _sentences(lines: int) -> list[str]:
    from octavia.profiles import PROFILES
    from octavia.records import TranslationRequest
    from pipeline.clients import LocalClients

    clients = LocalClients(PROFILES["offline"], "none")
    english = [text for _, text in script(lines * 4.0)][:lines]
    batch = [TranslationRequest(segment_id=i, text=t) for i, t in enumerate(english)]
    return [t.text for t in clients.translate(batch, "en", "es")]


def _work(sentences: list[str], chunk_wav: str, chunks: int, barrier: Any, results: Any) -> None:
    """One process's share: load and warm up the engines, wait for the others, then time the work."""
    from octavia.audio import AudioClip
    from octavia.profiles import PROFILES
    from pipeline.clients import LocalClients

    clients = LocalClients(PROFILES["offline"], "none", cpu_threads=1)
    chunk = AudioClip.read(chunk_wav, 16_000)
    voices = [v.id for v in clients.voices("es")][:2]
    clients.synthesize(sentences[0], "es", voices[0])
    clients.transcribe(chunk.slice(0.0, 5.0), "en")
    cpu = time.process_time()
    barrier.wait()  # each phase starts together, so the two processes run the same engine at the same time
    started = time.perf_counter()
    for i, text in enumerate(sentences):
        clients.synthesize(text, "es", voices[i % len(voices)])
    synthesis = time.perf_counter() - started
    barrier.wait()
    started = time.perf_counter()
    for _ in range(chunks):
        clients.transcribe(chunk, "en")
    asr = time.perf_counter() - started
    results.put(WorkTimes(synthesis / len(sentences), asr / chunks, (time.process_time() - cpu) / (synthesis + asr)))


def _measure(processes: int, sentences: list[str], chunk_wav: str, chunks: int) -> list[WorkTimes]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_work, args=(sentences, chunk_wav, chunks, barrier, results))
               for _ in range(processes)]  # fmt: skip
    for w in workers:
        w.start()
    times = [results.get(timeout=1800) for _ in workers]
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise RuntimeError(f"a scaling worker exited {w.exitcode}")
    return times


def run(lines: int, chunks: int, work: Path) -> Scaling:
    from pipeline.media.extract import extract_audio

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as Ray sets it for a replica with num_cpus < 2
    chunk_wav = work / "scaling-chunk.wav"
    extract_audio(long_conversation(work, 1.0).path, chunk_wav)  # the dub benchmark's input, one chunk long
    sentences = _sentences(lines)
    print(f"[bench] scaling: {lines} lines + {chunks} × 60 s ASR, one process ...", flush=True)
    (alone,) = _measure(1, sentences, str(chunk_wav), chunks)
    print("[bench] scaling: the same in two processes at once ...", flush=True)
    first, second = _measure(2, sentences, str(chunk_wav), chunks)
    return Scaling(lines, chunks, alone, (first, second))


def report(s: Scaling) -> str:
    rows = [("alone", s.alone), ("together, first", s.together[0]), ("together, second", s.together[1])]
    lines = [
        f"{s.lines} Spanish lines through Kokoro, then {s.chunks} × a 60 s chunk through Whisper (offline profile, "
        "one thread per process), in one process and then in two at once; no Ray.",
        "",
        "| run | synthesis, s per line | ASR, s per 60 s chunk | CPU ÷ wall |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {t.synthesis_per_line:.3f} | {t.asr_per_chunk:.2f} | {t.cpu_share:.2f} |" for name, t in rows),
        "",
        f"- Two cores give synthesis **{s.speedup('synthesis_per_line'):.2f}×** and ASR "
        f"**{s.speedup('asr_per_chunk'):.2f}×** the work of one: the ceiling for the parallel parts of the dub's (b).",
    ]
    return "\n".join(lines)
