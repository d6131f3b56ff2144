"""Both Serve config files: Ray's own schema accepts them and every application builds, without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.schema import ServeDeploySchema

from serve_apps.common.engines import import_attr

CONFIGS = Path(__file__).resolve().parents[3] / "serve_apps" / "configs"
FAMILIES_IN_ORDER = ("asr", "diarize", "separate", "translate", "tts")
FAMILIES = set(FAMILIES_IN_ORDER)


def load(name: str) -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load((CONFIGS / name).read_text()))


@pytest.mark.parametrize("name", ["serve-cpu.yaml", "serve-gpu.yaml"])
def test_config_builds_every_application_as_serve_would(name: str) -> None:
    config = load(name)
    assert {app.name for app in config.applications} == FAMILIES
    for app in config.applications:
        assert app.route_prefix == f"/{app.name}"
        # What `serve run` / `serve deploy` do with import_path + args, short of deploying.
        built = call_user_app_builder_with_args_if_necessary(import_attr(app.import_path), app.args)
        deployment = built._bound_deployment
        [override] = app.deployments
        assert override.name == deployment.name  # a misnamed entry would make Serve refuse the config
        # The config's options on top of the code's must still be valid deployment options.
        deployment.options(**override.model_dump(exclude_unset=True, exclude={"name"}))
        assert override.autoscaling_config["target_ongoing_requests"] <= override.max_ongoing_requests


def test_cpu_config_fits_two_cores() -> None:
    config = load("serve-cpu.yaml")
    shares = [app.deployments[0].ray_actor_options.num_cpus for app in config.applications]
    assert all(0 < share < 1 for share in shares)
    assert sum(shares) <= 1.5
    for app in config.applications:
        assert app.args["profile"] == "offline"
        assert not app.deployments[0].ray_actor_options.num_gpus
        assert app.deployments[0].autoscaling_config["max_replicas"] == 1


def test_gpu_config_shares_gpus_and_says_why() -> None:
    config = load("serve-gpu.yaml")
    text = (CONFIGS / "serve-gpu.yaml").read_text()
    blocks = dict(zip(FAMILIES_IN_ORDER, text.split("\n  - name: ")[1:], strict=True))
    fractions = []
    for app in config.applications:
        assert app.args["profile"] == "quality"
        fraction = app.deployments[0].ray_actor_options.num_gpus
        assert 0 < fraction < 1
        # Each fraction is justified in the comment above it: its share of an L4 in GB, and what fills it.
        assert f"# {fraction} = " in blocks[app.name] and "GB" in blocks[app.name]
        fractions.append(fraction)
    assert sum(fractions) <= 1.0  # at min_replicas all five share one GPU


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_parallelism_sizes_each_per_item_model_as_one_replica_with_that_many_workers(workers: int) -> None:
    from pipeline.serving import PER_ITEM_FAMILIES, with_workers
    from serve_apps.asr.app import AsrAppArgs
    from serve_apps.diarize.app import DiarizeAppArgs
    from serve_apps.tts.app import TtsAppArgs

    raw = yaml.safe_load((CONFIGS / "serve-cpu.yaml").read_text())
    sized = ServeDeploySchema.model_validate(with_workers(raw, workers))  # still a valid Serve config
    original = {app.name: app for app in load("serve-cpu.yaml").applications}
    arg_models = {"asr": AsrAppArgs, "diarize": DiarizeAppArgs, "tts": TtsAppArgs}
    for app in sized.applications:
        [deployment] = app.deployments
        [before] = original[app.name].deployments
        # The file's CPU share stays the replica's: one replica, so the applications fit as they did.
        assert deployment.ray_actor_options.num_cpus == before.ray_actor_options.num_cpus
        if app.name in PER_ITEM_FAMILIES:
            auto = deployment.autoscaling_config
            assert auto["min_replicas"] == auto["initial_replicas"] == auto["max_replicas"] == 1
            # As many requests as engine workers: every caller's item runs at once, none queues behind another.
            assert deployment.max_ongoing_requests == auto["target_ongoing_requests"] == workers
            assert arg_models[app.name].model_validate(app.args).engine_workers == workers
            # One request per batch where the app batches: no engine has a batch API, a batch only holds its items
            # until the longest is done.
            run_args = {"engine_workers": workers, **({"max_batch_size": 1} if "max_batch_size" in app.args else {})}
            assert app.args == {**original[app.name].args, **run_args}
            assert ("max_batch_size" in app.args) == (app.name in {"diarize", "tts"})
        else:  # separation and translation stay as the file says
            assert deployment.autoscaling_config == before.autoscaling_config
            assert app.args == original[app.name].args
    with pytest.raises(ValueError):
        with_workers(raw, 0)


def test_workers_per_family_size_only_the_families_named():
    from pipeline.serving import with_workers

    raw = yaml.safe_load((CONFIGS / "serve-cpu.yaml").read_text())
    sized = ServeDeploySchema.model_validate(with_workers(raw, {"tts": 2}))
    apps = {app.name: app for app in sized.applications}
    assert apps["tts"].args["engine_workers"] == 2 and apps["tts"].deployments[0].max_ongoing_requests == 2
    assert "engine_workers" not in apps["asr"].args and "engine_workers" not in apps["diarize"].args
    with pytest.raises(ValueError, match="separate"):
        with_workers(raw, {"separate": 2})


def test_engine_workers_are_offered_by_the_per_item_apps_only():
    from pydantic import ValidationError

    from serve_apps.separate.app import SeparateAppArgs
    from serve_apps.tts.app import TtsAppArgs

    assert TtsAppArgs.model_validate({}).engine_workers == 1  # one call at a time unless a run asks for more
    with pytest.raises(ValidationError):
        TtsAppArgs.model_validate({"engine_workers": 0})
    with pytest.raises(ValidationError):
        SeparateAppArgs.model_validate({"engine_workers": 2})
