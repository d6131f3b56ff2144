from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octavia.audio import AudioClip
from octavia.errors import UnsupportedLanguageError
from octavia.records import SpeakerProfile, Voice
from serve_apps.tts.engine import TtsEngine
from serve_apps.tts.espeak import EspeakEngine
from serve_apps.tts.voices import VoiceAssignment, assign_voices, estimate_speaker_profile, voices_for_language
from tests.factories import concat, tone

# The offline English voices as their engines describe them (no model needed for assignment logic).
KOKORO = tuple(
    Voice(id=i, engine="kokoro", languages=("en",), gender=g, median_f0_hz=f)
    for i, g, f in (
        ("jf_alpha", "female", 272.5),
        ("jf_gongitsune", "female", 229.2),
        ("jf_nezumi", "female", 238.6),
        ("jf_tebukuro", "female", 322.2),
        ("jm_kumo", "male", 93.1),
    )
)
JOE = Voice(id="en_US-joe-medium", engine="piper", languages=("en",), gender="male", median_f0_hz=82.9)
ESPEAK_M3 = Voice(id="m3-p70", engine="espeak-ng", languages=("en",), gender="male", median_f0_hz=127.9)


def profile(speaker: str, f0: float | None, gender: str = "unknown") -> SpeakerProfile:
    return SpeakerProfile(speaker=speaker, median_f0_hz=f0, gender=gender, voiced_seconds=5.0)


MALE = profile("SPEAKER_00", 110.0, "male")
FEMALE = profile("SPEAKER_01", 210.0, "female")


class FakeEngine(TtsEngine):
    def __init__(self, name: str, voices: tuple[Voice, ...]) -> None:
        self.name = name
        self._voices = voices

    def voices(self, language=None):
        if language is not None and not any(language in v.languages for v in self._voices):
            raise UnsupportedLanguageError(f"{self.name} cannot speak {language}")
        return self._voices

    def synthesize(self, text, language, voice, *, speed=1.0, reference=None):
        raise NotImplementedError


def test_profile_of_a_low_voice_is_male_with_its_pitch_range():
    # A tone gliding 100 -> 120 Hz: pYIN must follow it and report the range.
    clip = concat(*(tone(0.25, f, amplitude=0.5) for f in range(100, 121, 2)))
    result = estimate_speaker_profile("SPEAKER_00", clip)
    assert result.speaker == "SPEAKER_00"
    assert result.gender == "male"
    assert result.median_f0_hz == pytest.approx(110, abs=3)
    assert result.f0_low_hz == pytest.approx(102, abs=3)
    assert result.f0_high_hz == pytest.approx(118, abs=3)
    assert result.voiced_seconds == pytest.approx(clip.duration, abs=0.3)


def test_profile_of_espeak_voices_tells_male_from_female():
    espeak = EspeakEngine()
    text = "Good evening, and welcome to the news at ten."
    male = estimate_speaker_profile("a", espeak.synthesize(text, "en", "m3"))
    female = estimate_speaker_profile("b", espeak.synthesize(text, "en", "f5-p70"))
    assert (male.gender, female.gender) == ("male", "female")
    assert male.f0_low_hz < male.median_f0_hz < male.f0_high_hz < female.median_f0_hz


def test_too_little_voiced_audio_leaves_gender_unknown():
    short = estimate_speaker_profile("x", tone(0.4, 220))
    assert short.gender == "unknown" and short.median_f0_hz == pytest.approx(220, abs=3)
    silent = estimate_speaker_profile("y", AudioClip.silence(3.0, 16_000))
    assert (silent.gender, silent.median_f0_hz, silent.voiced_seconds) == ("unknown", None, 0.0)


def test_male_and_female_get_different_voices_of_their_gender():
    result = assign_voices([FEMALE, MALE], KOKORO)
    assert result.voices == {"SPEAKER_00": "jm_kumo", "SPEAKER_01": "jf_gongitsune"}  # nearest f0 of each gender
    assert not result.reused


def test_second_male_goes_to_the_next_engine_before_a_female_voice_or_sharing():
    second = profile("SPEAKER_02", 95.0, "male")
    result = assign_voices([MALE, second], (*KOKORO, JOE, ESPEAK_M3))
    # Kokoro and Piper beat espeak, though espeak's m3-p70 is nearer in pitch to SPEAKER_00.
    assert set(result.voices.values()) == {"jm_kumo", "en_US-joe-medium"}


def test_more_speakers_than_voices_shares_the_least_used_and_says_so(caplog):
    voices = (KOKORO[1], KOKORO[4])  # one female, one male
    speakers = [MALE, FEMALE, profile("SPEAKER_02", 220.0, "female")]
    result = assign_voices(speakers, voices)
    assert set(result.voices) == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    assert set(result.voices.values()) == {"jf_gongitsune", "jm_kumo"}
    assert result.voices["SPEAKER_00"] == "jm_kumo"
    assert result.reused and result.shared == ("jf_gongitsune",)
    assert "sharing jf_gongitsune" in caplog.text
    assert VoiceAssignment.model_validate_json(result.model_dump_json()) == result


def test_assignment_is_deterministic_whatever_the_input_order():
    speakers = [
        profile(f"S{i}", f, g)
        for i, (f, g) in enumerate(
            [(100, "male"), (230, "female"), (None, "unknown"), (150, "male"), (300, "female"), (180, "female")]
        )
    ]
    expected = assign_voices(speakers, (*KOKORO, JOE))
    for seed in range(5):
        shuffled = speakers[:]
        random.Random(seed).shuffle(shuffled)
        assert assign_voices(shuffled, (*KOKORO, JOE)) == expected
    assert len(set(expected.voices.values())) == 6


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.floats(70, 350)), st.sampled_from(["male", "female", "unknown"])),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.tuples(st.floats(70, 350), st.sampled_from(["male", "female", "unknown"])), min_size=1, max_size=8),
)
def test_never_shares_a_voice_while_distinct_ones_remain(speaker_specs, voice_specs):
    speakers = [profile(f"S{i}", f, g) for i, (f, g) in enumerate(speaker_specs)]
    voices = [
        Voice(id=f"v{i}", engine="e", languages=("en",), gender=g, median_f0_hz=f)
        for i, (f, g) in enumerate(voice_specs)
    ]
    result = assign_voices(speakers, voices)
    uses = [list(result.voices.values()).count(v.id) for v in voices]
    assert sum(uses) == len(speakers)
    assert max(uses) - min(uses) <= 1  # spread evenly: a second speaker only once every voice has one
    assert result.reused == (len(speakers) > len(voices))


def test_voices_for_language_follows_the_engine_preference():
    kokoro = FakeEngine("kokoro", KOKORO)
    piper = FakeEngine("piper", (JOE,))
    espeak = EspeakEngine()
    english = voices_for_language("en", [kokoro, piper, espeak])
    assert [v.engine for v in english][:6] == ["kokoro"] * 5 + ["piper"]
    assert {v.engine for v in english[6:]} == {"espeak-ng"}
    german = voices_for_language("de", [kokoro, piper, espeak])
    assert german and {v.engine for v in german} == {"espeak-ng"}
    assert voices_for_language("tlh", [kokoro, piper, espeak]) == ()


def test_bad_inputs():
    with pytest.raises(ValueError, match="no voices"):
        assign_voices([MALE], [])
    with pytest.raises(ValueError, match="jm_kumo"):
        assign_voices([MALE], [KOKORO[4], KOKORO[4]])
    with pytest.raises(ValueError, match="one profile"):
        assign_voices([MALE, MALE], KOKORO)
    assert assign_voices([], KOKORO).voices == {}
