"""How pipeline stages reach the models: in-process engines, or Ray Serve deployments through handles.

Both implement `ModelClients`, with the same method names as the Serve deployments, so a stage does not know
which one it has. `LocalClients` is for running without Ray (tests, the overhead benchmark); `ServeClients` is
what the analysis's Ray Data actor and the driver (translation, voices, the lines' synthesis) use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from octavia.audio import AudioClip
from octavia.profiles import ProfileModels
from octavia.records import Transcription, Translation, TranslationRequest, Voice

if TYPE_CHECKING:
    from octavia.models.store import ModelStore
    from serve_apps.diarize.engine import ClusteringDiarizer, SpeechEmbeddings
    from serve_apps.separate.engine import Stems

log = logging.getLogger(__name__)

# Serve application and deployment names (serve_apps/configs/serve-*.yaml).
SERVE_DEPLOYMENTS: dict[str, tuple[str, str]] = {
    "asr": ("asr", "Transcriber"),
    "diarize": ("diarize", "SpeakerEmbedding"),
    "separate": ("separate", "Separator"),
    "translate": ("translate", "Translator"),
    "tts": ("tts", "Synthesizer"),
}


class ModelClients(Protocol):
    def transcribe(
        self, audio: AudioClip, language: str | None = None, offset: float = 0.0, check_language: bool = False
    ) -> Transcription: ...

    def embed_speech(self, audio: AudioClip, offset: float = 0.0) -> SpeechEmbeddings: ...

    def separate(self, audio: AudioClip) -> Stems: ...

    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]: ...

    def translation_pairs(self) -> tuple[tuple[str, str], ...]: ...

    def synthesize(self, text: str, language: str, voice: str, speed: float = 1.0) -> AudioClip: ...

    def voices(self, language: str | None = None) -> tuple[Voice, ...]: ...

    def release(self, families: Collection[str]) -> None:
        """The run calls no model of these families again: free what holds them, where these clients own it."""
        ...


# LocalClients' cached engine attributes per model family (what `release` drops).
_LOCAL_ENGINES = {"asr": "_asr", "diarize": "diarizer", "separate": "_separator", "translate": "_translator",
                  "tts": "_tts"}  # fmt: skip


class LocalClients:
    """The profile's engines in this process, each built on first use. `cpu_threads` caps the threads of Whisper
    and Kokoro (0: their defaults, every core), e.g. to match the one-thread replicas of serve-cpu.yaml."""

    def __init__(
        self, profile: ProfileModels, separation: str, store: ModelStore | None = None, *, cpu_threads: int = 0
    ) -> None:
        from octavia.models.store import ModelStore

        self.profile = profile
        self.separation = separation
        self.store = store or ModelStore()
        self.cpu_threads = cpu_threads

    @cached_property
    def _asr(self) -> Any:
        from serve_apps.asr.engine import FasterWhisperEngine

        return FasterWhisperEngine(self.store.resolve(self.profile.asr), cpu_threads=self.cpu_threads)

    @cached_property
    def diarizer(self) -> ClusteringDiarizer:
        from serve_apps.diarize.engine import offline_diarizer

        return offline_diarizer(self.store)

    @cached_property
    def _separator(self) -> Any:
        from serve_apps.separate.engine import create_separation_engine

        return create_separation_engine(self.separation, store=self.store)

    @cached_property
    def _translator(self) -> Any:
        from serve_apps.translate.engine import create_translation_engine

        return create_translation_engine(self.profile.translation, store=self.store)

    @cached_property
    def _tts(self) -> list[Any]:
        from serve_apps.tts.engine import load_engine

        return [load_engine(model, self.store, cpu_threads=self.cpu_threads) for model in self.profile.tts]

    def transcribe(
        self, audio: AudioClip, language: str | None = None, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        return self._asr.transcribe(audio, language, offset=offset, check_language=check_language)

    def embed_speech(self, audio: AudioClip, offset: float = 0.0) -> SpeechEmbeddings:
        return self.diarizer.embed_speech(audio, offset)

    def separate(self, audio: AudioClip) -> Stems:
        return self._separator.separate(audio)

    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        return self._translator.translate(batch, source, target)

    def translation_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._translator.pairs())

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        from serve_apps.tts.voices import voices_for_language

        if language is None:
            return tuple(v for e in self._tts for v in e.voices())
        return voices_for_language(language, self._tts)

    def synthesize(self, text: str, language: str, voice: str, speed: float = 1.0) -> AudioClip:
        for engine in self._tts:
            if any(v.id == voice for v in engine.voices()):
                return engine.synthesize(text, language, voice, speed=speed)
        raise ValueError(f"no engine has voice {voice!r}")

    def release(self, families: Collection[str]) -> None:
        for family in families:
            self.__dict__.pop(_LOCAL_ENGINES[family], None)  # a cached_property built again if asked for


class ServeClients:
    """The same calls through Ray Serve deployment handles (blocking on each result).

    Handles are looked up on first use: a run deploys only the families it needs (no `separate` app when
    separation is off), and a handle to an application that does not exist fails at once. With `owned` (the
    run's own embedded cluster) `release` deletes the applications of the released families; on a shared cluster
    the applications serve other runs and stay.
    """

    def __init__(self, apps: dict[str, str] | None = None, *, owned: bool = False) -> None:
        self._apps = dict(apps or {})
        self._handles: dict[str, Any] = {}
        self._owned = owned
        self._released: set[str] = set()
        self._lock = threading.Lock()  # calls come from several threads (the lines' synthesis)
        self._in_flight: set[Any] = set()  # DeploymentResponses being waited on
        self._closed = False

    def __enter__(self) -> ServeClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel the calls in flight, refuse new ones and stop the handles' routers; before `ray.shutdown`.

        A thread still waiting on a call (a line being synthesized when the run was stopped) would wait forever
        once the router is gone, and the interpreter waits for such threads at exit: Ctrl-C once hung a dub
        that way. A router left running pushes its autoscaling metrics to the Serve controller every 10 s from a
        thread of its own, and its first push after `ray.shutdown` called `ray.init()` (Ray starts a cluster on
        first use): a second local Ray instance, dashboard included, started at the end of a run whose process
        had not exited yet; on a machine with a `ray start` cluster it would have joined that one."""
        with self._lock:
            self._closed = True
            in_flight, self._in_flight = list(self._in_flight), set()
        for response in in_flight:
            _cancel(response)
        self._shut_down(list(self._handles))

    def _handle(self, family: str) -> Any:
        if family in self._released or self._closed:
            from octavia.errors import ModelError

            what = "closed its model clients" if self._closed else f"released its {family} models"
            raise ModelError(f"this run {what}; it cannot call them again")
        if family not in self._handles:
            from ray import serve

            app, deployment = SERVE_DEPLOYMENTS[family]
            self._handles[family] = serve.get_deployment_handle(deployment, app_name=self._apps.get(family, app))
        return self._handles[family]

    def _call(self, family: str, method: str, *args: Any, **kwargs: Any) -> Any:
        response = getattr(self._handle(family), method).remote(*args, **kwargs)
        with self._lock:
            closed = self._closed
            if not closed:
                self._in_flight.add(response)
        if closed:  # closed while this call was being sent
            _cancel(response)
        try:
            return response.result()
        finally:
            with self._lock:
                self._in_flight.discard(response)

    def transcribe(
        self, audio: AudioClip, language: str | None = None, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        return self._call("asr", "transcribe", audio, language, offset, check_language)

    def embed_speech(self, audio: AudioClip, offset: float = 0.0) -> SpeechEmbeddings:
        return self._call("diarize", "embed_speech", audio, offset)

    def separate(self, audio: AudioClip) -> Stems:
        return self._call("separate", "separate", audio)

    def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        return self._call("translate", "translate", batch, source, target)

    def translation_pairs(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._call("translate", "pairs"))

    def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        return tuple(self._call("tts", "voices", language))

    def synthesize(self, text: str, language: str, voice: str, speed: float = 1.0) -> AudioClip:
        return self._call("tts", "synthesize", text, language, voice, speed)

    def release(self, families: Collection[str]) -> None:
        if not self._owned:
            return
        from ray import serve

        self._released |= set(families)
        names = [self._apps.pop(family) for family in sorted(self._released & self._apps.keys())]
        for name in names:
            serve.delete(name, _blocking=False)  # the replicas drain and stop while the run goes on
        self._shut_down(families)
        if names:
            log.info("deleted the Serve applications %s: this run calls them no more", ", ".join(names))

    def _shut_down(self, families: Collection[str]) -> None:
        for family in families:
            if (handle := self._handles.pop(family, None)) is None:
                continue
            try:
                handle.shutdown()
            except Exception as exc:  # never over the run's own result or error
                log.warning("could not stop the %s handle's router: %s", family, exc)


def _cancel(response: Any) -> None:
    """Cancel a call: its waiter gets `RequestCancelledError` (not yet sent to a replica) or `TaskCancelledError`."""
    try:
        response.cancel()
    except Exception as exc:  # best effort, never over the run's own result or error
        log.warning("could not cancel a model call in flight: %s", exc)
