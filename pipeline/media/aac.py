"""AAC for a long track, encoded on several cores.

ffmpeg's AAC encoder is single-threaded: the 10-minute dub track took 7-15 s, the serial tail of every dub and half
of a redub. So the track is cut at AAC frame boundaries into one span per core; each span is encoded by its own
ffmpeg, starting a few frames early so that the encoder has settled by the first frame kept, and the frames are
joined. Both sides of a join code the same samples, so the decoded join is as close to the source as any frame
of one encode: on a 10-minute stereo track, 56.48 dB SNR joined and in one piece, and no frame with twice the
error of the one-piece encode (docs/decisions.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from octavia.errors import MediaProcessingError
from pipeline.media.ffmpeg import FfmpegJob

BITRATE = "192k"
# The fast coder: twice as quick as the default twoloop, and at 192 kb/s closer to the source by SNR.
CODEC = ["aac", "-aac_coder", "fast"]
FRAME = 1024  # samples per AAC-LC frame
PRIMING = 1024  # ffmpeg's encoder delay: its first frame codes the 1024 samples before the track
PREROLL_FRAMES = 8  # none: 2 frames after a join came out ~5000x worse; 2 were enough (8 for margin)
MIN_PART_SECONDS = 30.0  # shorter tracks take one encode: starting ffmpeg would cost more than it saves


class EncodedAudio(NamedTuple):
    """An ADTS AAC file from `encode_aac` and the sample rate it was encoded at."""

    path: Path
    sample_rate: int


def encode_aac(wav: str | Path, out: str | Path, *, parts: int = 1) -> EncodedAudio:
    """`wav` as ADTS AAC at `out`, in up to `parts` spans encoded side by side. The stream starts with the
    encoder's priming frame, as one ffmpeg encode does: `mux_input_args` tells ffmpeg where its samples start."""
    wav, out = Path(wav).absolute(), Path(out).absolute()  # ffmpeg reads a relative `a:b.wav` as a URL
    frames, rate = audio_frames(wav)
    parts = max(1, min(parts, int(frames // (MIN_PART_SECONDS * rate))))
    cuts = [0, *(round(frames * k / parts / FRAME) * FRAME for k in range(1, parts)), frames]
    starts = [max(0, cut - PREROLL_FRAMES * FRAME) for cut in cuts[:-1]]  # where each part's encode begins
    jobs: list[FfmpegJob] = []
    paths = [out.with_name(f"{out.stem}.part{k}.aac") for k in range(parts)]
    try:
        for k, path in enumerate(paths):
            first = starts[k]
            last = frames if k == parts - 1 else cuts[k + 1] + 2 * FRAME  # the kept frames' overlap reaches past
            span = f"atrim=start_sample={first}:end_sample={last},asetpts=PTS-STARTPTS"
            jobs.append(FfmpegJob(["-i", str(wav), "-af", span, "-c:a", *CODEC, "-b:a", BITRATE, "-f", "adts",
                                   str(path)], what=f"encode AAC samples {first}-{last} of {wav.name}"))  # fmt: skip
        for job in jobs:
            job.wait()
        with out.open("wb") as joined:
            for k, path in enumerate(paths):
                packets = adts_frames(path.read_bytes())
                # Packet j of an encode starting at sample s holds samples s + (j - 1) * FRAME onwards.
                keep_from = 0 if k == 0 else (cuts[k] - starts[k]) // FRAME + 1
                keep_to = len(packets) if k == parts - 1 else keep_from + (cuts[k + 1] - cuts[k]) // FRAME + (k == 0)
                if keep_to > len(packets):
                    raise MediaProcessingError(
                        f"the AAC encode of part {k} of {wav.name} has {len(packets)} frames, {keep_to} needed",
                        details={"path": str(wav)},
                    )
                joined.writelines(packets[keep_from:keep_to])
    finally:
        for job in jobs:
            job.cancel()
        for path in paths:
            path.unlink(missing_ok=True)
    return EncodedAudio(out, rate)


def mux_input_args(encoded: EncodedAudio) -> list[str]:
    """ffmpeg input arguments for an `encode_aac` stream: shifted back by the priming, so that its first packet
    starts before zero and the MP4 gets the edit list that one direct encode would give it."""
    return ["-itsoffset", f"-{PRIMING / encoded.sample_rate:.9f}", "-i", str(encoded.path)]


def audio_frames(path: Path) -> tuple[int, int]:
    """(frames, sample rate) of an audio file soundfile reads (the WAVs the pipeline writes)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise MediaProcessingError(
            f"cannot read the audio track {path.name}: {exc}", details={"path": str(path)}
        ) from exc
    return info.frames, info.samplerate


def adts_frames(data: bytes) -> list[bytes]:
    """The frames of an ADTS stream, each with its header."""
    frames = []
    at = 0
    while at < len(data):
        header = data[at : at + 7]
        if len(header) < 7 or header[0] != 0xFF or header[1] & 0xF0 != 0xF0:
            raise MediaProcessingError(f"not an ADTS frame at byte {at}", details={"offset": at})
        length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
        if length < 7 or at + length > len(data):
            raise MediaProcessingError(f"ADTS frame at byte {at} runs past the end", details={"offset": at})
        frames.append(data[at : at + length])
        at += length
    return frames
