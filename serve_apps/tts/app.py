"""The TTS application: `serve_apps.tts.app:build_app` in a Serve config file."""

from __future__ import annotations

from typing import Any, Literal

from ray.serve import Application

from serve_apps.common.args import PerItemAppArgs
from serve_apps.common.engines import EngineSpec, resolve_model
from serve_apps.common.options import deployment_options
from serve_apps.tts.deployment import TTS_OPTIONS, Synthesizer, TtsEngineSpec

ESPEAK = "espeak-ng"


class TtsAppArgs(PerItemAppArgs):
    # TTS models in order of preference (catalogue names: "kokoro-82m-int8", "piper-<voice>", "espeak-ng",
    # "xtts-v2" or another coqui model); default: the profile's. `engine` instead serves that one engine alone.
    engines: list[str] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"  # coqui models
    max_voices_per_replica: int = 4
    max_batch_size: int = 8
    batch_wait_timeout_s: float = 0.02
    cpu_threads: int = 0  # Kokoro's ONNX Runtime threads per replica; 0: one per core


def load_kokoro(model: str, *, fetch: bool = False, cpu_threads: int = 0):
    from serve_apps.tts.kokoro import KokoroEngine

    return KokoroEngine(resolve_model(model, fetch=fetch), cpu_threads=cpu_threads)


def load_piper(model: str, *, fetch: bool = False):
    from serve_apps.tts.piper import PiperEngine

    return PiperEngine(resolve_model(model, fetch=fetch))


def load_coqui(model: str, *, fetch: bool = False, device: str = "auto"):
    from serve_apps.tts.coqui import CoquiEngine

    return CoquiEngine(resolve_model(model, fetch=fetch), device=device)


def engine_specs(args: TtsAppArgs) -> list[TtsEngineSpec]:
    custom = args.custom_engine()
    if custom:
        return [TtsEngineSpec(engine=custom)]
    specs: list[TtsEngineSpec] = []
    piper_voices: list[EngineSpec] = []
    for model in args.engines or args.profile_models.tts:
        loaded = {"model": model, "fetch": args.fetch_models}
        if model == ESPEAK:
            specs.append(TtsEngineSpec(engine=EngineSpec(factory="serve_apps.tts.espeak:EspeakEngine")))
        elif model.startswith("kokoro"):
            kwargs = {**loaded, "cpu_threads": args.cpu_threads}
            specs.append(TtsEngineSpec(engine=EngineSpec(factory="serve_apps.tts.app:load_kokoro", kwargs=kwargs)))
        elif model.startswith("piper-"):
            if not piper_voices:  # every Piper voice joins one engine, ranked where the first one is listed
                specs.append(TtsEngineSpec(name="piper"))
            piper_voices.append(EngineSpec(factory="serve_apps.tts.app:load_piper", kwargs=loaded))
        else:
            kwargs = {**loaded, "device": args.device}
            specs.append(TtsEngineSpec(engine=EngineSpec(factory="serve_apps.tts.app:load_coqui", kwargs=kwargs)))
    return [
        spec.model_copy(update={"voice_models": tuple(piper_voices)}) if spec.name == "piper" else spec
        for spec in specs
    ]


def build_app(args: dict[str, Any]) -> Application:
    parsed = TtsAppArgs.model_validate(args)
    options = deployment_options(TTS_OPTIONS, parsed.deployment)
    return Synthesizer.options(**options).bind(
        engine_specs(parsed),
        max_voices_per_replica=parsed.max_voices_per_replica,
        max_batch_size=parsed.max_batch_size,
        batch_wait_timeout_s=parsed.batch_wait_timeout_s,
        engine_workers=parsed.engine_workers,
    )
