from __future__ import annotations

import pytest

from octavia.models.store import ModelStore


@pytest.fixture(scope="session")
def model_store() -> ModelStore:
    """The offline model cache `make setup` filled (honours $OCTAVIA_MODEL_DIR)."""
    return ModelStore()
