"""CoquiEngine on tiny randomly-initialised coqui models built from coqui's own configs and loaded through
coqui's `Synthesizer`, as XTTS v2 is in the quality profile:
- a VITS saved with coqui's trainer (`trainer.io.save_model`: a .pth with the "model" state dict and the config);
- an XTTS (GPT + HiFi-GAN decoder + speaker encoder) laid out as the XTTS-v2 hub directory (config.json,
  model.pth, vocab.json), cloning the voice of a reference clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from octavia.errors import ModelNotAvailableError, UnsupportedLanguageError
from serve_apps.tts.coqui import DEFAULT_VOICE, REFERENCE_VOICE, CoquiEngine
from tests.factories import espeak

SAMPLE_RATE = 16_000
HOP = 64


def build_tiny_vits(directory: Path, *, extra: dict | None = None) -> Path:
    import torch
    from trainer.io import save_model
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    torch.manual_seed(0)
    args = VitsArgs(
        hidden_channels=16,
        hidden_channels_ffn_text_encoder=32,
        num_layers_text_encoder=1,
        dropout_p_text_encoder=0.0,
        out_channels=129,  # fft_size // 2 + 1
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        use_sdp=False,
        resblock_type_decoder="2",
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3]],
        upsample_rates_decoder=[8, 8],  # product == hop_length
        upsample_kernel_sizes_decoder=[16, 16],
        upsample_initial_channel_decoder=32,
        spec_segment_size=8,
        init_discriminator=False,
    )
    config = VitsConfig(
        model_args=args,
        audio=BaseAudioConfig(sample_rate=SAMPLE_RATE, hop_length=HOP, win_length=256, fft_size=256, num_mels=20),
        use_phonemes=False,
        text_cleaner="basic_cleaners",
        phoneme_language="en",
        add_blank=False,
        characters=CharactersConfig(
            characters_class="TTS.tts.models.vits.VitsCharacters",
            pad="_",
            characters="abcdefghijklmnopqrstuvwxyz",
            punctuations=" .,!?'-",
        ),
    )
    model = Vits(config)
    directory.mkdir(parents=True, exist_ok=True)
    save_model(config, model, directory / "model.pth", current_step=0, epoch=0, **(extra or {}))
    config.save_json(str(directory / "config.json"))
    return directory


XTTS_MAX_AUDIO_TOKENS = 16
XTTS_SAMPLES_PER_TOKEN = 1024 / 22_050 * 24_000  # gpt_code_stride_len at 22.05 kHz, decoded at 24 kHz


def build_tiny_xtts(directory: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.models.xtts import Xtts

    directory.mkdir(parents=True, exist_ok=True)
    special = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]", "[es]"]
    vocab = {token: i for i, token in enumerate([*special, *"abcdefghijklmnopqrstuvwxyz.,!?'-áéíóúñ"])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(special)
    tokenizer.save(str(directory / "vocab.json"))
    args = XttsArgs(
        gpt_layers=1,
        gpt_n_model_channels=32,
        gpt_n_heads=2,
        gpt_num_audio_tokens=10,  # 8 codes + start + stop
        gpt_start_audio_token=8,
        gpt_stop_audio_token=9,
        gpt_max_audio_tokens=XTTS_MAX_AUDIO_TOKENS,
        gpt_max_text_tokens=100,
        gpt_max_prompt_tokens=20,
        gpt_number_text_tokens=len(vocab),
        gpt_start_text_token=vocab["[START]"],
        gpt_stop_text_token=vocab["[STOP]"],
        decoder_input_dim=32,
    )
    config = XttsConfig(model_args=args, languages=["en", "es"])
    torch.manual_seed(0)
    model = Xtts(config)
    torch.save({"model": model.state_dict(), "config": config.to_dict()}, directory / "model.pth")
    config.save_json(str(directory / "config.json"))
    return directory


class Unexpected:
    """Not a tensor, not a plain container: a weights-only unpickler must refuse it."""


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_vits(tmp_path_factory.mktemp("tiny-vits"))


@pytest.fixture(scope="module")
def engine(tiny_dir) -> CoquiEngine:
    return CoquiEngine(tiny_dir, device="cpu")


def test_loads_with_weights_only_unpickling(tiny_dir, monkeypatch):
    import torch

    calls = []
    real_load = torch.load

    def spying_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spying_load)
    engine = CoquiEngine(tiny_dir, device="cpu")
    assert calls == [True]
    assert engine.sample_rate == SAMPLE_RATE


def test_refuses_a_checkpoint_that_pickles_arbitrary_objects(tmp_path):
    import pickle

    build_tiny_vits(tmp_path, extra={"payload": Unexpected()})
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        CoquiEngine(tmp_path, device="cpu")


def test_speaks_float_audio_at_the_config_rate_growing_with_text(engine):
    short = engine.synthesize("hello.", "en", DEFAULT_VOICE)
    long = engine.synthesize("hello there, this sentence is a good deal longer than the first one.", "en-US", "default")
    for clip in (short, long):
        assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
        assert clip.sample_rate == SAMPLE_RATE
        assert np.all(np.isfinite(clip.samples))
    # Every character gets at least one spectrogram frame (HOP samples): the random model cannot go below that.
    assert short.num_frames >= len("hello.") * HOP
    assert long.num_frames >= len("hello there, this sentence is a good deal longer than the first one.") * HOP
    assert long.duration > short.duration > 0


def test_speed_scales_phoneme_durations(engine):
    text = "the quick brown fox jumps over the lazy dog"
    normal = engine.synthesize(text, "en", DEFAULT_VOICE)
    slow = engine.synthesize(text, "en", DEFAULT_VOICE, speed=0.5)
    assert slow.duration > 1.5 * normal.duration
    assert engine._synthesizer.tts_model.length_scale == 1.0  # restored after the call


def test_voices_and_errors(engine, tmp_path):
    (voice,) = engine.voices("en")
    assert (voice.id, voice.engine, voice.languages) == (DEFAULT_VOICE, "coqui", ("en",))
    assert not engine.clones
    with pytest.raises(UnsupportedLanguageError, match=r"'fr'.*speaks: en"):
        engine.synthesize("bonjour", "fr", DEFAULT_VOICE)
    with pytest.raises(ValueError, match="default"):
        engine.synthesize("hello", "en", "reference")
    with pytest.raises(ValueError, match="empty"):
        engine.synthesize("  ", "en", DEFAULT_VOICE)
    with pytest.raises(ModelNotAvailableError, match=r"config\.json"):
        CoquiEngine(tmp_path)


@pytest.fixture(scope="module")
def xtts(tmp_path_factory):
    """The tiny XTTS engine, and the weights_only flag of every torch.load its loading made."""
    from unittest import mock

    import torch

    directory = build_tiny_xtts(tmp_path_factory.mktemp("tiny-xtts"))
    with mock.patch.object(torch, "load", wraps=torch.load) as load:
        engine = CoquiEngine(directory, device="cpu")
    return engine, [call.kwargs.get("weights_only") for call in load.call_args_list]


def test_xtts_loads_weights_only_and_offers_cloning(xtts):
    engine, weights_only = xtts
    assert weights_only == [True]
    assert engine.clones and engine.sample_rate == 24_000
    assert engine.languages() == ("en", "es")
    assert [v.id for v in engine.voices("es")] == [REFERENCE_VOICE]
    with pytest.raises(ValueError, match="reference clip"):
        engine.synthesize("hola.", "es", REFERENCE_VOICE)
    with pytest.raises(UnsupportedLanguageError, match="en, es"):
        engine.synthesize("bonjour.", "fr", REFERENCE_VOICE)


def test_xtts_speaks_in_the_voice_of_the_reference(xtts, tmp_path):
    import torch

    engine, _ = xtts
    low = espeak("This is how I sound.", tmp_path / "low.wav", voice="en-us+m3", pitch=20)
    high = espeak("This is how I sound.", tmp_path / "high.wav", voice="en-us+f3", pitch=80)

    def speak(reference, speed=1.0):
        torch.manual_seed(0)  # the random GPT samples its audio codes
        return engine.synthesize("hello there.", "en", REFERENCE_VOICE, reference=reference, speed=speed)

    first, other = speak(low), speak(high)
    assert first.samples.dtype == np.float32 and first.sample_rate == 24_000
    assert 0 < first.num_frames <= (XTTS_MAX_AUDIO_TOKENS + 1) * XTTS_SAMPLES_PER_TOKEN
    # The reference conditions both the GPT and the decoder's speaker embedding: another voice, other audio.
    assert first.num_frames != other.num_frames or not np.allclose(first.samples, other.samples, atol=1e-4)
    # Same codes (same seed and reference) stretched by XTTS's speed setting.
    slow = speak(low, speed=0.5)
    assert slow.num_frames == pytest.approx(2 * first.num_frames, rel=0.05)
