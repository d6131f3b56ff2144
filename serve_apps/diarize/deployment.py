"""The diarization deployment: per-chunk speaker embeddings (offline) or whole-input diarization (quality).

The pipeline embeds the chunks of a long input in parallel through `embed_speech` and clusters all of them in its
own process (`ClusteringDiarizer.assign_speakers`, numpy only): clustering per chunk would number the speakers of
each chunk independently. The quality engine (pyannote's pipeline) has no per-chunk half and serves `diarize`.

`embed_speech` calls are batched: the chunks of a batch spread over the replica's engine workers, and inside each
chunk the embedder already batches its windows (CAM++: 16 equal-length windows per forward pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import serve

from octavia.audio import AudioClip
from octavia.errors import BadInputError, ModelNotAvailableError
from octavia.records import Diarization
from serve_apps.common.engines import EngineSpec
from serve_apps.common.http import decode_audio, json_response, query_int, read_body, require_method, respond
from serve_apps.common.metrics import ReplicaStats, ServingMetrics
from serve_apps.common.replica import EngineRunner, batched, unwrap

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from serve_apps.diarize.engine import DiarizationEngine, SpeechEmbeddings

DIARIZE_OPTIONS = {"max_ongoing_requests": 8, "autoscaling_config": {"target_ongoing_requests": 4}}


@serve.deployment
class SpeakerEmbedding:
    def __init__(
        self,
        engine: EngineSpec,
        *,
        max_batch_size: int = 4,
        batch_wait_timeout_s: float = 0.05,
        engine_workers: int = 1,
    ) -> None:
        self._engine: DiarizationEngine = engine.create()
        self._runner = EngineRunner("diarize", workers=engine_workers)
        self._metrics = ServingMetrics()
        self._embed_batch = batched(self._embed_chunks, max_batch_size=max_batch_size,
                                    batch_wait_timeout_s=batch_wait_timeout_s, workers=engine_workers)  # fmt: skip

    @property
    def embeds_chunks(self) -> bool:
        return hasattr(self._engine, "embed_speech")

    async def embed_speech(self, audio: AudioClip, offset: float = 0.0) -> SpeechEmbeddings:
        """Speaker embeddings of the speech windows of one chunk; `offset` (s) places it on the input's timeline."""
        with self._metrics.request("embed_speech"):
            if not self.embeds_chunks:
                raise ModelNotAvailableError(
                    f"this diarize app serves {type(self._engine).__name__}, which labels whole recordings only: "
                    "call diarize(audio, num_speakers) instead, or serve the offline profile's clustering engine",
                    details={"engine": type(self._engine).__name__},
                )
            result = unwrap(await self._embed_batch((audio, offset)))
            self._metrics.audio("embed_speech", audio.duration)
            return result

    async def _embed_chunks(self, items: list[tuple[AudioClip, float]]) -> list[SpeechEmbeddings | Exception]:
        self._metrics.batch("embed_speech", len(items))
        return await self._runner.map(lambda item: self._engine.embed_speech(*item), items)

    async def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        """Who speaks when in one whole recording."""
        with self._metrics.request("diarize"):
            result = await self._runner.run(self._engine.diarize, audio, num_speakers)
            self._metrics.audio("diarize", audio.duration)
            return result

    async def stats(self) -> ReplicaStats:
        return self._metrics.snapshot()

    async def check_health(self) -> None:
        self._runner.check_health()

    async def __call__(self, request: Request) -> Response:
        """POST the bytes of an audio file (?num_speakers=2) -> JSON: the speaker turns, and with the clustering
        engine also the embedding windows and their vectors. GET -> which engine serves."""

        async def handle() -> Response:
            require_method(request, "GET", "POST")
            if request.method == "GET":
                return json_response({"engine": type(self._engine).__name__, "embeds_chunks": self.embeds_chunks})
            audio = decode_audio(await read_body(request))
            num_speakers = query_int(request, "num_speakers")
            if num_speakers is not None and num_speakers < 1:
                raise BadInputError(f"num_speakers must be at least 1, got {num_speakers}")
            body: dict[str, Any] = {}
            if self.embeds_chunks:
                embeddings = await self.embed_speech(audio)
                assign = self._engine.assign_speakers  # type: ignore[attr-defined]
                diarization = await self._runner.run(assign, [embeddings], num_speakers)
                body["windows"] = [w.model_dump() for w in embeddings.windows]
                body["vectors"] = (
                    embeddings.vectors.astype(float).round(5).tolist()
                )  # float64: no float32 noise in JSON
            else:
                diarization = await self.diarize(audio, num_speakers)
            body["speakers"] = list(diarization.speakers)
            body["turns"] = [t.model_dump() for t in diarization.turns]
            return json_response(body)

        return await respond(handle)
