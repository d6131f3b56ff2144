"""The translation application: `serve_apps.translate.app:build_app` in a Serve config file."""

from __future__ import annotations

from typing import Any, Literal

from ray.serve import Application

from serve_apps.common.args import AppArgs
from serve_apps.common.engines import EngineSpec
from serve_apps.common.options import deployment_options
from serve_apps.translate.deployment import TRANSLATE_OPTIONS, Translator, parse_pair


class TranslateAppArgs(AppArgs):
    translator: Literal["apertium", "marian"] | None = None  # default: the profile's
    # Marian: the model of each pair, "en-es" -> catalogue name, hub id or directory; default: the catalogue's.
    pair_models: dict[str, str] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_beams: int = 4
    # Serve each pair as its own multiplexed model; default: on for Marian (a model per pair), off otherwise.
    per_pair: bool | None = None
    max_pairs_per_replica: int = 4
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.02


def load_apertium():
    from serve_apps.translate.apertium import ApertiumEngine

    return ApertiumEngine()


def load_marian(pair_models: dict[str, str] | None = None, **options: Any):
    """OPUS-MT through transformers; a catalogue model missing from the store is fetched on first use."""
    from serve_apps.translate.marian import MarianEngine

    models = {parse_pair(pair): model for pair, model in pair_models.items()} if pair_models else None
    return MarianEngine(models, **options)


def engine_spec(args: TranslateAppArgs) -> tuple[EngineSpec, bool]:
    """The engine, and whether it is served one pair per multiplexed model."""
    custom = args.custom_engine()
    if custom:
        return custom, bool(args.per_pair)
    translator = args.translator or args.profile_models.translation
    if translator == "apertium":
        return EngineSpec(factory="serve_apps.translate.app:load_apertium"), bool(args.per_pair)
    spec = EngineSpec(
        factory="serve_apps.translate.app:load_marian",
        kwargs={"pair_models": args.pair_models, "device": args.device, "num_beams": args.num_beams},
    )
    return spec, args.per_pair is not False


def build_app(args: dict[str, Any]) -> Application:
    parsed = TranslateAppArgs.model_validate(args)
    if parsed.pair_models:
        for pair in parsed.pair_models:
            parse_pair(pair)  # refuse a bad key now rather than in every replica
    spec, per_pair = engine_spec(parsed)
    options = deployment_options(TRANSLATE_OPTIONS, parsed.deployment)
    return Translator.options(**options).bind(
        spec,
        per_pair=per_pair,
        max_pairs_per_replica=parsed.max_pairs_per_replica,
        max_batch_size=parsed.max_batch_size,
        batch_wait_timeout_s=parsed.batch_wait_timeout_s,
    )
