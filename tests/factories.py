"""Deterministic media generated for tests: speech from espeak-ng, video/audio from ffmpeg test sources."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from octavia.audio import AudioClip


def espeak(text: str, path: Path, *, voice: str = "en-us", pitch: int = 50, speed: int = 160) -> AudioClip:
    """Speak `text` with espeak-ng into `path` (22.05 kHz mono WAV) and return it."""
    subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return AudioClip.read(str(path))


def tone(seconds: float, freq: float = 220.0, sample_rate: int = 16_000, amplitude: float = 0.3) -> AudioClip:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return AudioClip((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32), sample_rate)


def concat(*clips: AudioClip, gap: float = 0.0) -> AudioClip:
    sr = clips[0].sample_rate
    parts: list[np.ndarray] = []
    for c in clips:
        parts.append(c.mono().resample(sr).samples)
        if gap:
            parts.append(np.zeros(int(gap * sr), np.float32))
    return AudioClip(np.concatenate(parts), sr)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_video(path: Path, audio: Path | None, *, seconds: float, size: str = "320x240", rate: int = 25) -> Path:
    """An H.264 test-pattern video, with `audio` as its AAC track (or no audio track)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio is not None:
        args += ["-i", str(audio), "-c:a", "aac", "-b:a", "96k", "-shortest"]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))
    return path


def video_md5(path: Path) -> str:
    """MD5 of the first video stream's packets as stored (copied, not decoded): equal for a copied picture."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def frame_times(path: Path) -> list[float]:
    """Presentation times of the first video stream's frames, in the order the decoder gives the frames (which
    is the order they are shown in: a B-frame with a wrong timestamp shows up as a time going back)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [float(line.split(",")[0]) for line in out.stdout.split()]


def dub_stopped_by_sigterm(args: list[str], env: dict[str, str], ready: Callable[[], bool]) -> tuple[int, str]:
    """Runs `octavia dub ARGS`, sends it SIGTERM as soon as `ready()` holds; returns its exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "octavia.cli", "dub", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, "the dub ended before it was ready to stop"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)  # the stopped run must not hang
    return proc.returncode, stderr


@contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "2m") mounted at `where`: a disk that fills up for real. Needs root (CI is)."""
    import pytest

    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root only): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)
