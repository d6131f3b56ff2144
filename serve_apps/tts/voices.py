"""Give every source speaker a dubbing voice that sounds like them, and never the same voice as someone else.

1. `estimate_speaker_profile` measures a speaker's pitch (librosa's pYIN over their voiced frames) and guesses a
   gender from the median f0.
2. `voices_for_language` gathers the voices the engines have for the target language, best engine first.
3. `assign_voices` matches speakers to voices: gender first, then engine preference, then the nearest median f0
   (in semitones), solved for all speakers at once so nobody takes the voice another speaker fits better.
   Distinct voices are used up before any is shared; when there are more speakers than voices the least-used
   voices are shared and the result says which (`VoiceAssignment.shared`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Gender, Record, SpeakerProfile, Voice
from serve_apps.tts.engine import TtsEngine

log = logging.getLogger(__name__)

# Adult speech: men mostly 85-180 Hz, women 165-255 Hz; 165 Hz splits the two with the fewest errors.
GENDER_THRESHOLD_HZ = 165.0
# Less voiced speech than this gives a median f0 too noisy to guess a gender from.
MIN_VOICED_SECONDS = 1.0
F0_MIN_HZ = 60.0
F0_MAX_HZ = 500.0
_PITCH_SAMPLE_RATE = 16_000
# 32 ms at 16 kHz. pYIN's Viterbi pass costs frames x pitch states^2 and runs in the dub's serial part (2.9 s per
# speaker's 30 s at 16 ms); at 32 ms it takes 1.45 s, with the same 10/50/90th percentiles within ~2 Hz.
_HOP = 512

# Assignment costs, lexicographic: a gender mismatch outweighs any engine preference, which outweighs any f0
# distance (semitones, at most ~40 between 60 and 500 Hz).
_GENDER_COST = 1e6
_UNKNOWN_GENDER_COST = 1e5  # a speaker of known gender on a voice whose gender nobody recorded
_ENGINE_COST = 1e3
_UNKNOWN_F0_SEMITONES = 6.0
_REUSE_COST = 1e9  # per extra speaker already on a voice: spend distinct voices first, then the least-used
_TYPICAL_F0_HZ = {"male": 120.0, "female": 210.0, "unknown": GENDER_THRESHOLD_HZ}

# The sentence each offline voice spoke when its median f0 constant was measured (`measure_voice`).
MEASURE_TEXT = "The rainbow is a division of white light into many beautiful colors, seen after the rain."


@dataclass(frozen=True)
class PitchStats:
    median_hz: float | None
    low_hz: float | None  # 10th percentile
    high_hz: float | None  # 90th percentile
    voiced_seconds: float


def measure_pitch(audio: AudioClip, *, max_seconds: float = 60.0) -> PitchStats:
    """Fundamental frequency statistics of the voiced frames of `audio` (pYIN; only the first `max_seconds`)."""
    import librosa

    clip = audio.mono().resample(_PITCH_SAMPLE_RATE)
    samples = clip.samples[: int(max_seconds * _PITCH_SAMPLE_RATE)]
    if samples.size < 2048:
        return PitchStats(None, None, None, 0.0)
    f0, voiced, _ = librosa.pyin(
        samples.astype(np.float32),
        fmin=F0_MIN_HZ,
        fmax=F0_MAX_HZ,
        sr=_PITCH_SAMPLE_RATE,
        frame_length=2048,
        hop_length=_HOP,
    )
    f0 = f0[voiced & np.isfinite(f0)]
    voiced_seconds = round(f0.size * _HOP / _PITCH_SAMPLE_RATE, 3)
    if f0.size == 0:
        return PitchStats(None, None, None, 0.0)
    low, median, high = (round(float(x), 1) for x in np.percentile(f0, [10, 50, 90]))
    return PitchStats(median, low, high, voiced_seconds)


def import_pitch_tracker() -> None:
    """Import librosa's pYIN (numba, scipy.signal: ~3 CPU-s, lazily loaded on first attribute access), so that a
    caller can pay it while it waits on something else rather than in its first `measure_pitch`."""
    import librosa

    _ = librosa.pyin


def compile_pitch_tracker() -> None:
    """Run pYIN once on a tone. librosa's pYIN is numba code, compiled on first use and cached on disk: ~22 s of
    a fresh install's first dub on 2 cores (its "speaker profiles" step: 26.0 s, then 3.7 s). `make setup` runs
    this so that no dub pays it."""
    seconds = 1.0
    t = np.arange(round(seconds * _PITCH_SAMPLE_RATE)) / _PITCH_SAMPLE_RATE
    measure_pitch(AudioClip((0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32), _PITCH_SAMPLE_RATE))


def measure_voice(engine: TtsEngine, voice: str, language: str = "en") -> PitchStats:
    """How we measured the `median_f0_hz` constants of the offline voices (`python -m serve_apps.tts.measure`)."""
    return measure_pitch(engine.synthesize(MEASURE_TEXT, language, voice))


def gender_from_f0(median_hz: float | None, voiced_seconds: float) -> Gender:
    if median_hz is None or voiced_seconds < MIN_VOICED_SECONDS:
        return "unknown"
    return "male" if median_hz < GENDER_THRESHOLD_HZ else "female"


def estimate_speaker_profile(speaker: str, audio: AudioClip) -> SpeakerProfile:
    """Pitch range and a gender guess for one speaker, from their (concatenated) speech."""
    stats = measure_pitch(audio)
    return SpeakerProfile(
        speaker=speaker,
        median_f0_hz=stats.median_hz,
        f0_low_hz=stats.low_hz,
        f0_high_hz=stats.high_hz,
        gender=gender_from_f0(stats.median_hz, stats.voiced_seconds),
        voiced_seconds=stats.voiced_seconds,
    )


def voices_for_language(language: str, engines: Sequence[TtsEngine]) -> tuple[Voice, ...]:
    """Every voice that can speak `language`, engines in the order given (best first).

    With the offline profile's order (Kokoro, Piper, espeak-ng) English gets Kokoro's five voices, Piper's Joe and
    espeak's variants; Spanish, French, Italian and Portuguese get Kokoro then espeak; other languages espeak only.
    """
    found: list[Voice] = []
    for engine in engines:
        if engine.supports(language):
            found.extend(engine.voices(language))
    return tuple(found)


class VoiceAssignment(Record):
    """Which voice (id) speaks for each source speaker."""

    voices: dict[str, str]
    # Voice ids given to more than one speaker: only when there were more speakers than voices.
    shared: tuple[str, ...] = ()

    @property
    def reused(self) -> bool:
        return bool(self.shared)


def _semitones(a_hz: float, b_hz: float) -> float:
    return abs(12.0 * math.log2(a_hz / b_hz))


def _match_cost(profile: SpeakerProfile, voice: Voice, engine_rank: int) -> float:
    cost = engine_rank * _ENGINE_COST
    if profile.gender != "unknown":
        if voice.gender == "unknown":
            cost += _UNKNOWN_GENDER_COST
        elif voice.gender != profile.gender:
            cost += _GENDER_COST
    speaker_f0 = profile.median_f0_hz or _TYPICAL_F0_HZ[profile.gender]
    cost += _semitones(speaker_f0, voice.median_f0_hz) if voice.median_f0_hz else _UNKNOWN_F0_SEMITONES
    return cost


def assign_voices(profiles: Sequence[SpeakerProfile], voices: Sequence[Voice]) -> VoiceAssignment:
    """Match speakers to voices (ordered best engine first); deterministic for the same inputs.

    Solved as one assignment problem (Hungarian algorithm) over the speakers and k copies of each voice, the
    i-th copy costing i * _REUSE_COST more: so a voice only gets a second speaker once every voice has one.
    """
    from scipy.optimize import linear_sum_assignment

    if not voices:
        raise ValueError("no voices to assign: the engines have none for this language")
    ids = [v.id for v in voices]
    if len(set(ids)) != len(ids):
        duplicated = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise ValueError(f"voice ids must be unique across engines, these repeat: {', '.join(duplicated)}")
    speakers = sorted(profiles, key=lambda p: p.speaker)  # input order must not change the result
    if len({p.speaker for p in speakers}) != len(speakers):
        raise ValueError("each speaker must have one profile")
    if not speakers:
        return VoiceAssignment(voices={})

    engine_rank = {e: i for i, e in enumerate(dict.fromkeys(v.engine for v in voices))}
    base = np.array([[_match_cost(p, v, engine_rank[v.engine]) for v in voices] for p in speakers])
    copies = math.ceil(len(speakers) / len(voices))
    cost = np.hstack([base + i * _REUSE_COST for i in range(copies)])
    rows, cols = linear_sum_assignment(cost)
    chosen = {speakers[r].speaker: voices[c % len(voices)].id for r, c in zip(rows, cols, strict=True)}
    shared = tuple(sorted(v for v, n in Counter(chosen.values()).items() if n > 1))
    if shared:
        log.warning("%d speakers but only %d voices: sharing %s", len(speakers), len(voices), ", ".join(shared))
    return VoiceAssignment(voices=dict(sorted(chosen.items())), shared=shared)
