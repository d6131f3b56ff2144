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


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_parallelism_scales_the_per_item_models_within_the_same_cpu_share(replicas: int) -> None:
    from pipeline.serving import PER_ITEM_FAMILIES, with_replicas

    raw = yaml.safe_load((CONFIGS / "serve-cpu.yaml").read_text())
    scaled = ServeDeploySchema.model_validate(with_replicas(raw, replicas))  # still a valid Serve config
    original = {app.name: app.deployments[0] for app in load("serve-cpu.yaml").applications}
    total = 0.0
    for app in scaled.applications:
        [deployment] = app.deployments
        share = deployment.ray_actor_options.num_cpus
        before = original[app.name]
        if app.name in PER_ITEM_FAMILIES:
            auto = deployment.autoscaling_config
            assert auto["min_replicas"] == auto["initial_replicas"] == auto["max_replicas"] == replicas
            # One item at a time per replica: a request never queues behind another while a replica idles.
            assert deployment.max_ongoing_requests == auto["target_ongoing_requests"] == 1
            assert share == pytest.approx(before.ray_actor_options.num_cpus / replicas, abs=1e-4)
            total += share * replicas
        else:  # separation and translation keep the file's single replica
            assert deployment.autoscaling_config == before.autoscaling_config
            total += share
    assert total <= 1.5 + 1e-3  # every replica still fits on 2 cores next to the pipeline's own tasks
    with pytest.raises(ValueError):
        with_replicas(raw, 0)


def test_replicas_per_family_scale_only_the_families_named():
    from pipeline.serving import with_replicas

    raw = yaml.safe_load((CONFIGS / "serve-cpu.yaml").read_text())
    scaled = ServeDeploySchema.model_validate(with_replicas(raw, {"asr": 1, "diarize": 1, "tts": 2}))
    original = {app.name: app.deployments[0] for app in load("serve-cpu.yaml").applications}
    replicas = {app.name: app.deployments[0].autoscaling_config for app in scaled.applications}
    assert replicas["asr"]["max_replicas"] == replicas["diarize"]["max_replicas"] == 1
    assert replicas["tts"]["min_replicas"] == replicas["tts"]["max_replicas"] == 2
    tts = next(app for app in scaled.applications if app.name == "tts").deployments[0]
    assert tts.ray_actor_options.num_cpus == pytest.approx(original["tts"].ray_actor_options.num_cpus / 2, abs=1e-4)
    assert replicas["translate"] == original["translate"].autoscaling_config
    with pytest.raises(ValueError, match="separate"):
        with_replicas(raw, {"separate": 2})
