from __future__ import annotations

import pytest

from tests.serve_apps.tts.helpers import word_error_rate


def test_word_error_rate_counts_edits() -> None:
    assert word_error_rate("The cat sat.", "the cat sat") == 0
    assert word_error_rate("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat", "the big cat sat") == 1.0
    assert word_error_rate("días", "dias") == 1.0
