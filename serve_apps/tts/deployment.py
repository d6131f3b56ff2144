"""The TTS deployment: a shim over the profile's TTS engines, best first (offline: Kokoro, Piper, espeak-ng;
quality: XTTS v2, espeak-ng).

Voices are named `engine:voice_id` ("kokoro:jf_alpha", "piper:en_US-joe-medium", "espeak-ng:m3",
"coqui:reference"); a bare voice id means the first engine, in preference order, that has it. `voices()` lists
the `Voice` records of every engine, best engine first; the full name is `f"{voice.engine}:{voice.id}"`.

Engines with one model per voice (Piper) are multiplexed: each voice is a model, loaded on demand, at most
`max_voices_per_replica` per replica (least recently used evicted). Callers route a voice to replicas holding it
with `handle.options(multiplexed_model_id="piper:en_US-joe-medium")`; other voices need no model id.

`synthesize` is batched across concurrent callers. The engines speak one line at a time (none has a batch API),
so a batch saves no compute today: its lines spread over the replica's engine workers (`engine_workers`, each a
thread on the one loaded model), Serve splits batches by multiplexed model id so a batch stays on one voice model,
and it is where an engine with a batch API would plug in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from octavia.audio import AudioClip
from octavia.languages import normalize
from octavia.records import Voice
from serve_apps.common.engines import EngineSpec
from serve_apps.common.http import json_response, parse_body, read_body, require_method, respond, wav_response
from serve_apps.common.metrics import ReplicaStats, ServingMetrics
from serve_apps.common.replica import EngineRunner, LoadedModel, batched, unwrap

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from serve_apps.tts.engine import TtsEngine

# Lines are short and many run at once during a dub: admit enough for batches to fill.
TTS_OPTIONS = {"max_ongoing_requests": 32, "autoscaling_config": {"target_ongoing_requests": 16}}


class TtsEngineSpec(BaseModel):
    """One engine of the app: resident (`engine`: one model for all its voices) or per voice (`voice_models`:
    one model per voice, multiplexed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None  # the engine name in voice ids; default: the engine's own `name`
    engine: EngineSpec | None = None
    voice_models: tuple[EngineSpec, ...] = ()


class SynthesizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    language: str
    voice: str
    speed: float = Field(default=1.0, ge=0.5, le=2.0)


@dataclass(frozen=True)
class Line:
    text: str
    language: str
    voice: str
    speed: float
    reference: AudioClip | None


@serve.deployment
class Synthesizer:
    def __init__(
        self,
        engines: list[TtsEngineSpec],
        *,
        max_voices_per_replica: int = 4,
        max_batch_size: int = 8,
        batch_wait_timeout_s: float = 0.02,
        engine_workers: int = 1,
    ) -> None:
        if not engines:
            raise ValueError("a TTS app needs at least one engine")
        self._resident: dict[str, TtsEngine] = {}
        self._voice_specs: dict[str, EngineSpec] = {}  # "piper:en_US-joe-medium" -> how to load that voice
        voices: list[Voice] = []
        for spec in engines:
            if spec.engine is not None:
                engine: TtsEngine = spec.engine.create()
                self._resident[spec.name or engine.name] = engine
                voices.extend(engine.voices())
            for voice_spec in spec.voice_models:
                # Loaded once to learn its voice (languages, gender, pitch), then released until asked for.
                probe: TtsEngine = voice_spec.create()
                for voice in probe.voices():
                    voices.append(voice)
                    self._voice_specs[f"{spec.name or probe.name}:{voice.id}"] = voice_spec
                del probe
        self._voices = tuple(voices)
        self._runner = EngineRunner("tts", workers=engine_workers)
        self._metrics = ServingMetrics()
        self._synthesize_batch = batched(self._synthesize_lines, max_batch_size=max_batch_size,
                                         batch_wait_timeout_s=batch_wait_timeout_s, workers=engine_workers)  # fmt: skip

        async def load_voice_model(model_id: str) -> LoadedModel:
            return await self._load_voice(model_id)

        self._voice_model = serve.multiplexed(max_num_models_per_replica=max_voices_per_replica)(load_voice_model)

    async def synthesize(
        self, text: str, language: str, voice: str, speed: float = 1.0, reference: AudioClip | None = None
    ) -> AudioClip:
        """Speak `text` in `voice` ("engine:voice_id" or a bare voice id); `reference` is a clip of the source
        speaker for engines that clone voices (XTTS), ignored by the others."""
        with self._metrics.request("synthesize"):
            clip = unwrap(await self._synthesize_batch(Line(text, language, voice, speed, reference)))
            self._metrics.audio("synthesize", clip.duration)
            return clip

    async def voices(self, language: str | None = None) -> tuple[Voice, ...]:
        """Every engine's voices (for one language or all), best engine first."""
        if language is None:
            return self._voices
        code = normalize(language)
        return tuple(v for v in self._voices if code in v.languages)

    async def _synthesize_lines(self, lines: list[Line]) -> list[AudioClip | Exception]:
        self._metrics.batch("synthesize", len(lines))
        jobs: list[tuple[TtsEngine | Exception, str, Line]] = []
        for line in lines:
            try:
                engine, voice_id = await self._engine_for(line.voice)
                jobs.append((engine, voice_id, line))
            except Exception as exc:
                jobs.append((exc, "", line))

        def speak(job: tuple[TtsEngine | Exception, str, Line]) -> AudioClip:
            engine, voice_id, line = job
            if isinstance(engine, Exception):
                raise engine
            return engine.synthesize(line.text, line.language, voice_id, speed=line.speed, reference=line.reference)

        return await self._runner.map(speak, jobs)

    async def _engine_for(self, voice: str) -> tuple[TtsEngine, str]:
        engine_name, sep, voice_id = voice.partition(":")
        if not sep:
            voice_id = voice
            match = next((v for v in self._voices if v.id == voice), None)
            if match is None:
                raise ValueError(f"no voice {voice!r}; voices are: {', '.join(self._voice_names())}")
            engine_name = match.engine
        key = f"{engine_name}:{voice_id}"
        if key in self._voice_specs:
            loaded: LoadedModel = await self._voice_model(key)
            return loaded.engine, voice_id
        if engine_name in self._resident:
            return self._resident[engine_name], voice_id  # the engine itself names its voices if this is not one
        raise ValueError(f"no TTS engine {engine_name!r} here; voices are: {', '.join(self._voice_names())}")

    def _voice_names(self) -> list[str]:
        return [f"{v.engine}:{v.id}" for v in self._voices]

    async def _load_voice(self, model_id: str) -> LoadedModel:
        if model_id not in self._voice_specs:
            raise ValueError(f"no per-voice model {model_id!r}; they are: {', '.join(self._voice_specs)}")
        engine = await self._runner.run(self._voice_specs[model_id].create)
        self._metrics.model_loaded(model_id)
        return LoadedModel(model_id, engine, self._metrics.model_unloaded)

    async def stats(self) -> ReplicaStats:
        return self._metrics.snapshot()

    async def check_health(self) -> None:
        self._runner.check_health()

    async def __call__(self, request: Request) -> Response:
        """POST JSON {text, language, voice, speed?} -> the speech as audio/wav.
        GET (?language=es) -> the voices, best engine first."""

        async def handle() -> Response:
            require_method(request, "GET", "POST")
            if request.method == "GET":
                voices = await self.voices(request.query_params.get("language") or None)
                return json_response([{"name": f"{v.engine}:{v.id}", **v.model_dump(mode="json")} for v in voices])
            body = parse_body(await read_body(request), SynthesizeBody)
            return wav_response(await self.synthesize(body.text, body.language, body.voice, body.speed))

        return await respond(handle)
