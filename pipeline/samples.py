"""Generated sample media: two speakers (offline TTS voices) over synthetic music, on an ffmpeg test picture.

Used by `make demo`, the benchmarks and the tests, so every run sees the same deterministic input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Record
from pipeline.media.ffmpeg import run_ffmpeg

RATE = 24_000
# (voice, line): a man and a woman talking, both Kokoro voices.
CONVERSATION: tuple[tuple[str, str], ...] = (
    ("jm_kumo", "Good morning, welcome to the show."),
    ("jf_nezumi", "Thank you, it is great to be here."),
    ("jm_kumo", "Tell us about your new book."),
    ("jf_nezumi", "It is a story about a small town by the sea."),
    ("jm_kumo", "Where did the idea come from?"),
    ("jf_nezumi", "I grew up in a house near the water."),
)


class SampleLine(Record):
    speaker: str
    text: str
    start: float
    end: float


class Sample(Record):
    path: Path
    duration: float
    lines: tuple[SampleLine, ...]


def music(seconds: float, rate: int = RATE, level_db: float = -26.0) -> np.ndarray:
    """Soft chords (I-vi-IV-V), two seconds each, with gentle attacks: a stand-in for a score under speech."""
    total = int(seconds * rate)
    chords = ((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7))
    out = np.zeros(total)
    step = round(2.0 * rate)
    for i, a in enumerate(range(0, total, step)):  # chord by chord: linear in the length (a 60-min score is long)
        t = np.arange(a, min(total, a + step)) / rate
        local = t - a / rate
        env = np.minimum(1.0, local / 0.15) * np.exp(-local * 0.6)
        for f in chords[i % len(chords)]:
            out[a : a + len(t)] += env * np.sin(2 * np.pi * f * t) / 3
    return (out * 10 ** (level_db / 20)).astype(np.float32)


def make_conversation(
    path: Path,
    *,
    lines: tuple[tuple[str, str], ...] = CONVERSATION,
    repeat: int = 1,
    gap: float = 0.7,
    lead: float = 0.5,
    with_music: bool = True,
    video: bool = True,
    size: str = "320x240",
) -> Sample:
    """Speak `lines` (repeated `repeat` times) with Kokoro, lay them over music, and mux with a test picture."""
    from octavia.models.store import ModelStore
    from serve_apps.tts.kokoro import KokoroEngine

    engine = KokoroEngine(ModelStore().resolve("kokoro-82m-int8"))
    spoken: dict[tuple[str, str], np.ndarray] = {}
    pieces = [np.zeros(int(lead * RATE), np.float32)]
    cursor = lead
    placed = []
    for _ in range(repeat):
        for voice, text in lines:
            if (voice, text) not in spoken:
                spoken[(voice, text)] = engine.synthesize(text, "en", voice).resample(RATE).samples
            speech = spoken[(voice, text)]
            placed.append(SampleLine(speaker=voice, text=text, start=cursor, end=cursor + len(speech) / RATE))
            pieces += [speech, np.zeros(int(gap * RATE), np.float32)]
            cursor += len(speech) / RATE + gap
    voice_track = np.concatenate(pieces)
    mixed = voice_track + music(len(voice_track) / RATE) if with_music else voice_track
    mixed = mixed / max(1.0, float(np.abs(mixed).max()) / 0.9)
    wav = path.with_suffix(".gen.wav")
    AudioClip(mixed.astype(np.float32), RATE).write(str(wav))
    duration = len(mixed) / RATE
    try:
        if video:
            run_ffmpeg(
                ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={duration:.3f}", "-i", str(wav),
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                 "-shortest", str(path)],
                what="make the sample video",
            )  # fmt: skip
        else:
            run_ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", "128k", str(path)], what="make the sample audio")
    finally:
        wav.unlink(missing_ok=True)
    return Sample(path=path, duration=duration, lines=tuple(placed))
