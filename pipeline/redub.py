"""Re-dub changed lines of a finished dub from its cached results: synthesize only what changed, re-fit, re-mix,
re-mux. Seconds, not minutes: no ASR, no separation, no diarization, no cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from octavia.disk import full_disk_reported
from octavia.errors import BadInputError, InputNotFoundError
from octavia.languages import normalize
from octavia.profiles import PROFILES
from pipeline.artifacts import ArtifactStore, size_cap_from_env, size_capped
from pipeline.assemble import assemble_language
from pipeline.dub import StagedOutputs, extract_mix
from pipeline.media.probe import probe_media
from pipeline.mux import EarlierOutput
from pipeline.records import DubbedLine, TranscriptDocument
from pipeline.stages import SynthesisJob, synthesis_key

TRANSCRIPT_SUFFIX = ".transcript.json"


@dataclass
class RedubResult:
    language: str
    changed: list[int]
    resynthesized: int  # lines spoken again (the changed ones, plus any whose cached audio was gone)
    outputs: list[Path]
    seconds: float


def edits_from_file(current: TranscriptDocument, edited_path: Path, language: str) -> dict[int, str]:
    """The lines whose text differs in an edited copy of the transcript."""
    edited = TranscriptDocument.model_validate_json(edited_path.read_text())
    if language not in edited.languages:
        raise BadInputError(f"{edited_path} has no {language!r} dub")
    before = {line.segment_id: line.text for line in current.languages[language].lines}
    return {
        line.segment_id: line.text
        for line in edited.languages[language].lines
        if line.segment_id in before and line.text != before[line.segment_id]
    }


class _Voices:
    """The profile's TTS engines, loaded one at a time until one has the voice (most need only the first)."""

    def __init__(self, profile: str) -> None:
        self.models = list(PROFILES[profile].tts)
        self.loaded: list = []  # type: ignore[type-arg]

    def speak(self, text: str, language: str, voice: str):  # type: ignore[no-untyped-def]
        from serve_apps.tts.engine import load_engine

        for engine in self.loaded:
            if any(v.id == voice for v in engine.voices()):
                return engine.synthesize(text, language, voice)
        while self.models:
            engine = load_engine(self.models.pop(0))
            self.loaded.append(engine)
            if any(v.id == voice for v in engine.voices()):
                return engine.synthesize(text, language, voice)
        raise BadInputError(f"no engine of the profile has voice {voice!r}")


def redub(
    transcript_path: Path,
    *,
    language: str,
    edits: dict[int, str],
    artifact_dir: Path | None = None,
) -> RedubResult:
    started = time.monotonic()
    transcript_path = transcript_path.absolute()  # its folder's paths go to ffmpeg (see DubRequest)
    if not transcript_path.is_file():
        raise InputNotFoundError(f"transcript not found: {transcript_path}")
    if not transcript_path.name.endswith(TRANSCRIPT_SUFFIX):
        raise BadInputError(f"{transcript_path.name} is not a <stem>{TRANSCRIPT_SUFFIX} file")
    doc = TranscriptDocument.model_validate_json(transcript_path.read_text())
    lang = normalize(language)
    if lang not in doc.languages:
        raise BadInputError(f"this dub has no {lang!r} track; it has: {', '.join(sorted(doc.languages))}")
    current = doc.languages[lang]
    known = {line.segment_id for line in current.lines}
    unknown = sorted(set(edits) - known)
    if unknown:
        raise BadInputError(
            f"no line {unknown[0]} in the {lang} dub; lines are segment ids {min(known)}..{max(known)}",
            details={"lines": sorted(known)},
        )
    if any(not text.strip() for text in edits.values()):
        raise BadInputError("a line's new text is empty")
    request = doc.run.request
    if not request.input.exists():
        raise InputNotFoundError(f"the original input {request.input} is gone; redub needs it to rebuild the video")

    cap = size_cap_from_env()  # a bad value fails here, before any work
    store = ArtifactStore(artifact_dir)
    with (
        size_capped(store, cap),  # as a dub's run_job: the store ends the redub under the cap
        full_disk_reported(output_folder=transcript_path.parent, artifact_cache=store.root),
    ):
        return _rebuild(transcript_path, doc, lang, edits, store, started)


def _rebuild(
    transcript_path: Path,
    doc: TranscriptDocument,
    lang: str,
    edits: dict[int, str],
    store: ArtifactStore,
    started: float,
) -> RedubResult:
    """The checked edits of `redub`: speak what changed, re-assemble, and replace the outputs and the transcript."""
    stem = transcript_path.name.removesuffix(TRANSCRIPT_SUFFIX)
    out_dir = transcript_path.parent
    current = doc.languages[lang]
    request = doc.run.request
    voices = _Voices(doc.run.profile)
    lines: list[DubbedLine] = []
    spoken = 0
    for line in current.lines:
        text = edits.get(line.segment_id, line.text)
        job = SynthesisJob(segment_id=line.segment_id, text=text, language=lang, voice=line.voice)
        key = synthesis_key(job, doc.run.profile)
        path = store.audio_path("lines", key)
        if path.exists() and line.segment_id not in edits and key == line.audio_key:
            lines.append(line)
            continue
        if not path.exists():
            clip = voices.speak(text, lang, line.voice)
            store.put_audio("lines", key, clip)
            spoken += 1
            duration = clip.duration
        else:  # the edit went back to a text spoken before
            import soundfile

            duration = soundfile.info(str(path)).duration
        lines.append(line.model_copy(update={"text": text, "audio_key": key, "synth_duration": duration}))

    info = probe_media(request.input)
    background = store.audio_path(doc.run.background_stage, doc.run.background_key)
    background_key: str | None = doc.run.background_key
    if not background.exists():
        if doc.run.background_stage == "input":
            stream = info.require_audio()
            background = extract_mix(store, info, stream, doc.run.input_sha256)
            background_key = background.stem
        elif (out_dir / f"{stem}.background.wav").exists():
            background, background_key = out_dir / f"{stem}.background.wav", None  # 16-bit: not the stored one
        else:
            raise BadInputError("the separated background is no longer cached; run `octavia dub` again")

    outputs = StagedOutputs(out_dir)
    try:
        result = assemble_language(
            request=request,
            target=lang,
            source=doc.source_language,
            segments=doc.segments,
            lines=lines,
            store=store,
            background=background,
            background_key=background_key,
            duration=doc.duration,
            info=info,
            path_for=outputs.path,
            stem=stem,
            earlier=EarlierOutput(path=out_dir / current.outputs["video"], plan=current.plan),
        )
        texts = {line.segment_id: line.text for line in lines}
        translations = tuple(
            t.model_copy(update={"text": texts.get(t.segment_id, t.text)}) for t in doc.translations.get(lang, ())
        )
        updated = doc.model_copy(
            update={
                "languages": {**doc.languages, lang: result},
                "translations": {**doc.translations, lang: translations},
            }
        )
        outputs.path(transcript_path.name).write_text(updated.model_dump_json(indent=2))
        written = outputs.commit([*result.outputs.values(), transcript_path.name])
    finally:
        outputs.discard()
    return RedubResult(
        language=lang,
        changed=sorted(edits),
        resynthesized=spoken,
        outputs=written,
        seconds=time.monotonic() - started,
    )
