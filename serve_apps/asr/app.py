"""The ASR application: `serve_apps.asr.app:build_app` in a Serve config file."""

from __future__ import annotations

from typing import Any, Literal

from ray.serve import Application

from serve_apps.asr.deployment import ASR_OPTIONS, Transcriber
from serve_apps.common.args import PerItemAppArgs
from serve_apps.common.engines import EngineSpec, resolve_model
from serve_apps.common.options import deployment_options


class AsrAppArgs(PerItemAppArgs):
    model: str | None = None  # catalogue name or model directory; default: the profile's ASR model
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"  # CTranslate2 compute type; auto = float16 on CUDA, int8 on CPU
    cpu_threads: int = 0  # 0: min(4, cores)
    beam_size: int = 5
    vad_filter: bool = True


def load_engine(model: str, *, fetch: bool = False, **options: Any):
    """The default engine, built in the replica: faster-whisper on the model store's verified copy."""
    from serve_apps.asr.engine import FasterWhisperEngine

    return FasterWhisperEngine(resolve_model(model, fetch=fetch), **options)


def engine_spec(args: AsrAppArgs) -> EngineSpec:
    return args.custom_engine() or EngineSpec(
        factory="serve_apps.asr.app:load_engine",
        kwargs={
            "model": args.model or args.profile_models.asr,
            "fetch": args.fetch_models,
            "device": args.device,
            "compute_type": args.compute_type,
            "cpu_threads": args.cpu_threads,
            "beam_size": args.beam_size,
            "vad_filter": args.vad_filter,
            "num_workers": args.engine_workers,  # CTranslate2 decodes that many calls at once on one model
        },
    )


def build_app(args: dict[str, Any]) -> Application:
    parsed = AsrAppArgs.model_validate(args)
    options = deployment_options(ASR_OPTIONS, parsed.deployment)
    return Transcriber.options(**options).bind(engine_spec(parsed), engine_workers=parsed.engine_workers)
