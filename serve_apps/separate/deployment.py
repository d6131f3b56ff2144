"""The source-separation deployment: a shim over a `SeparationEngine` (Spleeter offline, Demucs for quality).

Not batched: inputs are long (a whole chunk of a video), and both engines already cut them into overlapping
segments and run those through the network in batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray import serve

from octavia.audio import AudioClip
from octavia.errors import BadInputError
from serve_apps.common.engines import EngineSpec
from serve_apps.common.http import decode_audio, json_response, read_body, require_method, respond, wav_response
from serve_apps.common.metrics import ReplicaStats, ServingMetrics
from serve_apps.common.replica import EngineRunner

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from serve_apps.separate.engine import SeparationEngine, Stems

# Separating a chunk takes the replica's whole share of CPU or GPU for seconds: queue very few.
SEPARATE_OPTIONS = {"max_ongoing_requests": 2, "autoscaling_config": {"target_ongoing_requests": 1}}
STEMS = ("background", "vocals")


@serve.deployment
class Separator:
    def __init__(self, engine: EngineSpec) -> None:
        self._engine: SeparationEngine = engine.create()
        self._runner = EngineRunner("separate")
        self._metrics = ServingMetrics()

    async def separate(self, audio: AudioClip) -> Stems:
        """Vocals and background, each with the input's sample rate, channels and length."""
        with self._metrics.request("separate"):
            stems = await self._runner.run(self._engine.separate, audio)
            self._metrics.audio("separate", audio.duration)
            return stems

    async def stats(self) -> ReplicaStats:
        return self._metrics.snapshot()

    async def check_health(self) -> None:
        self._runner.check_health()

    async def __call__(self, request: Request) -> Response:
        """POST the bytes of an audio file (?stem=background|vocals, default background) -> that stem as WAV.
        GET -> which engine serves."""

        async def handle() -> Response:
            require_method(request, "GET", "POST")
            if request.method == "GET":
                return json_response({"engine": self._engine.name, "stems": list(STEMS)})
            stem = request.query_params.get("stem", "background")
            if stem not in STEMS:
                raise BadInputError(
                    f"unknown stem {stem!r}; choose {' or '.join(STEMS)}", details={"stem": stem, "stems": list(STEMS)}
                )
            stems = await self.separate(decode_audio(await read_body(request), mono=False))
            return wav_response(getattr(stems, stem))

        return await respond(handle)
