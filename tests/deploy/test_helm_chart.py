"""The Helm chart, rendered by Helm's own Go SDK (helm-python-sdk) and checked without a cluster: the RayService
against KubeRay's CRD schema (../shared/k8s-crds), everything else against Kubernetes' schemas
(kubernetes-validate), the Serve config embedded unchanged, token auth wired, secrets required in production."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "k8s" / "octavia"
CRDS = ROOT.parent / "shared" / "k8s-crds"
KUBE_VERSION = "1.30.0"
PRODUCTION = {"controlPlane": {"secrets": {"databaseUrl": "postgresql+psycopg://octavia:pw@db:5432/octavia",
                                           "jwtSecret": "j" * 48}}}  # fmt: skip


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        files = chart.render(merged(PRODUCTION, values or {}), name="dub", namespace="media")
    return [doc for name, text in files.items() if name.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc]


def one(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


@pytest.fixture(scope="module")
def rayservice_schema() -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / "ray.io_rayservices.yaml").read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("name", ["serve-cpu.yaml", "serve-gpu.yaml"])
def test_the_chart_carries_the_serve_config_files_unchanged(name):
    assert (CHART / "files" / name).read_bytes() == (ROOT / "serve_apps" / "configs" / name).read_bytes(), (
        f"copy serve_apps/configs/{name} to deploy/k8s/octavia/files/"
    )


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_resource_is_valid(profile, rayservice_schema):
    values = {"serve": {"profile": profile}, "storage": {"models": {"enabled": profile == "gpu"}}}
    if profile == "gpu":
        values["ray"] = {"workers": [{"name": "gpu", "replicas": 1, "minReplicas": 1, "maxReplicas": 2, "gpus": 1,
                                      "resources": {"limits": {"cpu": "8", "memory": "32Gi"}}}]}  # fmt: skip
    docs = render(values)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        ["RayService", "Deployment", "Service", "Secret", "Secret", "PersistentVolumeClaim"]
        + (["PersistentVolumeClaim"] if profile == "gpu" else [])
    )
    for doc in docs:
        if doc["kind"] == "RayService":
            jsonschema.validate(doc, rayservice_schema)
        else:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    service = one(docs, "RayService")
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert config == yaml.safe_load((ROOT / "serve_apps" / "configs" / f"serve-{profile}.yaml").read_text())
    if profile == "gpu":
        worker = service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]
        assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert worker["initContainers"][0]["command"][:3] == ["octavia", "models", "fetch"]


def test_the_embedded_config_is_one_serve_deploys(tmp_path):
    from ray.serve.schema import ServeDeploySchema

    service = one(render(), "RayService")
    schema = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert {app.name for app in schema.applications} == {"asr", "diarize", "separate", "translate", "tts"}


def test_token_auth_reaches_ray_and_the_control_plane():
    docs = render({"ray": {"auth": {"token": "t" * 40}}})
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    secret = one(docs, "Secret", "-ray-auth")
    assert cluster["authOptions"] == {"mode": "token", "secretName": secret["metadata"]["name"]}
    assert base64.b64decode(secret["data"]["auth_token"]).decode() == "t" * 40
    env = {e["name"]: e for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"],
                                                                   "key": "auth_token"}  # fmt: skip
    assert env["OCTAVIA_RAY_ADDRESS"]["value"] == "http://dub-octavia-head-svc.media.svc:8265"
    assert env["OCTAVIA_INTERNAL_URL"]["value"] == "http://dub-octavia-api.media.svc:8001"


def test_a_random_ray_token_when_none_is_given():
    secret = one(render(), "Secret", "-ray-auth")
    assert len(base64.b64decode(secret["data"]["auth_token"])) == 48


def test_auth_off_leaves_no_token_anywhere():
    docs = render({"ray": {"auth": {"enabled": False}}})
    assert "authOptions" not in one(docs, "RayService")["spec"]["rayClusterConfig"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-ray-auth")]
    env = {e["name"] for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "RAY_AUTH_TOKEN" not in env


def test_ray_pods_and_the_api_share_the_data_volume():
    docs = render()
    claim = one(docs, "PersistentVolumeClaim")["metadata"]["name"]
    cluster = one(docs, "RayService")["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]["spec"], *(w["template"]["spec"] for w in cluster["workerGroupSpecs"])]
    pods.append(one(docs, "Deployment")["spec"]["template"]["spec"])
    for pod in pods:
        assert {"name": "data", "persistentVolumeClaim": {"claimName": claim}} in pod["volumes"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["OCTAVIA_DATA_DIR"] == "/data"
        assert (env["OCTAVIA_ARTIFACT_DIR"], env["OCTAVIA_ARTIFACT_MAX_SIZE"]) == ("/data/artifacts", "50G")


def test_the_artifact_cache_cap_can_be_lifted():
    head = one(render({"storage": {"data": {"artifactMaxSize": ""}}}), "RayService")["spec"]["rayClusterConfig"]
    env = {e["name"] for e in head["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]}
    assert "OCTAVIA_ARTIFACT_DIR" in env and "OCTAVIA_ARTIFACT_MAX_SIZE" not in env


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"databaseUrl": ""}, "databaseUrl is required"),
        ({"jwtSecret": "changeme"}, "jwtSecret must be at least 32 characters"),
    ],
)
def test_production_refuses_missing_or_weak_secrets(secrets, message):
    with pytest.raises(helm.HelmError, match=message):
        render({"controlPlane": {"secrets": secrets}})


def test_an_existing_secret_replaces_the_chart_made_one():
    docs = render({"controlPlane": {"secrets": {"existingSecret": "octavia-prod", "databaseUrl": "", "jwtSecret": ""}}})
    assert not [d for d in docs if d["metadata"]["name"].endswith("-app")]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "octavia-prod"}}]


def test_unknown_profile_is_refused():
    with pytest.raises(helm.HelmError, match=r"serve\.profile must be cpu or gpu"):
        render({"serve": {"profile": "tpu"}})


def test_helm_lint_finds_no_errors():
    report = helm.lint(str(CHART), PRODUCTION, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
