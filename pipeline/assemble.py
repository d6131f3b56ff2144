"""Per-language assembly: fit the synthesized lines to the source timing, mix over the background, write the
wav, subtitles and the muxed video. Shared by a full dub and by `octavia redub` (which changes a few lines)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from octavia.audio import AudioClip
from octavia.records import Segment
from pipeline.artifacts import ArtifactStore, content_key
from pipeline.media.probe import MediaInfo
from pipeline.mux import AudioTrack, EarlierOutput, KeptPicture, Picture, mux, output_suffix, start_picture
from pipeline.progress import timed
from pipeline.records import DubbedLine, DubRequest, LanguageResult
from pipeline.timeline import LineTiming, VideoSlowdown

log = logging.getLogger(__name__)

MIX_RATE = 48_000


def assemble_language(
    *,
    request: DubRequest,
    target: str,
    source: str,
    segments: Sequence[Segment],
    lines: Sequence[DubbedLine],
    store: ArtifactStore,
    background: Path,
    duration: float,
    info: MediaInfo,
    path_for: Callable[[str], Path],
    stem: str,
    progress: Callable[[str, int, int], None] = lambda *_: None,
    background_key: str | None = None,
    earlier: EarlierOutput | None = None,
) -> LanguageResult:
    """`lines` carry their synthesized audio (artifact key) and duration; their `fit` is (re)computed here.
    Files go to `path_for(name)` (temporary names, renamed by the caller). Audio is processed block by block
    (pipeline.mix), so memory does not grow with the length of the video.

    What a rebuild (a redub) would do again the same way is kept: sped-up lines in the store (stage
    `stretched`), the slowed spans of the background when `background_key` names its content (`retimed`), and
    the picture of `earlier` (this language's current video) when the new plan retimes it the same way."""
    import tempfile

    from pipeline.mix import WavSink, WavSource, mix_to_file, place_lines, retime_blocks
    from pipeline.subtitles import cues_from_plan, write_subtitles
    from pipeline.timefit import plan_fit

    by_segment = {s.id: s for s in segments}
    progress(f"assemble:{target}", 0, 1)
    timings = [
        LineTiming(
            segment_id=line.segment_id,
            start=by_segment[line.segment_id].start,
            end=by_segment[line.segment_id].end,
            synth_duration=line.synth_duration,
        )
        for line in lines
    ]
    plan = plan_fit(timings, duration, request.max_speedup)
    keys = {line.segment_id: line.audio_key for line in lines}
    names = {"wav": f"{stem}.{target}.wav", "srt": f"{stem}.{target}.srt", "vtt": f"{stem}.{target}.vtt",
             "video": f"{stem}.{target}{output_suffix(info)}"}  # fmt: skip
    texts: Mapping[int, str] = {line.segment_id: line.text for line in lines}
    speakers = {s.id: s.speaker for s in segments if s.speaker}
    cues = cues_from_plan(plan, texts, speakers)
    write_subtitles(cues, path_for(names["srt"]))
    write_subtitles(cues, path_for(names["vtt"]))
    burn = path_for(names["srt"]) if request.burn_subtitles else None
    wav = path_for(names["wav"])
    with tempfile.TemporaryDirectory(prefix=".assemble-", dir=wav.parent) as work:
        # A picture that must be re-encoded (subtitles burned in, a codec MP4 cannot hold) is encoded meanwhile:
        # x264 and the audio work below each leave part of the two cores idle (docs/benchmarks.md).
        picture = start_picture(request.input, Path(work), plan=plan, subtitles_to_burn=burn, earlier=earlier)
        try:
            dub_track = Path(work) / "dub.wav"
            with WavSink(dub_track, MIX_RATE, 1) as sink, timed(f"place lines {target}", log):
                # One line stretch per core at a time: the driver's assembly is the serial tail of every dub.
                place_lines(plan, lambda sid: _line_audio(store, keys.get(sid)), sink, sample_rate=MIX_RATE,
                            workers=os.cpu_count() or 1, stretched=_StoredStretches(store, keys))  # fmt: skip
            bed = WavSource(background)
            if plan.has_slowdown:
                with (
                    WavSink(Path(work) / "bed.wav", bed.sample_rate, bed.channels) as retimed,
                    timed(f"retime background {target}", log),
                ):
                    spans = _StoredSpans(store, background_key) if background_key else None
                    retime_blocks(bed, plan, retimed, workers=os.cpu_count() or 1, stretched=spans)
                bed = WavSource(Path(work) / "bed.wav")
            with timed(f"mix {target}", log):
                mix_to_file(WavSource(dub_track), bed, wav, speech=plan.speech_spans(), ducking=request.ducking,
                            target_lufs=request.target_lufs, scratch_dir=work)  # fmt: skip
            progress(f"assemble:{target}", 1, 1)

            progress(f"mux:{target}", 0, 1)
            with timed(f"mux {target}" + (f" (picture {_picture_note(picture)})" if picture else ""), log):
                mux(
                    request.input,
                    [AudioTrack(path=wav, language=target)],
                    path_for(names["video"]),
                    original_audio=request.keep_original_audio,
                    original_language=source,
                    subtitles_to_burn=burn,
                    plan=plan,
                    picture=picture,
                )
        finally:
            if picture is not None:
                picture.cancel()  # a no-op once it has finished; stops it when the audio failed
    progress(f"mux:{target}", 1, 1)
    fits = {f.segment_id: f for f in plan.lines}
    fitted = tuple(line.model_copy(update={"fit": fits.get(line.segment_id)}) for line in lines)
    return LanguageResult(language=target, lines=fitted, plan=plan, outputs=names)


def _line_audio(store: ArtifactStore, key: str | None) -> AudioClip | None:
    return None if key is None else AudioClip.read(str(store.audio_path("lines", key)))


def _picture_note(picture: Picture | KeptPicture) -> str:
    return picture.reason if isinstance(picture, KeptPicture) else f"re-encoded: {picture.reason}"


class _StoredStretches:
    """Sped-up lines in the artifact store, keyed by the line's audio, its speed and the stretcher."""

    def __init__(self, store: ArtifactStore, audio_keys: Mapping[int, str]) -> None:
        from pipeline.timefit import stretcher

        self.store, self.audio_keys, self.stretcher = store, audio_keys, stretcher()

    def _key(self, segment_id: int, speed: float) -> str | None:
        audio = self.audio_keys.get(segment_id)
        return None if audio is None else content_key("stretched", {"speed": speed, "by": self.stretcher}, audio)

    def get(self, segment_id: int, speed: float) -> AudioClip | None:
        key = self._key(segment_id, speed)
        return None if key is None else self.store.get_audio("stretched", key)

    def put(self, segment_id: int, speed: float, clip: AudioClip) -> None:
        if (key := self._key(segment_id, speed)) is not None:
            self.store.put_audio("stretched", key, clip)


class _StoredSpans:
    """Stretched spans of the background in the artifact store, keyed by its content, the span and the stretcher."""

    def __init__(self, store: ArtifactStore, background_key: str) -> None:
        from pipeline.timefit import stretcher

        self.store, self.background_key, self.stretcher = store, background_key, stretcher()

    def _key(self, span: VideoSlowdown) -> str:
        config = {"start": span.start, "end": span.end, "to": span.output_duration, "by": self.stretcher}
        return content_key("retimed", config, self.background_key)

    def get(self, slowdown: VideoSlowdown) -> AudioClip | None:
        return self.store.get_audio("retimed", self._key(slowdown))

    def put(self, slowdown: VideoSlowdown, clip: AudioClip) -> None:
        self.store.put_audio("retimed", self._key(slowdown), clip)
