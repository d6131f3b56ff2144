"""Deployment options, app args and HTTP codecs, without starting Ray."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
from pydantic import ValidationError

from octavia.errors import EmptyMediaError, NoAudioStreamError, NotMediaError, UnsupportedLanguageError
from serve_apps.common.engines import EngineSpec, import_attr
from serve_apps.common.errors import error_body
from serve_apps.common.http import decode_audio, encode_wav
from serve_apps.common.options import DEFAULT_DEPLOYMENT_OPTIONS, deep_merge, deployment_options
from tests.factories import ffmpeg, make_video, tone

FAMILIES = ("asr", "diarize", "separate", "translate", "tts")


def build(family: str, args: dict):  # type: ignore[no-untyped-def]
    return import_attr(f"serve_apps.{family}.app:build_app")(args)


def test_deep_merge_keeps_nested_defaults_and_never_mutates() -> None:
    before = repr(DEFAULT_DEPLOYMENT_OPTIONS)
    merged = deep_merge(DEFAULT_DEPLOYMENT_OPTIONS, {"autoscaling_config": {"max_replicas": 7}})
    assert merged["autoscaling_config"]["max_replicas"] == 7
    assert merged["autoscaling_config"]["min_replicas"] == 1
    assert merged["ray_actor_options"] == {"num_cpus": 0.25}
    assert repr(DEFAULT_DEPLOYMENT_OPTIONS) == before


def test_num_replicas_replaces_autoscaling() -> None:
    options = deployment_options({"max_ongoing_requests": 8}, {"num_replicas": 2})
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["max_ongoing_requests"] == 8


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_with_fractional_cpus_and_autoscaling(family: str) -> None:
    deployment = build(family, {})._bound_deployment
    assert 0 < deployment.ray_actor_options["num_cpus"] < 1
    config = deployment._deployment_config
    assert config.autoscaling_config.min_replicas == 1
    assert config.autoscaling_config.target_ongoing_requests <= config.max_ongoing_requests
    assert config.health_check_period_s == DEFAULT_DEPLOYMENT_OPTIONS["health_check_period_s"]


def test_args_override_the_defaults_and_the_family_options() -> None:
    overrides = {"autoscaling_config": {"max_replicas": 5}, "ray_actor_options": {"num_cpus": 0.5, "num_gpus": 0.25}}
    deployment = build("asr", {"model": "whisper-tiny.en", "deployment": overrides})._bound_deployment
    assert deployment.name == "Transcriber"
    assert deployment.ray_actor_options == {"num_cpus": 0.5, "num_gpus": 0.25}
    assert deployment._deployment_config.autoscaling_config.max_replicas == 5
    assert deployment._deployment_config.max_ongoing_requests == 4  # ASR's own, kept
    [spec] = deployment.init_args
    assert spec.kwargs["model"] == "whisper-tiny.en"


def test_profiles_choose_the_engines() -> None:
    quality = build("translate", {"profile": "quality"})._bound_deployment
    assert quality.init_args[0].factory.endswith(":load_marian") and quality.init_kwargs["per_pair"] is True
    offline = build("translate", {})._bound_deployment
    assert offline.init_args[0].factory.endswith(":load_apertium") and offline.init_kwargs["per_pair"] is False
    diarize = build("diarize", {"profile": "quality"})._bound_deployment
    assert diarize.init_args[0].kwargs["pipeline"] == "pyannote-community-1"
    [engines] = build("tts", {})._bound_deployment.init_args
    assert [e.engine.factory if e.engine else e.name for e in engines] == [
        "serve_apps.tts.app:load_kokoro",
        "piper",
        "serve_apps.tts.espeak:EspeakEngine",
    ]


def test_bad_args_are_refused_at_build_time() -> None:
    with pytest.raises(ValidationError, match="cpu_thread"):
        build("asr", {"cpu_thread": 2})  # typo
    with pytest.raises(ValidationError, match="profile"):
        build("tts", {"profile": "fast"})
    with pytest.raises(ValueError, match="en-es"):
        build("translate", {"profile": "quality", "pair_models": {"english-spanish-x": "dir"}})
    with pytest.raises(TypeError):
        build("separate", {"deployment": {"num_cpu": 1}})  # not a Serve option


def test_engine_spec_imports_and_calls_in_place() -> None:
    spec = EngineSpec(factory="collections:OrderedDict", kwargs={"a": 1})
    assert spec.create(b=2) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="cannot import"):
        import_attr("no_such_module_here:thing")
    with pytest.raises(ValueError, match="no attribute"):
        import_attr("collections:NoSuchThing")


def test_errors_map_to_status_and_shape() -> None:
    status, body = error_body(UnsupportedLanguageError("no xx", details={"language": "xx"}))
    assert status == 422
    assert body == {"error": {"code": "unsupported_language", "message": "no xx", "details": {"language": "xx"}}}
    assert error_body(ValueError("speed"))[0] == 422
    status, body = error_body(RuntimeError("/secret/path exploded"))
    assert status == 500 and "/secret" not in body["error"]["message"]


def test_decode_audio_reads_wav_and_what_only_ffmpeg_reads(tmp_path) -> None:
    clip = tone(1.0, sample_rate=16_000)
    wav = decode_audio(encode_wav(clip))
    assert wav.sample_rate == 16_000 and wav.num_frames == 16_000
    assert np.allclose(wav.samples, clip.samples, atol=1e-3)

    soundfile.write(tmp_path / "tone.wav", clip.samples, 16_000)
    video = make_video(tmp_path / "v.mp4", tmp_path / "tone.wav", seconds=1.0)  # AAC in MP4
    decoded = decode_audio(video.read_bytes())
    assert decoded.channels == 1 and decoded.duration == pytest.approx(1.0, abs=0.1)

    stereo = io.BytesIO()
    soundfile.write(stereo, np.stack([clip.samples, -clip.samples]).T, 16_000, format="FLAC")
    kept = decode_audio(stereo.getvalue(), mono=False)
    assert kept.channels == 2 and np.allclose(kept.samples[1], -kept.samples[0], atol=1e-3)


def test_decode_audio_refuses_what_is_not_audio(tmp_path) -> None:
    with pytest.raises(EmptyMediaError):
        decode_audio(b"")
    with pytest.raises(NotMediaError):
        decode_audio(b"this is plainly not an audio file" * 10)
    silent_video = make_video(tmp_path / "mute.mp4", None, seconds=0.5)
    with pytest.raises(NoAudioStreamError):
        decode_audio(silent_video.read_bytes())
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", str(tmp_path / "empty.wav"))
    with pytest.raises(EmptyMediaError):
        decode_audio((tmp_path / "empty.wav").read_bytes())
