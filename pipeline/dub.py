"""One dub: a video in, dubbed videos, subtitles and a transcript out.

The per-chunk work (separation, ASR, speaker embeddings) and the per-line work (synthesis) each go through an
`Executor` (on a cluster: a Ray Data job for the chunks, the driver's threads for the lines); the whole-video steps
(language vote, speaker clustering, voice choice, translation with context, time-fit, assembly, mux) run once, here.
Every intermediate result is cached in the `ArtifactStore`, so a re-run after a crash redoes only what did not
finish. Outputs are written under temporary names and renamed at the end: a failed run never leaves a file under a
final name.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from octavia.audio import AudioClip
from octavia.disk import is_disk_full
from octavia.errors import OctaviaError, UnsupportedLanguagePairError
from octavia.languages import normalize
from octavia.models.store import ModelStore
from octavia.profiles import ProfileModels
from octavia.profiles import resolve as resolve_profile
from octavia.records import Diarization, Segment, SpeakerProfile, TimeSpan, Translation
from pipeline.artifacts import ArtifactStore, content_key, file_hash
from pipeline.assemble import MIX_RATE, assemble_language
from pipeline.chunking import Chunk, ChunkPlan, plan_chunks
from pipeline.executors import Executor, longest_first
from pipeline.media.extract import on_timeline
from pipeline.media.ffmpeg import run_ffmpeg
from pipeline.media.probe import AudioStreamInfo, MediaInfo, probe_media
from pipeline.progress import timed
from pipeline.records import (
    ChunkAnalysis,
    DubbedLine,
    DubRequest,
    LanguageResult,
    ProgressEvent,
    RunInfo,
    SpeakerSummary,
    TranscriptDocument,
)
from pipeline.sentences import translate_segments
from pipeline.speaker_turns import split_at_speaker_changes
from pipeline.stages import (
    SPEECH_RATE,
    ChunkAnalyzer,
    LineSynthesizer,
    StageContext,
    SynthesisJob,
    SynthesisResult,
    language_check_chunks,
    read_span,
)

log = logging.getLogger(__name__)

PROFILE_SECONDS = 30.0  # of each speaker's speech used to estimate their pitch
VAD_PIECE_SECONDS = 600.0  # 18,750 Silero frames of 32 ms

ProgressHook = Callable[[ProgressEvent], None]
UNDETERMINED = "und"  # ISO 639-2 for "no language": speech-free input
FORCED_LANGUAGE_DOUBT = 0.8  # how sure the ASR must be that a given source language is wrong before the run warns
ANALYSIS_FAMILIES = frozenset({"separate", "asr", "diarize"})  # the per-chunk models


@dataclass
class DubResult:
    out_dir: Path
    source_language: str
    duration: float
    outputs: dict[str, list[Path]]  # language -> files, plus "source" for language-independent ones
    failed: dict[str, str] = field(default_factory=dict)  # language -> error message
    warnings: list[str] = field(default_factory=list)  # the run succeeded, but its user should know
    chunks_computed: int = 0
    chunks_cached: int = 0
    lines_computed: int = 0
    lines_cached: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


class StagedOutputs:
    """Files written under a hidden temporary directory, moved to their final names only on commit."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = out_dir / f".octavia-partial-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()

    def path(self, name: str) -> Path:
        return self.tmp / name

    def commit(self, names: list[str]) -> list[Path]:
        final = []
        for name in names:
            target = self.out_dir / name
            (self.tmp / name).replace(target)
            final.append(target)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _Progress:
    """Turns stage counts into events with an ETA per stage."""

    def __init__(self, hook: ProgressHook | None) -> None:
        self.hook = hook
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, completed: int, total: int) -> None:
        if self.hook is None:
            return
        now = time.monotonic()
        start = self.started.setdefault(stage, now)
        eta = None
        if 0 < completed < total:
            eta = (now - start) / completed * (total - completed)
        elif completed >= total:
            eta = 0.0
        self.hook(ProgressEvent(stage=stage, completed=completed, total=total, eta_seconds=eta))


def extract_mix(store: ArtifactStore, info: MediaInfo, stream: AudioStreamInfo, input_sha: str) -> Path:
    """`stream` of the input at the mixing rate (mono or stereo, as it is), on the file's timeline, as a float WAV
    in the artifact store (extracted once; its file name is its key, `PreparedInput.audio_key`)."""
    channels = min(2, max(1, stream.channels))
    config = {"rate": MIX_RATE, "channels": channels, "stream": stream.index, "timeline": "file-clock"}
    key = content_key("extract", config, input_sha)
    wav = store.audio_path("input", key)
    if not wav.exists():
        wav.parent.mkdir(parents=True, exist_ok=True)
        tmp = wav.with_name(f".tmp-{uuid.uuid4().hex}.wav")
        try:
            run_ffmpeg(
                ["-i", str(info.path), "-map", f"0:{stream.index}", "-vn", *on_timeline(info, stream),
                 "-ac", str(channels), "-ar", str(MIX_RATE), "-c:a", "pcm_f32le", str(tmp)],
                what="extract the audio",
            )  # fmt: skip
            tmp.replace(wav)
        finally:
            tmp.unlink(missing_ok=True)
    return wav


@dataclass(frozen=True)
class PreparedInput:
    """The input as the stages need it, before any model of the cluster runs."""

    info: MediaInfo
    input_sha: str  # SHA-256 of the input file, as the transcript records it
    mix_wav: Path  # the audio at the mixing rate, in the artifact store
    duration: float
    chunk_plan: ChunkPlan

    @property
    def audio_key(self) -> str:
        """What every later result is keyed by: the decoded audio's key (file hash + how it was decoded), so a
        change in the decoding (e.g. onto the file's timeline) recomputes the VAD, chunks and background."""
        return self.mix_wav.stem


def prepare_input(
    request: DubRequest, store: ArtifactStore, models: ModelStore, info: MediaInfo | None = None
) -> PreparedInput:
    """Probe (unless `info` is the input's probe already) and hash the input, extract its audio and cut it into
    chunks at silences (VAD): a few seconds that need no cluster, so a run may do them while its cluster starts."""
    info = info or probe_media(request.input)
    stream = info.require_audio()
    input_sha = file_hash(request.input)
    with timed("extract audio + VAD", log):
        mix_wav = extract_mix(store, info, stream, input_sha)
        duration = info.duration or AudioClip.read(str(mix_wav)).duration
        vad = resolve_profile(request.profile).vad
        spans = speech_spans(store, models, vad, mix_wav, mix_wav.stem)
    return PreparedInput(info=info, input_sha=input_sha, mix_wav=mix_wav, duration=duration,
                         chunk_plan=plan_chunks(spans, duration, request.max_chunk_seconds))  # fmt: skip


def speech_spans(
    store: ArtifactStore, models: ModelStore, vad_model: str, mix_wav: Path, audio_key: str
) -> list[TimeSpan]:
    """Where the input speaks (Silero VAD), cached by input and model."""
    import soundfile

    from serve_apps.asr.vad import SileroVad, spans_from_probabilities

    key = content_key("vad", {"model": vad_model}, audio_key)
    cached = store.get_array("vad", key)
    if cached is not None:
        return [TimeSpan(start=float(a), end=float(b)) for a, b in cached.reshape(-1, 2)]
    vad = SileroVad(models.resolve(vad_model))
    # Ten minutes at a time (a whole number of 32 ms frames): a long input is never read whole.
    duration = soundfile.info(str(mix_wav)).duration
    probs = [
        vad.speech_probabilities(read_span(mix_wav, t, min(t + VAD_PIECE_SECONDS, duration)).mono())
        for t in np.arange(0.0, duration, VAD_PIECE_SECONDS)
    ]
    spans = spans_from_probabilities(np.concatenate(probs) if probs else np.zeros(0), duration, min_silence=0.3)
    store.put_array("vad", key, np.array([[s.start, s.end] for s in spans], np.float64).reshape(-1, 2))
    return spans


def check_pairs(
    profile: str,
    source: str | None,
    targets: list[str],
    pairs: set[tuple[str, str]],
    *,
    detected_confidence: float | None = None,
) -> None:
    """Every target must be reachable from `source` (from some language when the source is not known yet).
    `detected_confidence`: `source` was detected from the speech with this probability; the error then says so
    and how to name the language (accented speech can be taken for another language)."""
    available = ", ".join(f"{a}->{b}" for a, b in sorted(pairs))
    for target in targets:
        if source is None:
            ok = any(b == target for _, b in pairs)
        else:
            ok = source == target or (source, target) in pairs  # same language: re-voicing, no translation
        if ok:
            continue
        details = {"source": source, "target": target, "pairs": sorted(f"{a}-{b}" for a, b in pairs)}
        message = f"the {profile} profile cannot translate {source or 'any language'} -> {target}"
        if detected_confidence is not None:
            details["detected_confidence"] = round(detected_confidence, 3)
            message = (
                f"the speech was detected as {source} (confidence {detected_confidence:.0%}) and {message}; if it is "
                "in another language, name it (`--from LANG`, or the job's `source_language`)"
            )
        raise UnsupportedLanguagePairError(f"{message}; available pairs: {available}", details=details)


def detection_confidence(analyses: list[ChunkAnalysis], language: str) -> float:
    """How sure the ASR was of `language`: its detection probability in the chunks that heard it, weighted by
    their seconds of speech."""
    return _speech_weighted([(a.language_probability, a.speech_seconds) for a in analyses if a.language == language])


def _speech_weighted(heard: list[tuple[float, float]]) -> float:
    """(probability, seconds of speech) of each chunk that heard a language -> how sure the ASR was of it."""
    seconds = sum(s for _, s in heard)
    if seconds <= 0:  # heard only in chunks without segments (or not at all)
        return max((p for p, _ in heard), default=0.0)
    return sum(p * s for p, s in heard) / seconds


def forced_language_warning(analyses: list[ChunkAnalysis], source: str) -> str | None:
    """A warning when the speech sounds like another language than the one the run was told (`--from`): Whisper
    then writes what it hears in the wrong language, or translates it, and the dub says something else."""
    votes: Counter[str] = Counter()
    for a in analyses:
        if a.detected_language is not None:
            votes[a.detected_language] += a.speech_seconds
    if not votes:  # nothing checked: no speech, or an English-only model
        return None
    heard = votes.most_common(1)[0][0]
    confidence = _speech_weighted(
        [(a.detected_language_probability, a.speech_seconds) for a in analyses if a.detected_language == heard]
    )
    if heard == source or confidence < FORCED_LANGUAGE_DOUBT:
        return None
    return (
        f"the source was given as {source!r} but the speech sounds like {heard!r} ({confidence:.0%} sure): "
        f"the transcript and the dub are likely wrong; leave --from out (source_language unset) to detect it"
    )


def separation_engine(choice: str, profile: ProfileModels) -> str:
    """The separation model for a `--separation` choice."""
    if choice == "auto":
        return profile.separation
    if choice == "spleeter":
        return "spleeter-2stems"
    if choice == "demucs":
        return "htdemucs"
    return "none"


class DubRun:
    def __init__(
        self,
        request: DubRequest,
        *,
        executor: Executor,
        line_executor: Executor | None = None,
        clients: Any,
        clients_mode: str,
        store: ArtifactStore | None = None,
        models: ModelStore | None = None,
        hook: ProgressHook | None = None,
        serve_apps: dict[str, str] | None = None,
        local_threads: int = 0,
    ) -> None:
        self.request = request
        self.local_threads = local_threads  # for the stages' own "local" clients
        self.executor = executor  # the chunks' analysis
        self.line_executor = line_executor or executor  # the lines' synthesis
        self.clients = clients
        self.clients_mode = clients_mode
        self.store = store or ArtifactStore()
        self.models = models or ModelStore()
        self.progress = _Progress(hook)
        self.serve_apps = serve_apps or {}
        self.profile = resolve_profile(request.profile)
        self.separation = separation_engine(request.separation, self.profile)

    # -- the whole run ---------------------------------------------------------------------------------
    def run(self, prepared: PreparedInput | None = None) -> DubResult:
        """The whole dub; `prepared`: the input's `prepare_input`, when the caller ran it already."""
        req = self.request
        targets = list(dict.fromkeys(normalize(t) for t in req.targets))
        source = normalize(req.source) if req.source else None
        pairs = set(self.clients.translation_pairs())
        check_pairs(self.profile.name, source, targets, pairs)

        self.progress("prepare", 0, 1)
        prepared = prepared or prepare_input(req, self.store, self.models)
        info, input_sha, mix_wav, duration = prepared.info, prepared.input_sha, prepared.mix_wav, prepared.duration
        chunk_plan = prepared.chunk_plan
        self.progress("prepare", 1, 1)

        ctx = StageContext(
            clients=self.clients_mode,  # type: ignore[arg-type]
            profile=self.profile.name,
            separation=self.separation,
            asr_model=self.profile.asr,
            artifact_root=str(self.store.root),
            audio_key=prepared.audio_key,
            mix_wav=str(mix_wav),
            language=source,
            serve_apps=self.serve_apps,
            local_threads=self.local_threads,
        )
        result = DubResult(out_dir=req.out_dir, source_language=source or "", duration=duration, outputs={})
        analyses = self._analyze(ctx, chunk_plan.chunks, result, check_language=source is not None)
        has_speech = any(a.segments for a in analyses)
        if not has_speech:
            # Nothing to translate: each target gets the original soundtrack; no language to detect.
            log.warning("no speech found in %s", req.input)
            language = source or UNDETERMINED
        else:
            language = source or self._vote_language(analyses)
        if source is None and has_speech:
            confidence = detection_confidence(analyses, language)
            check_pairs(self.profile.name, language, targets, pairs, detected_confidence=confidence)
            redo = [a.chunk for a in analyses if a.language != language and a.segments]
            if redo:  # chunks that detected another language are transcribed again in the majority language
                forced = ctx.model_copy(update={"language": language})
                again = {a.chunk.index: a for a in self._analyze(forced, redo, result)}
                analyses = [again.get(a.chunk.index, a) for a in analyses]
        elif source is not None and (warning := forced_language_warning(analyses, source)):
            log.warning(warning)
            result.warnings.append(warning)
        # The rest of the run works from the cached analyses: on its own cluster their replicas' cores and
        # memory go to synthesis.
        self.clients.release(ANALYSIS_FAMILIES)
        result.source_language = language

        with timed("speakers", log):
            diarization = self._speakers(analyses)
        segments = split_at_speaker_changes([s for a in analyses for s in a.segments], diarization)
        with timed("speaker profiles", log):
            profiles = self._speaker_profiles(segments, analyses, mix_wav)
        with timed("background", log):
            background = self._background(analyses, mix_wav, duration, prepared.audio_key)

        outputs = StagedOutputs(req.out_dir)
        stem = req.input.stem
        try:
            source_files = self._write_source_outputs(outputs, stem, language, segments, background)
            translations: dict[str, tuple[Translation, ...]] = {}
            languages: dict[str, LanguageResult] = {}
            voices_by_speaker: dict[str, dict[str, str]] = {p.speaker: {} for p in profiles}
            committed: dict[str, list[str]] = {}
            translated = self._translate_all(language, targets, segments, result)
            for target, lang_translations in translated.items():
                try:
                    lang_result = self._dub_language(
                        target, language, segments, lang_translations, profiles, info, background, duration,
                        outputs, stem, ctx, result,
                    )  # fmt: skip
                except OctaviaError as exc:
                    if is_disk_full(exc):  # the next language would only fill it again
                        raise
                    log.error("dubbing into %s failed: %s", target, exc.message)
                    result.failed[target] = exc.message
                    continue
                translations[target] = lang_translations
                languages[target] = lang_result
                committed[target] = list(lang_result.outputs.values())
                for line in lang_result.lines:
                    if line.speaker is not None:
                        voices_by_speaker.setdefault(line.speaker, {})[target] = line.voice

            transcript = TranscriptDocument(
                source_language=language,
                warnings=tuple(result.warnings),
                duration=duration,
                segments=segments,
                speakers=tuple(
                    SpeakerSummary(
                        speaker=p.speaker,
                        profile=p,
                        voices=voices_by_speaker.get(p.speaker, {}),
                        speech_seconds=round(sum(s.duration for s in segments if s.speaker == p.speaker), 3),
                    )
                    for p in profiles
                ),
                translations=translations,
                languages=languages,
                run=RunInfo(
                    request=req,
                    profile=self.profile.name,
                    input_sha256=input_sha,
                    duration=duration,
                    separation=self.separation,
                    background_stage=background[0],
                    background_key=background[1],
                ),
            )
            transcript_name = f"{stem}.transcript.json"
            outputs.path(transcript_name).write_text(transcript.model_dump_json(indent=2))
            for target, names in committed.items():
                result.outputs[target] = outputs.commit(names)
            result.outputs["source"] = outputs.commit([*source_files, transcript_name])
        finally:
            outputs.discard()
        self.progress("done", 1, 1)
        return result

    # -- steps -----------------------------------------------------------------------------------------
    def _analyze(
        self, ctx: StageContext, chunks: Sequence[Chunk], result: DubResult, check_language: bool = False
    ) -> list[ChunkAnalysis]:
        """`check_language`: the ASR also detects the language of some chunks' speech (`language_check_chunks`),
        to check a source language the request gave."""
        checked = language_check_chunks(chunks) if check_language else set()
        rows = [
            {"chunk": c.model_dump_json(), "check_language": c.index in checked}
            for c in longest_first(chunks, lambda c: c.end - c.start)
        ]
        analyses: list[ChunkAnalysis] = []

        def collect(row: dict[str, Any]) -> None:
            analyses.append(ChunkAnalysis.model_validate_json(row["analysis"]))
            if row["cached"]:
                result.chunks_cached += 1
            else:
                result.chunks_computed += 1
            self.progress("analyze", len(analyses), len(rows))

        self.progress("analyze", 0, len(rows))
        self._map_timed(self.executor, ChunkAnalyzer, ctx, rows, "analyze", "chunks", collect)
        return sorted(analyses, key=lambda a: a.chunk.index)

    def _map_timed(
        self,
        executor: Executor,
        stage: type,
        ctx: StageContext,
        rows: list[dict[str, Any]],
        name: str,
        unit: str,
        collect: Callable[[dict[str, Any]], None],
    ) -> None:
        """`executor.map`, logging the stage's wall time against the time its rows spent inside the stage: the
        difference (with parallelism, wall x parallelism - inside) is scheduling, transport and idle workers."""
        if not rows:
            return
        inside = 0.0

        def on_row(row: dict[str, Any]) -> None:
            nonlocal inside
            inside += float(row.get("seconds", 0.0))
            collect(row)

        log.info("%s: %d %s to do", name, len(rows), unit)
        started = time.monotonic()
        executor.map(stage, ctx.model_dump_json(), rows, name=self._name(name), on_row=on_row)
        log.info("%s: %d %s in %.1f s, %.1f s inside the stage", name, len(rows), unit,
                 time.monotonic() - started, inside)  # fmt: skip

    def _name(self, stage: str) -> str:
        return f"dub {self.request.input.name} -> {','.join(self.request.targets)}: {stage}"

    @staticmethod
    def _vote_language(analyses: list[ChunkAnalysis]) -> str:
        votes: Counter[str] = Counter()
        for a in analyses:
            votes[a.language] += a.speech_seconds or 1e-3 * a.language_probability
        return votes.most_common(1)[0][0]

    def _speakers(self, analyses: list[ChunkAnalysis]) -> Diarization:
        """Speakers clustered over the embeddings of the WHOLE input, never per chunk."""
        from serve_apps.diarize.embedding import EMBEDDERS
        from serve_apps.diarize.engine import SpeechEmbeddings, assign_speakers

        parts = []
        for a in analyses:
            vectors = self.store.get_array("embeddings", a.embeddings_key)
            if vectors is None or not a.windows:
                continue
            parts.append(SpeechEmbeddings(a.windows, vectors))
        threshold = EMBEDDERS[self.profile.speaker_embedding].distance_threshold
        return assign_speakers(parts, self.request.speakers, threshold=threshold)

    def _speaker_profiles(
        self, segments: tuple[Segment, ...], analyses: list[ChunkAnalysis], mix_wav: Path
    ) -> list[SpeakerProfile]:
        from serve_apps.tts.voices import estimate_speaker_profile

        by_chunk = {a.chunk.index: a for a in analyses}
        profiles = []
        for speaker in sorted({s.speaker for s in segments if s.speaker}):
            pieces: list[np.ndarray] = []
            total = 0.0
            for seg in (s for s in segments if s.speaker == speaker):
                if total >= PROFILE_SECONDS:
                    break
                chunk = next(a for a in by_chunk.values() if a.chunk.start <= seg.start < a.chunk.end + 1e-6)
                if chunk.stems_key:
                    vocals = self.store.audio_path("vocals", chunk.stems_key)
                    clip = read_span(vocals, seg.start - chunk.chunk.start, seg.end - chunk.chunk.start)
                else:
                    clip = read_span(mix_wav, seg.start, seg.end)
                clip = clip.mono().resample(SPEECH_RATE)
                pieces.append(clip.samples)
                total += clip.duration
            audio = AudioClip(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), SPEECH_RATE)
            profiles.append(estimate_speaker_profile(speaker, audio))
        return profiles

    def _background(
        self, analyses: list[ChunkAnalysis], mix_wav: Path, duration: float, audio_key: str
    ) -> tuple[str, str, Path]:
        """The full-length track the dub goes over, as (artifact stage, key, path): the separated background, or
        the original mix (ducked later)."""
        if self.separation == "none":
            return "input", mix_wav.stem, mix_wav
        key = content_key("background", {"separation": self.separation}, audio_key)
        path = self.store.audio_path("background-full", key)
        if not path.exists():

            def write(tmp: str) -> None:  # chunk by chunk: the full-length track is never in memory
                from pipeline.mix import WavSink

                with contextlib.ExitStack() as stack:
                    sink: WavSink | None = None
                    for a in analyses:
                        clip = self.store.get_audio("background", a.stems_key) if a.stems_key else None
                        if clip is None:
                            clip = read_span(mix_wav, a.chunk.start, a.chunk.end)
                        if sink is None:
                            sink = stack.enter_context(WavSink(tmp, MIX_RATE, clip.channels))
                        sink.write(clip.samples.reshape(clip.channels, -1))

            self.store.write_audio("background-full", key, write)
        return "background-full", key, path

    def _write_source_outputs(
        self,
        outputs: StagedOutputs,
        stem: str,
        language: str,
        segments: tuple[Segment, ...],
        background: tuple[str, str, Path],
    ) -> list[str]:
        from pipeline.subtitles import Cue, write_subtitles

        cues = [Cue(start=s.start, end=s.end, text=s.text, speaker=s.speaker) for s in segments if s.text.strip()]
        names = []
        if language not in {
            normalize(t) for t in self.request.targets
        }:  # re-voicing in the same language: the target's srt wins
            names.append(f"{stem}.{language}.srt")
            write_subtitles(cues, outputs.path(names[0]))
        if self.separation != "none":
            from pipeline.mix import BLOCK_SECONDS, WavSink, WavSource, copy_audio

            name = f"{stem}.background.wav"
            source = WavSource(background[2])
            with WavSink(outputs.path(name), source.sample_rate, source.channels, subtype="PCM_16") as sink:
                copy_audio(source, sink, round(BLOCK_SECONDS * source.sample_rate))
            names.append(name)
        return names

    def _translate(self, source: str, target: str, segments: tuple[Segment, ...]) -> tuple[Translation, ...]:
        stage = f"translate:{target}"
        return translate_segments(
            segments,
            source,
            target,
            lambda batch: self.clients.translate(batch, source, target),
            on_batch=lambda done, total: self.progress(stage, done, total),
        )

    def _translate_all(
        self, source: str, targets: list[str], segments: tuple[Segment, ...], result: DubResult
    ) -> dict[str, tuple[Translation, ...]]:
        """Every target's translation before any synthesis: a language that cannot be translated fails before the
        long stages, and the translation models are released while the TTS runs (on 2 cores an idle replica still
        takes about 1 % of a core: docs/benchmarks.md)."""
        translated: dict[str, tuple[Translation, ...]] = {}
        for target in targets:
            try:
                with timed(f"translate {target}", log):
                    translated[target] = self._translate(source, target, segments)
            except OctaviaError as exc:
                log.error("translating into %s failed: %s", target, exc.message)
                result.failed[target] = exc.message
        self.clients.release({"translate"})
        return translated

    def _dub_language(
        self,
        target: str,
        source: str,
        segments: tuple[Segment, ...],
        translations: tuple[Translation, ...],
        profiles: list[SpeakerProfile],
        info: MediaInfo,
        background: tuple[str, str, Path],
        duration: float,
        outputs: StagedOutputs,
        stem: str,
        ctx: StageContext,
        result: DubResult,
    ) -> LanguageResult:
        from serve_apps.tts.voices import assign_voices

        by_segment = {s.id: s for s in segments}
        voices = self.clients.voices(target)
        assignment = assign_voices(profiles, list(voices)) if profiles else None
        default_voice = voices[0].id
        jobs = [
            SynthesisJob(
                segment_id=t.segment_id,
                text=t.text,
                language=target,
                voice=assignment.voices.get(by_segment[t.segment_id].speaker or "", default_voice)
                if assignment
                else default_voice,
            )
            for t in translations
            if t.text.strip()
        ]
        synthesized: dict[int, SynthesisResult] = {}

        def collect(row: dict[str, Any]) -> None:
            res = SynthesisResult.model_validate_json(row["result"])
            synthesized[res.segment_id] = res
            if res.cached:
                result.lines_cached += 1
            else:
                result.lines_computed += 1
            self.progress(f"synthesize:{target}", len(synthesized), len(jobs))

        self.progress(f"synthesize:{target}", 0, len(jobs))
        rows = [{"job": j.model_dump_json()} for j in longest_first(jobs, lambda j: len(j.text))]
        self._map_timed(self.line_executor, LineSynthesizer, ctx, rows, f"tts {target}", "lines", collect)

        lines = [
            DubbedLine(
                segment_id=j.segment_id,
                speaker=by_segment[j.segment_id].speaker,
                text=j.text,
                voice=j.voice,
                audio_key=synthesized[j.segment_id].audio_key,
                synth_duration=synthesized[j.segment_id].duration,
            )
            for j in jobs
        ]
        with timed(f"assemble {target}", log):
            language_result = assemble_language(
                request=self.request,
                target=target,
                source=source,
                segments=segments,
                lines=lines,
                store=self.store,
                background=background[2],
                background_key=background[1],
                duration=duration,
                info=info,
                path_for=outputs.path,
                stem=stem,
                progress=self.progress,
            )
        return language_result
