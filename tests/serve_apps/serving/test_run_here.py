"""`run_config_here`: a run's own cluster gets a Serve config file's applications built in the driver, with the
options the file gives them (sized by `with_workers`), over the code defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serve_apps.common.options import DEFAULT_DEPLOYMENT_OPTIONS
from tests.serve_apps.serving.conftest import ROOT, ServeCluster

CONFIG = ROOT / "serve_apps" / "configs" / "serve-cpu.yaml"


def deployed_configs() -> dict[str, dict]:  # type: ignore[type-arg]
    from ray.serve.context import _get_global_client

    details = _get_global_client().get_serve_details()
    return {
        name: {**deployment["deployment_config"], "route_prefix": app["route_prefix"]}
        for name, app in details["applications"].items()
        for deployment in app["deployments"].values()
    }


def test_applications_run_with_the_files_options_sized_for_the_run(cluster: ServeCluster) -> None:
    from ray import serve

    from pipeline.clients import SERVE_DEPLOYMENTS
    from pipeline.serving import run_config_here, with_workers

    families = {"translate", "diarize"}
    assert run_config_here(CONFIG, families, workers=2) == {"translate": "translate", "diarize": "diarize"}
    try:
        sized = {app["name"]: app for app in with_workers(yaml.safe_load(CONFIG.read_text()), 2)["applications"]}
        configs = deployed_configs()
        for family in families:
            [entry] = sized[family]["deployments"]
            got = configs[family]
            assert got["name"] == SERVE_DEPLOYMENTS[family][1]
            assert got["max_ongoing_requests"] == entry["max_ongoing_requests"]
            for key, value in entry["autoscaling_config"].items():
                assert got["autoscaling_config"][key] == value, (family, key)
            assert got["ray_actor_options"]["num_cpus"] == entry["ray_actor_options"]["num_cpus"]
            # What the file leaves out comes from the code's defaults, as with `serve deploy`.
            assert got["health_check_timeout_s"] == DEFAULT_DEPLOYMENT_OPTIONS["health_check_timeout_s"]
            assert got["route_prefix"] is None  # called through handles only
        # Sized for two callers: the per-item model takes two requests, translation keeps the file's numbers.
        assert configs["diarize"]["max_ongoing_requests"] == 2
        assert configs["translate"]["max_ongoing_requests"] == 32
        handle = serve.get_deployment_handle(SERVE_DEPLOYMENTS["translate"][1], app_name="translate")
        assert ("en", "es") in {tuple(pair) for pair in handle.pairs.remote().result()}
    finally:
        for family in families:
            serve.delete(family)


@pytest.mark.parametrize("name", ["serve-cpu.yaml", "serve-gpu.yaml"])
def test_every_application_of_both_shipped_files_builds_here(name: str) -> None:
    """Deployment names, options and args of both files are what `build_app` and Serve accept (no cluster needed:
    the quality profile's models are not loaded until a replica starts)."""
    from ray.serve import Application

    from pipeline.serving import built_here

    config = CONFIG.parent / name
    families = {app["name"] for app in yaml.safe_load(config.read_text())["applications"]}
    targets = built_here(config, families, workers=2)
    assert sorted(t.name for t in targets) == sorted(families) == ["asr", "diarize", "separate", "translate", "tts"]
    assert all(isinstance(t.target, Application) and t.route_prefix is None for t in targets)


def write_config(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(CONFIG.read_text())
    change(next(app for app in raw["applications"] if app["name"] == "translate"))
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_refuses_what_an_application_built_here_cannot_honour(tmp_path: Path) -> None:
    from octavia.errors import ModelError
    from pipeline.serving import run_config_here

    def runtime_env(app) -> None:  # type: ignore[no-untyped-def]
        app["runtime_env"] = {"env_vars": {"A": "1"}}

    def unknown_deployment(app) -> None:  # type: ignore[no-untyped-def]
        app["deployments"][0]["name"] = "Translater"

    with pytest.raises(ValueError, match="runtime_env"):
        run_config_here(write_config(tmp_path, runtime_env), {"translate"}, workers=1)
    with pytest.raises(ValueError, match="no deployment 'Translater'"):
        run_config_here(write_config(tmp_path, unknown_deployment), {"translate"}, workers=1)
    with pytest.raises(ModelError, match="no application"):
        run_config_here(CONFIG, {"lipsync"}, workers=1)


def test_a_cluster_gets_the_whole_file_and_keeps_what_a_run_does_not_call(cluster: ServeCluster, tmp_path) -> None:
    """`--deploy` onto a shared cluster: a run that calls only `translate` must not remove the file's other
    applications (Serve's declarative deploy removes what the config does not name)."""
    from ray import serve

    from pipeline.serving import deploy_config

    raw = yaml.safe_load(CONFIG.read_text())
    [translate] = [app for app in raw["applications"] if app["name"] == "translate"]
    copy = {**translate, "name": "translate-copy", "route_prefix": "/translate-copy"}
    raw["applications"] = [translate, copy]
    for app in raw["applications"]:
        app["deployments"][0]["graceful_shutdown_timeout_s"] = 2.0
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(raw))
    try:
        assert deploy_config(path, {"translate"}) == {"translate": "translate"}
        assert deploy_config(path, {"translate-copy"}) == {"translate-copy": "translate-copy"}
        statuses = serve.status().applications
        assert statuses["translate"].status == statuses["translate-copy"].status == "RUNNING"
        assert deployed_configs()["translate-copy"]["route_prefix"] == "/translate-copy"  # the file's, served
    finally:
        for name in ("translate", "translate-copy"):
            serve.delete(name)
