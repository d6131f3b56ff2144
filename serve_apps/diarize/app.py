"""The diarization application: `serve_apps.diarize.app:build_app` in a Serve config file."""

from __future__ import annotations

from typing import Any, Literal

from ray.serve import Application

from octavia.profiles import QUALITY
from serve_apps.common.args import PerItemAppArgs
from serve_apps.common.engines import EngineSpec, resolve_model
from serve_apps.common.options import deployment_options
from serve_apps.diarize.deployment import DIARIZE_OPTIONS, SpeakerEmbedding

PIPELINE_PREFIX = "pipeline:"


class DiarizeAppArgs(PerItemAppArgs):
    # "clustering": segmentation + speaker embeddings, embeds chunks (offline); "pipeline": pyannote's end-to-end
    # pipeline (quality). Default: what the profile says.
    diarizer: Literal["clustering", "pipeline"] | None = None
    segmentation: str | None = None  # catalogue name or directory; default: the profile's
    speaker_embedding: str | None = None  # catalogue name ("campplus-sv-zh-en", "resemblyzer-encoder")
    pipeline: str | None = None  # catalogue name, hub id or directory; default: the profile's
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Clustering options (ClusteringDiarizer): embedding window and hop in seconds, distance threshold.
    window: float = 1.5
    step: float = 0.75
    threshold: float | None = None
    max_batch_size: int = 4
    batch_wait_timeout_s: float = 0.05


def _device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_clustering_diarizer(
    segmentation: str, speaker_embedding: str, *, fetch: bool = False, device: str = "auto", **options: Any
):
    """The offline diarizer (as `engine.offline_diarizer` builds it), with model and device overrides."""
    from serve_apps.diarize.embedding import load_speaker_embedder
    from serve_apps.diarize.engine import ClusteringDiarizer
    from serve_apps.diarize.segmentation import SegmentationModel

    device = _device(device)
    segmenter = SegmentationModel(resolve_model(segmentation, fetch=fetch), device=device)
    embedder = load_speaker_embedder(speaker_embedding, resolve_model(speaker_embedding, fetch=fetch), device=device)
    return ClusteringDiarizer(segmenter, embedder, **options)


def load_pipeline_diarizer(pipeline: str, *, fetch: bool = False, device: str = "auto"):
    """pyannote's pipeline from the model store (a catalogue name) or as `PyannotePipelineDiarizer` finds it."""
    from octavia.models.catalog import CATALOG
    from serve_apps.diarize.pyannote_pipeline import PyannotePipelineDiarizer

    location = resolve_model(pipeline, fetch=fetch) if pipeline in CATALOG else pipeline
    return PyannotePipelineDiarizer(location, device=device)


def engine_spec(args: DiarizeAppArgs) -> EngineSpec:
    custom = args.custom_engine()
    if custom:
        return custom
    profile = args.profile_models
    diarizer = args.diarizer or ("pipeline" if profile.diarization.startswith(PIPELINE_PREFIX) else "clustering")
    if diarizer == "pipeline":
        source = profile if profile.diarization.startswith(PIPELINE_PREFIX) else QUALITY
        default_pipeline = source.diarization.removeprefix(PIPELINE_PREFIX)
        return EngineSpec(
            factory="serve_apps.diarize.app:load_pipeline_diarizer",
            kwargs={"pipeline": args.pipeline or default_pipeline, "fetch": args.fetch_models, "device": args.device},
        )
    return EngineSpec(
        factory="serve_apps.diarize.app:load_clustering_diarizer",
        kwargs={
            "segmentation": args.segmentation or profile.segmentation,
            "speaker_embedding": args.speaker_embedding or profile.speaker_embedding,
            "fetch": args.fetch_models,
            "device": args.device,
            "window": args.window,
            "step": args.step,
            "threshold": args.threshold,
        },
    )


def build_app(args: dict[str, Any]) -> Application:
    parsed = DiarizeAppArgs.model_validate(args)
    options = deployment_options(DIARIZE_OPTIONS, parsed.deployment)
    return SpeakerEmbedding.options(**options).bind(
        engine_spec(parsed),
        max_batch_size=parsed.max_batch_size,
        batch_wait_timeout_s=parsed.batch_wait_timeout_s,
        engine_workers=parsed.engine_workers,
    )
