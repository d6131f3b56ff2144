"""Put the dub tracks back with the picture: one MP4 (or M4A for audio-only input) per job.

The video stream is copied bit for bit. Where the fit plan slowed parts of the video down, the copied frames get
new timestamps (ffmpeg's `setts` bitstream filter): a slowed frame is shown longer, as a player shows any
variable-frame-rate video, and no pixel is re-encoded. The picture is re-encoded (H.264, libx264) only when
- subtitles are burned into the picture, or
- its codec cannot be stored in MP4 (e.g. VP8 or Theora from WebM/Ogg; VP9, AV1, H.264 and HEVC are copied);
such a picture is retimed by `setpts` in the encode.

When the picture must be re-encoded, `start_picture` can begin that encode as soon as the fit plan is known, in
the background while the dub's audio is built, and `mux(picture=...)` then copies its result. A redub whose fit
plan slows the video exactly as before (and burns no subtitles) keeps the earlier output's picture instead.

Audio: each dub track is AAC (ffmpeg's fast coder at 192 kb/s, encoded on every core: `pipeline.media.aac`),
tagged with its ISO 639-2 language code (`spa`, `fre`, `ger`, ...), the first one flagged default. On request the
original audio is appended last (copied when MP4 can hold its codec), tagged with its language if known. The file
is written under a temporary name in the same folder and renamed at the end, so a failed or interrupted mux never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from octavia.errors import OctaviaError, UnsupportedLanguageError
from octavia.languages import display_name, iso639_2
from octavia.records import Record
from pipeline.media.aac import BITRATE, CODEC, encode_aac, mux_input_args
from pipeline.media.ffmpeg import FfmpegJob, filtergraph_value, run_ffmpeg
from pipeline.media.probe import MediaInfo, VideoStreamInfo, probe_media
from pipeline.timeline import FitPlan, VideoSlowdown

# Codecs ffmpeg's MP4 muxer stores (and common players read); anything else is re-encoded.
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mpeg1video"})
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})

# Retimed timestamps are computed at this resolution: a coarse input time base (AVI's 1/25 s) would round a
# slowed frame's new time by up to half a frame.
RETIME_TIME_BASE = "1/90000"
# Linux caps one command-line argument at 128 KiB (~600 spans of timestamp expression): a plan with more slowed
# spans is applied in several copies of the picture, this many spans each.
SPANS_PER_RETIME_PASS = 300

log = logging.getLogger(__name__)


class AudioTrack(Record):
    """A dub track to add: an audio file and its language (any form `octavia.languages` accepts)."""

    path: Path
    language: str
    title: str | None = None


def output_suffix(info: MediaInfo) -> str:
    """`.mp4` for anything with a picture, `.m4a` for audio-only input."""
    return ".mp4" if info.has_video else ".m4a"


def video_reencode_reason(info: MediaInfo, *, burn_subtitles: bool = False) -> str | None:
    """Why the video cannot simply be copied (None when it can; a slowed picture is copied and retimed)."""
    if info.video is None:
        return None
    if burn_subtitles:
        return "subtitles are burned in"
    if info.video.codec not in MP4_VIDEO_CODECS:
        return f"{info.video.codec} video cannot be stored in MP4"
    return None


class Picture:
    """The input's picture being re-encoded (retimed, subtitles burned) into a video-only file, in the background."""

    def __init__(self, video_input: Path, video: VideoStreamInfo, work_dir: Path, *, plan: FitPlan | None,
                 subtitles_to_burn: str | Path | None, reason: str) -> None:  # fmt: skip
        self.path = work_dir / "picture.mp4"
        self.reason = reason
        args = _video_encode_args(video, plan, subtitles_to_burn, work_dir)
        self._started = time.monotonic()
        self._job = FfmpegJob(["-i", str(video_input), "-map", f"0:{video.index}", "-an", "-sn", "-dn", *args,
                               str(self.path)], what=f"re-encode the picture ({reason})")  # fmt: skip
        self._done = False

    def wait(self) -> Path:
        if not self._done:
            self._job.wait()
            self._done = True
            log.info("picture re-encoded (%s) in %.1f s", self.reason, time.monotonic() - self._started)
        return self.path

    def cancel(self) -> None:
        self._job.cancel()


class EarlierOutput(Record):
    """A video this input was dubbed into before (a redub's current output) and the fit plan it was made with."""

    path: Path
    plan: FitPlan


class KeptPicture:
    """The picture of an earlier output of the same input, retimed the same way and without burned subtitles:
    exactly what the encode would give again, so the mux copies it (x264 took 23 s of a 10-minute redub)."""

    reason = "kept from the earlier output, its retiming unchanged"

    def __init__(self, path: Path) -> None:
        self.path = path

    def wait(self) -> Path:
        return self.path

    def cancel(self) -> None:
        """Nothing runs."""


def start_picture(
    video_input: str | Path,
    work_dir: Path,
    *,
    plan: FitPlan | None = None,
    subtitles_to_burn: str | Path | None = None,
    earlier: EarlierOutput | None = None,
) -> Picture | KeptPicture | None:
    """Start re-encoding the picture of `video_input` into `work_dir` if `mux` would have to (None: it is copied).
    The caller waits through `mux(picture=...)` and cancels it if the run fails first. `earlier`: an output made
    from the same input before, whose picture is kept when it needs no change."""
    info = probe_media(video_input)
    reason = video_reencode_reason(info, burn_subtitles=subtitles_to_burn is not None)
    if reason is None or info.video is None:
        return None
    if earlier is not None and subtitles_to_burn is None and _picture_unchanged(earlier, plan, info):
        return KeptPicture(earlier.path.absolute())
    return Picture(info.path, info.video, work_dir.absolute(), plan=plan, subtitles_to_burn=subtitles_to_burn,
                   reason=reason)  # fmt: skip


def same_retiming(a: FitPlan, b: FitPlan) -> bool:
    """Whether the two plans slow the video down over the same spans by the same amounts."""
    if len(a.slowdowns) != len(b.slowdowns) or abs(a.duration - b.duration) > 1e-6:
        return False
    return all(
        abs(x.start - y.start) <= 1e-6 and abs(x.end - y.end) <= 1e-6
        and abs(x.output_duration - y.output_duration) <= 1e-6
        for x, y in zip(a.slowdowns, b.slowdowns, strict=True)
    )  # fmt: skip


def _picture_unchanged(earlier: EarlierOutput, plan: FitPlan | None, info: MediaInfo) -> bool:
    """The earlier output is still there, holds a picture MP4 can copy, as long as this plan's output, and was
    retimed as this plan retimes (its plan from the transcript; a file edited since would fail the length)."""
    if plan is None or not same_retiming(plan, earlier.plan) or not earlier.path.is_file():
        return False
    try:
        kept = probe_media(earlier.path)
    except OctaviaError:
        return False
    video = kept.video
    if video is None or video.codec not in MP4_VIDEO_CODECS or info.video is None:
        return False
    # Encoding turns a rotated picture upright and gives an odd side one black column or row.
    width, height = info.video.display_size
    if (video.width, video.height) != (width + width % 2, height + height % 2):
        return False
    length = video.duration or kept.duration
    return length is not None and abs(length - plan.duration) < 0.1


def mux(
    video_input: str | Path,
    tracks: Sequence[AudioTrack],
    out_path: str | Path,
    *,
    original_audio: bool = False,
    original_language: str | None = None,
    subtitles_to_burn: str | Path | None = None,
    plan: FitPlan | None = None,
    picture: Picture | KeptPicture | None = None,
) -> Path:
    """Write `out_path` from the picture of `video_input` and the dub `tracks` (already on the output timeline).

    `original_language` overrides the language tag of the kept original track (default: the input's own tag).
    `plan` is the fit plan; when it slowed the video down, the picture and the kept original audio are retimed
    with it. `picture`, from `start_picture` with the same plan and subtitles, is the re-encoded picture to copy
    instead of encoding it here. Returns `out_path`.
    """
    info = probe_media(video_input)
    out_path = Path(out_path).absolute()  # ffmpeg reads a relative `a:b.mp4` as a URL
    if not tracks:
        raise ValueError("mux needs at least one dub track")
    if out_path.suffix.lower() != output_suffix(info):
        raise ValueError(f"output for {info.path.name} must end in {output_suffix(info)}, got {out_path.name}")
    if out_path.resolve() == info.path.resolve():
        raise ValueError("the output would overwrite the input")
    for track in tracks:
        if not Path(track.path).is_file():
            raise ValueError(f"dub track {track.path} does not exist")
    if subtitles_to_burn is not None and not Path(subtitles_to_burn).is_file():
        raise ValueError(f"subtitle file {subtitles_to_burn} does not exist")
    # (ISO 639-2 tag, title) per output audio stream; bad language codes fail here, before any work
    audio_meta = [(iso639_2(t.language), t.title or f"{display_name(t.language)} (dub)") for t in tracks]
    original = info.require_audio() if original_audio else None
    if original is not None:
        audio_meta.append((_original_tag(original_language, original.language), "Original"))

    with tempfile.TemporaryDirectory(prefix="octavia-mux-") as tmp:
        # The dub tracks first: a picture still being encoded shares the cores with them.
        encoded = [_encoded_track(Path(t.path), Path(tmp) / f"dub{k}.aac") for k, t in enumerate(tracks)]
        inputs = ["-i", str(info.path)]
        maps: list[str] = []
        codecs: list[str] = []

        reason = video_reencode_reason(info, burn_subtitles=subtitles_to_burn is not None)
        if info.video is not None:
            if picture is not None:
                inputs += ["-i", str(picture.wait())]
                maps += ["-map", "1:v:0"]
                codecs += ["-c:v", "copy"]
            elif reason is None:
                passes = _retime_passes(plan.slowdowns) if plan is not None else []
                source = f"0:{info.video.index}"
                if len(passes) > 1:
                    inputs += ["-i", str(_retimed_copy(info.path, info.video, passes[:-1], Path(tmp)))]
                    source = f"{_input_count(inputs) - 1}:v:0"
                maps += ["-map", source]
                codecs += ["-c:v", "copy", *_hevc_tag(info.video)] + (["-bsf:v", passes[-1]] if passes else [])
            else:
                maps += ["-map", f"0:{info.video.index}"]
                codecs += _video_encode_args(info.video, plan, subtitles_to_burn, Path(tmp))

        for k, track_input in enumerate(encoded):
            maps += ["-map", f"{_input_count(inputs)}:a:0"]
            inputs += track_input
            codecs += [f"-c:a:{k}", "copy"]

        if original is not None:
            k = len(tracks)
            source = f"0:{original.index}"
            copyable = original.codec in MP4_AUDIO_CODECS
            if plan is not None and plan.has_slowdown:
                source, copyable = f"{_input_count(inputs)}:a:0", True
                retimed = _retimed_original(info, original.index, plan, Path(tmp))
                inputs += _encoded_track(retimed, Path(tmp) / "original.aac")
            maps += ["-map", source]
            codecs += [f"-c:a:{k}", "copy"] if copyable else [f"-c:a:{k}", *CODEC, f"-b:a:{k}", BITRATE]

        meta: list[str] = []
        for k, (language, title) in enumerate(audio_meta):
            meta += [f"-metadata:s:a:{k}", f"language={language}"]
            # MP4 keeps a track's name only as its handler name (what VLC/mpv list); "title" is for other muxers.
            meta += [f"-metadata:s:a:{k}", f"title={title}", f"-metadata:s:a:{k}", f"handler_name={title}"]
            meta += [f"-disposition:a:{k}", "default" if k == 0 else "0"]

        partial = out_path.with_name(f".{out_path.stem}.partial{out_path.suffix}")
        try:
            run_ffmpeg(
                [*inputs, *maps, *codecs, *meta, "-map_metadata", "0", "-movflags", "+faststart", str(partial)],
                what=f"mux {out_path.name}",
            )
            os.replace(partial, out_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    return out_path


def _hevc_tag(video: VideoStreamInfo) -> list[str]:
    # Apple players read HEVC in MP4 only under the hvc1 tag.
    return ["-tag:v", "hvc1"] if video.codec == "hevc" else []


def _retimed_copy(path: Path, video: VideoStreamInfo, passes: Sequence[str], tmp: Path) -> Path:
    """The picture alone, copied once per bitstream-filter chain in `passes` (each retiming the last copy)."""
    source, stream = path, f"0:{video.index}"
    for k, chain in enumerate(passes):
        copy = tmp / f"retimed{k}.mp4"
        run_ffmpeg(["-i", str(source), "-map", stream, "-c:v", "copy", *_hevc_tag(video), "-bsf:v", chain,
                    "-an", "-sn", "-dn", str(copy)], what="retime the picture")  # fmt: skip
        source, stream = copy, "0:v:0"
    return source


def _input_count(inputs: list[str]) -> int:
    return inputs.count("-i")


def _encoded_track(wav: Path, out: Path) -> list[str]:
    """ffmpeg input arguments for `wav` encoded to AAC beforehand, on every core."""
    return mux_input_args(encode_aac(wav, out, parts=os.cpu_count() or 1))


def _original_tag(override: str | None, tagged: str | None) -> str:
    """The caller's language wins (and must be valid); a tag in the file we cannot read becomes "und"."""
    if override:
        return iso639_2(override)
    try:
        return iso639_2(tagged) if tagged else "und"
    except UnsupportedLanguageError:
        return "und"


def _video_encode_args(
    video: VideoStreamInfo, plan: FitPlan | None, subtitles: str | Path | None, tmp: Path
) -> list[str]:
    filters = []
    if plan is not None and plan.has_slowdown:
        filters.append(f"setpts='{_retime_expression(plan)}'")
    if subtitles is not None:
        filters.append(f"subtitles=filename={filtergraph_value(str(Path(subtitles).absolute()))}")
    if video.width % 2 or video.height % 2:
        # 4:2:0 chroma needs even sides (x264 refuses 321x241): one black column or row, every source pixel kept
        filters.append("pad=ceil(iw/2)*2:ceil(ih/2)*2")
    args = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    if not filters:
        return args
    # From a file: a long video's retime expression outgrows the 128 KiB a single command-line argument may have.
    script = tmp / "video-filter.txt"
    script.write_text(",".join(filters))
    return ["-filter_script:v", str(script), *args]


def _retime_expression(plan: FitPlan) -> str:
    """setpts expression mapping a frame's source time T to its output time, in time-base units."""
    return f"{_retimed_seconds(plan.slowdowns, 'T')}/TB"


def _retime_passes(slowdowns: Sequence[VideoSlowdown]) -> list[str]:
    """`-bsf:v` chains giving copied packets their output timestamps, to apply one after another: one per
    `SPANS_PER_RETIME_PASS` slowed spans, each given on the timeline the passes before it made."""
    passes, shift = [], 0.0
    for first in range(0, len(slowdowns), SPANS_PER_RETIME_PASS):
        group = slowdowns[first : first + SPANS_PER_RETIME_PASS]
        shifted = [s.model_copy(update={"start": s.start + shift, "end": s.end + shift}) for s in group]
        passes.append(_retime_bitstream_filter(shifted, fine_time_base=first == 0))
        shift += sum(s.added for s in group)
    return passes


def _retime_bitstream_filter(slowdowns: Sequence[VideoSlowdown], *, fine_time_base: bool) -> str:
    """Map each packet's PTS, DTS and duration as `_retimed_seconds` maps a frame's time, after (`fine_time_base`)
    putting the timestamps into a fine time base. PTS and DTS are both given: in ffmpeg 5.1 the default (`ts`)
    expression sets PTS to the DTS, which breaks B-frames."""

    def mapped(timestamp: str) -> str:
        return f"{_retimed_seconds(slowdowns, f'({timestamp})*TB')}/TB"

    pts = mapped("PTS")
    retime = f"pts={pts}:dts={mapped('DTS')}:duration={mapped('PTS+DURATION')}-{pts}"
    escaped = retime.replace(",", r"\,")  # an unescaped comma would end the filter in the chain
    rebase = f"setts=pts=PTS:dts=DTS:time_base={RETIME_TIME_BASE}," if fine_time_base else ""
    return f"{rebase}setts={escaped}"


def _retimed_seconds(slowdowns: Sequence[VideoSlowdown], seconds: str) -> str:
    """Expression for the output time, in seconds, of the source time `seconds` (an expression): piecewise linear
    over the slowed spans."""
    t = seconds if seconds.isidentifier() else f"({seconds})"
    terms = []
    for s in slowdowns:
        if s.duration > 0:
            terms.append(f"{s.added:.6f}*clip(({t}-{s.start:.6f})/{s.duration:.6f},0,1)")
        else:  # a freeze: every frame after it shifts by the whole hold
            terms.append(f"{s.added:.6f}*gt({t},{s.start:.6f})")
    return f"({t}+{_balanced_sum(terms)})" if terms else t


def _balanced_sum(terms: list[str]) -> str:
    """a+b+c+... as a balanced tree of sums: ffmpeg's expression parser fails ("Cannot allocate memory") on a
    flat sum of more than about 64 terms, which a long video with many slowed lines reaches."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_balanced_sum(terms[:middle])}+{_balanced_sum(terms[middle:])})"


def _retimed_original(info: MediaInfo, stream_index: int, plan: FitPlan, tmp: Path) -> Path:
    from pipeline.media.extract import extract_audio
    from pipeline.mix import retime

    stream = next(a for a in info.audio if a.index == stream_index)
    clip = extract_audio(
        info.path,
        sample_rate=stream.sample_rate or 48_000,
        channels=min(2, max(1, stream.channels)),
        stream_index=stream_index,
    )
    out = tmp / "original.wav"
    retime(clip, plan).write(str(out))
    return out
