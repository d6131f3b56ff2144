from __future__ import annotations

import numpy as np
import pytest

from octavia.audio import MAX_GAIN, QUIET_PEAK, RAISED_PEAK, AudioClip, quiet_gain


def test_quiet_audio_is_raised_to_the_raised_peak_and_normal_audio_left_alone():
    quiet = np.array([0.001, -0.004, 0.002], np.float32)  # -48 dBFS peak
    assert quiet_gain(quiet) == pytest.approx(RAISED_PEAK / 0.004)
    assert np.abs(AudioClip(quiet, 16_000).scaled(quiet_gain(quiet)).samples).max() == pytest.approx(RAISED_PEAK)
    assert quiet_gain(np.array([0.0, QUIET_PEAK, -0.05], np.float32)) == 1.0
    assert quiet_gain(np.full((2, 8), -0.9, np.float32)) == 1.0


def test_near_silence_is_not_made_loud_and_silence_stays_silent():
    assert quiet_gain(np.full(1600, 1e-6, np.float32)) == MAX_GAIN  # -120 dBFS comes up to -60 dBFS, no more
    assert quiet_gain(np.zeros(10, np.float32)) == 1.0
    assert quiet_gain(np.zeros(0, np.float32)) == 1.0
