from __future__ import annotations

import numpy as np

from octavia.audio import AudioClip
from serve_apps.separate.engine import PassthroughEngine, create_separation_engine


def test_passthrough_keeps_the_original_in_both_stems() -> None:
    rng = np.random.default_rng(0)
    clip = AudioClip(rng.uniform(-0.5, 0.5, (2, 16_000)).astype(np.float32), 16_000)
    stems = PassthroughEngine().separate(clip)

    np.testing.assert_array_equal(stems.background.samples, clip.samples)
    np.testing.assert_array_equal(stems.vocals.samples, clip.samples)
    assert stems.background.sample_rate == stems.vocals.sample_rate == 16_000


def test_profile_value_none_maps_to_passthrough() -> None:
    assert isinstance(create_separation_engine("none"), PassthroughEngine)
