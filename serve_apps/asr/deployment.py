"""The ASR deployment: a shim over an `AsrEngine` (faster-whisper by default).

Not batched: faster-whisper decodes one recording at a time (its batched pipeline drops the VAD-driven long-form
decoding the engine relies on), and one chunk already keeps a replica's CPUs busy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray import serve

from octavia.audio import AudioClip
from octavia.errors import BadInputError
from octavia.records import Transcription
from serve_apps.common.engines import EngineSpec
from serve_apps.common.http import (
    decode_audio,
    json_response,
    query_bool,
    query_float,
    read_body,
    require_method,
    respond,
)
from serve_apps.common.metrics import ReplicaStats, ServingMetrics
from serve_apps.common.replica import EngineRunner

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from serve_apps.asr.engine import AsrEngine

# Each transcription holds the replica's CPUs for seconds: queue few, let autoscaling add replicas.
ASR_OPTIONS = {"max_ongoing_requests": 4, "autoscaling_config": {"target_ongoing_requests": 2}}


@serve.deployment
class Transcriber:
    def __init__(self, engine: EngineSpec, *, engine_workers: int = 1) -> None:
        self._engine: AsrEngine = engine.create()
        self._runner = EngineRunner("asr", workers=engine_workers)
        self._metrics = ServingMetrics()

    async def transcribe(
        self, audio: AudioClip, language: str | None = None, offset: float = 0.0, check_language: bool = False
    ) -> Transcription:
        """Speech to text with word times; `offset` (s) places a chunk on the whole input's timeline;
        `check_language`: see `AsrEngine.transcribe`."""
        with self._metrics.request("transcribe"):
            result = await self._runner.run(
                self._engine.transcribe, audio, language, offset=offset, check_language=check_language
            )
            self._metrics.audio("transcribe", audio.duration)
            return result

    async def languages(self) -> tuple[str, ...]:
        return self._engine.languages()

    async def stats(self) -> ReplicaStats:
        return self._metrics.snapshot()

    async def check_health(self) -> None:
        self._runner.check_health()

    async def __call__(self, request: Request) -> Response:
        """POST the bytes of an audio file (?language=en&offset=0&check_language=false) -> the Transcription as JSON.
        GET -> the languages the model knows."""

        async def handle() -> Response:
            require_method(request, "GET", "POST")
            if request.method == "GET":
                return json_response({"languages": list(await self.languages())})
            audio = decode_audio(await read_body(request))
            language = request.query_params.get("language") or None
            offset = query_float(request, "offset", 0.0)
            if offset < 0:
                raise BadInputError(f"offset must be >= 0, got {offset}")
            transcription = await self.transcribe(audio, language, offset, query_bool(request, "check_language"))
            return json_response(transcription.model_dump(mode="json"))

        return await respond(handle)
