from __future__ import annotations

import pytest

from octavia.errors import ModelNotAvailableError
from octavia.models.store import ModelStore
from octavia.profiles import OFFLINE
from octavia.records import SpeakerProfile
from serve_apps.tts.engine import load_engine
from serve_apps.tts.voices import assign_voices, voices_for_language


def test_offline_profile_engines_cover_languages_in_preference_order(model_store):
    engines = [load_engine(name, model_store) for name in OFFLINE.tts]
    assert [e.name for e in engines] == ["kokoro", "piper", "espeak-ng"]
    english = voices_for_language("en", engines)
    assert [v.engine for v in english] == ["kokoro"] * 5 + ["piper"] + ["espeak-ng"] * 6
    spanish = voices_for_language("es", engines)
    assert [v.engine for v in spanish] == ["kokoro"] * 5 + ["espeak-ng"] * 6
    assert {v.engine for v in voices_for_language("de", engines)} == {"espeak-ng"}
    # Three men and two women dubbed into Spanish: distinct voices, each of the speaker's gender.
    speakers = [
        SpeakerProfile(speaker=f"S{i}", median_f0_hz=f0, gender=gender, voiced_seconds=10.0)
        for i, (f0, gender) in enumerate([(95, "male"), (120, "male"), (140, "male"), (200, "female"), (260, "female")])
    ]
    by_id = {v.id: v for v in spanish}
    result = assign_voices(speakers, spanish)
    assert len(set(result.voices.values())) == 5 and not result.reused
    assert all(by_id[result.voices[p.speaker]].gender == p.gender for p in speakers)


def test_unknown_or_missing_models_are_named(tmp_path):
    empty_store = ModelStore(tmp_path)  # as on a machine that never downloaded XTTS
    with pytest.raises(ValueError, match="not a TTS model"):
        load_engine("whisper-base", empty_store)
    with pytest.raises(ModelNotAvailableError, match=r"xtts-v2.*models fetch xtts-v2"):
        load_engine("xtts-v2", empty_store)
