"""Speech recognition engines: audio in, a `Transcription` with word timestamps out."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from octavia.audio import AudioClip, quiet_gain
from octavia.errors import UnsupportedLanguageError
from octavia.records import Segment, Transcription, Word

SAMPLE_RATE = 16_000


class AsrEngine(ABC):
    """Transcribe 16 kHz mono speech. `language=None` detects it.

    A replica may call `transcribe` from several threads at once (`engine_workers`): an implementation that cannot
    run calls side by side serializes them itself."""

    sample_rate = SAMPLE_RATE

    @abstractmethod
    def transcribe(
        self, audio: AudioClip, language: str | None = None, *, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        """`offset` is added to every time so chunk results land on the whole input's timeline. `check_language`
        with a given `language`: also detect what the speech sounds like (`Transcription.detected_language`)."""

    @abstractmethod
    def languages(self) -> tuple[str, ...]: ...


class FasterWhisperEngine(AsrEngine):
    """faster-whisper (CTranslate2) with word timestamps, language detection and Silero VAD filtering."""

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        num_workers: int = 1,
        beam_size: int = 5,
        vad_filter: bool = True,
    ) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        if compute_type == "auto":
            # int8 on CPU is ~2x faster than float32 with no measurable WER change on our fixtures.
            compute_type = "float16" if device == "cuda" else "int8"
        self._model = WhisperModel(
            str(model),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads or min(4, os.cpu_count() or 1),
            num_workers=num_workers,  # transcriptions from that many threads run at once, sharing the weights
            local_files_only=Path(str(model)).exists(),
        )
        self._beam_size = beam_size
        self._vad_filter = vad_filter

    def languages(self) -> tuple[str, ...]:
        return tuple(self._model.supported_languages)

    def transcribe(
        self, audio: AudioClip, language: str | None = None, *, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        if language is not None and language not in self.languages():
            raise UnsupportedLanguageError(
                f"this ASR model cannot transcribe {language!r}; it knows: {', '.join(self.languages())}",
                details={"language": language},
            )
        clip = audio.mono().resample(SAMPLE_RATE)
        samples = np.ascontiguousarray(clip.scaled(quiet_gain(clip.samples)).samples)  # quiet speech raised
        segments_iter, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self._beam_size,
            word_timestamps=True,
            vad_filter=self._vad_filter,
            vad_parameters={"min_silence_duration_ms": 500},
            condition_on_previous_text=False,
        )
        segments = []
        # transcribe() is lazy: consuming the generator here is what runs the model.
        for i, seg in enumerate(segments_iter):
            words = tuple(
                Word(
                    start=round(offset + w.start, 3),
                    end=round(offset + max(w.end, w.start), 3),
                    text=w.word,
                    probability=w.probability,
                )
                for w in (seg.words or ())
            )
            segments.append(
                Segment(
                    id=i,
                    start=round(offset + seg.start, 3),
                    end=round(offset + max(seg.end, seg.start), 3),
                    text=seg.text.strip(),
                    words=words,
                    avg_logprob=seg.avg_logprob,
                    no_speech_prob=seg.no_speech_prob,
                )
            )
        detected: tuple[str | None, float] = (None, 0.0)
        if check_language and language is not None and segments and self._model.model.is_multilingual:
            # A given language skips Whisper's detection; one more encoder pass over the first 30 s of speech tells
            # whether the speech is in that language at all (the run warns when it is not).
            from faster_whisper.vad import VadOptions  # detect_language, unlike transcribe, takes no dict

            heard, probability, _ = self._model.detect_language(
                samples, vad_filter=self._vad_filter, vad_parameters=VadOptions(min_silence_duration_ms=500)
            )
            detected = (heard, round(float(probability), 4))
        return Transcription(
            language=info.language,
            language_probability=info.language_probability,
            duration=round(clip.duration, 3),
            segments=tuple(segments),
            detected_language=detected[0],
            detected_language_probability=detected[1],
        )
