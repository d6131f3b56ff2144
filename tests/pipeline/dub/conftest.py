from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.samples import Sample, make_conversation


@pytest.fixture(scope="session")
def conversation(tmp_path_factory) -> Sample:
    """18 s, a man and a woman taking turns over music, H.264 + AAC. Gaps leave room for longer Spanish."""
    return make_conversation(tmp_path_factory.mktemp("media") / "talk.mp4", gap=1.2)


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")
