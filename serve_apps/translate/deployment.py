"""The translation deployment: a shim over a `TranslationEngine` (Apertium offline, Marian for quality).

`translate` is batched across concurrent callers: the calls of one batch are grouped by language pair and each
group is ONE engine call (one apertium process per hop; padded beam search over all segments for Marian), then
every caller gets its own translations back, in order. If a merged call fails, its callers are retried one by one
so that one bad request fails alone.

Marian has one model per pair; with `per_pair` each pair is a multiplexed model ("en-es"), loaded on demand and
evicted least-recently-used beyond `max_pairs_per_replica`. Callers route a pair to the replicas that hold it with
`handle.options(multiplexed_model_id="en-es")` (HTTP: header `serve_multiplexed_model_id: en-es`); without it any
replica loads the pair it is asked for. Apertium serves every installed pair from one engine: no model id needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict
from ray import serve

from octavia.records import Translation, TranslationRequest
from serve_apps.common.engines import EngineSpec
from serve_apps.common.http import json_response, parse_body, read_body, require_method, respond
from serve_apps.common.metrics import ReplicaStats, ServingMetrics
from serve_apps.common.replica import EngineRunner, LoadedModel, unwrap

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from serve_apps.translate.engine import TranslationEngine

# Calls are short and batch well: admit many at once so that batches can fill.
TRANSLATE_OPTIONS = {"max_ongoing_requests": 32, "autoscaling_config": {"target_ongoing_requests": 16}}
WARM_UP = [TranslationRequest(segment_id=0, text="Hello.")]

Call = tuple[list[TranslationRequest], str, str]


class TranslateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    target: str
    segments: list[TranslationRequest]


def pair_model_id(source: str, target: str) -> str:
    return f"{source}-{target}"


def parse_pair(model_id: str) -> tuple[str, str]:
    parts = model_id.split("-")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"a translation model id is '<source>-<target>' such as 'en-es', got {model_id!r}")
    return parts[0], parts[1]


@serve.deployment
class Translator:
    def __init__(
        self,
        engine: EngineSpec,
        *,
        per_pair: bool = False,
        max_pairs_per_replica: int = 4,
        max_batch_size: int = 16,
        batch_wait_timeout_s: float = 0.02,
    ) -> None:
        self._spec = engine
        # Serves every pair (Apertium), or with per_pair only lists the pairs: Marian loads nothing until asked.
        self._engine: TranslationEngine = engine.create()
        self._per_pair = per_pair
        self._runner = EngineRunner("translate")
        self._metrics = ServingMetrics()
        self._translate_batch.set_max_batch_size(max_batch_size)
        self._translate_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

        async def load_pair_model(model_id: str) -> LoadedModel:
            return await self._load_pair(model_id)

        # Wrapped here rather than decorated so that the cache size comes from the app args.
        self._pair_model = serve.multiplexed(max_num_models_per_replica=max_pairs_per_replica)(load_pair_model)

    async def translate(self, batch: list[TranslationRequest], source: str, target: str) -> list[Translation]:
        """One Translation per request, in order, segment ids kept."""
        with self._metrics.request("translate"):
            return unwrap(await self._translate_batch((list(batch), source, target)))

    async def pairs(self) -> tuple[tuple[str, str], ...]:
        return self._engine.pairs()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def _translate_batch(self, calls: list[Call]) -> list[list[Translation] | Exception]:
        self._metrics.batch("translate", len(calls))
        by_pair: dict[tuple[str, str], list[int]] = {}
        for i, (_, source, target) in enumerate(calls):
            by_pair.setdefault((source, target), []).append(i)
        results: list[list[Translation] | Exception] = [[] for _ in calls]
        for (source, target), indices in by_pair.items():
            try:
                engine = await self._engine_for(source, target)
            except Exception as exc:
                for i in indices:
                    results[i] = exc
                continue
            group = await self._translate_group(engine, [calls[i][0] for i in indices], source, target)
            for i, result in zip(indices, group, strict=True):
                results[i] = result
        return results

    async def _translate_group(
        self, engine: TranslationEngine, batches: list[list[TranslationRequest]], source: str, target: str
    ) -> list[list[Translation] | Exception]:
        """The callers of one pair as one engine call, split back per caller; one by one if the merged call fails."""
        merged = [request for batch in batches for request in batch]
        [outcome] = await self._runner.map(lambda segments: engine.translate(segments, source, target), [merged])
        if isinstance(outcome, Exception):
            if len(batches) == 1:
                return [outcome]
            return await self._runner.map(lambda batch: engine.translate(batch, source, target), batches)
        results: list[list[Translation] | Exception] = []
        start = 0
        for batch in batches:
            results.append(outcome[start : start + len(batch)])
            start += len(batch)
        return results

    async def _engine_for(self, source: str, target: str) -> TranslationEngine:
        if not self._per_pair:
            return self._engine
        model_id = pair_model_id(source, target)
        requested = serve.get_multiplexed_model_id()
        if requested and requested != model_id:
            raise ValueError(f"multiplexed model id {requested!r} does not match the pair {source}->{target}")
        loaded: LoadedModel = await self._pair_model(model_id)
        return loaded.engine

    async def _load_pair(self, model_id: str) -> LoadedModel:
        source, target = parse_pair(model_id)
        self._engine.check_pair(source, target)  # unknown pairs fail here, naming the available ones

        def create() -> TranslationEngine:
            engine: TranslationEngine = self._spec.create()
            engine.translate(WARM_UP, source, target)  # loads the pair's weights now, not on the first request
            return engine

        engine = await self._runner.run(create)
        self._metrics.model_loaded(model_id)
        return LoadedModel(model_id, engine, self._metrics.model_unloaded)

    async def stats(self) -> ReplicaStats:
        return self._metrics.snapshot()

    async def check_health(self) -> None:
        self._runner.check_health()

    async def __call__(self, request: Request) -> Response:
        """POST JSON {source, target, segments: [{segment_id, text}]} -> JSON list of translations.
        GET -> the pairs this app translates."""

        async def handle() -> Response:
            require_method(request, "GET", "POST")
            if request.method == "GET":
                return json_response({"pairs": [list(p) for p in await self.pairs()]})
            body = parse_body(await read_body(request), TranslateBody)
            translations = await self.translate(body.segments, body.source, body.target)
            return json_response([t.model_dump(mode="json") for t in translations])

        return await respond(handle)
