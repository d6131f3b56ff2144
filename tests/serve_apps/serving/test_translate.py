"""The translation app served for real with Apertium: batching across callers, and pairs as multiplexed models."""

from __future__ import annotations

import pytest
import requests

from octavia.errors import UnsupportedLanguagePairError
from octavia.records import Translation, TranslationRequest
from serve_apps.translate.app import build_app
from tests.serve_apps.serving.conftest import TEST_DEPLOYMENT


def requests_of(*texts: str, first_id: int = 0) -> list[TranslationRequest]:
    return [TranslationRequest(segment_id=first_id + i, text=t) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def translator(deploy):  # type: ignore[no-untyped-def]
    # A long batch window so that concurrent calls from this test process surely meet in one batch.
    args = {"profile": "offline", "batch_wait_timeout_s": 0.5, "deployment": TEST_DEPLOYMENT}
    return deploy(build_app(args), "translate")


@pytest.fixture(scope="module")
def per_pair(deploy):  # type: ignore[no-untyped-def]
    args = {"translator": "apertium", "per_pair": True, "max_pairs_per_replica": 1, "deployment": TEST_DEPLOYMENT}
    return deploy(build_app(args), "translate-pairs")


def test_translates_in_order_keeping_ids(translator) -> None:
    batch = requests_of("The house is big.", "", "I have two dogs.", first_id=7)
    out = translator.translate.remote(batch, "en", "es").result()
    assert [t.segment_id for t in out] == [7, 8, 9]
    assert all(isinstance(t, Translation) and (t.source_language, t.target_language) == ("en", "es") for t in out)
    assert "casa" in out[0].text.lower() and out[1].text == "" and "perros" in out[2].text.lower()
    assert ("en", "es") in translator.pairs.remote().result()


def test_concurrent_callers_are_batched_and_each_gets_their_own(translator) -> None:
    calls = [
        (requests_of(f"The house number {n} is big.", "The cat sleeps.", first_id=100 * n), "en", "es")
        if n % 2
        else (requests_of(f"El perro número {n} es grande.", first_id=100 * n), "es", "en")
        for n in range(8)
    ]
    before = translator.stats.remote().result().batches.get("translate", 0)
    responses = [translator.translate.remote(batch, source, target) for batch, source, target in calls]
    for n, ((batch, _, target), response) in enumerate(zip(calls, responses, strict=True)):
        out = response.result()
        assert [t.segment_id for t in out] == [r.segment_id for r in batch]
        assert [t.source_text for t in out] == [r.text for r in batch]
        assert all(t.target_language == target for t in out)
        assert str(n) in out[0].text
        assert ("casa" if target == "es" else "dog") in out[0].text.lower()
    stats = translator.stats.remote().result()
    assert stats.max_batch_size["translate"] > 1
    assert stats.batches["translate"] - before < len(calls)


def test_a_bad_pair_fails_alone_in_its_batch(translator) -> None:
    good = translator.translate.remote(requests_of("The dog runs."), "en", "es")
    bad = translator.translate.remote(requests_of("The dog runs."), "en", "ja")
    assert "perro" in good.result()[0].text.lower()
    with pytest.raises(UnsupportedLanguagePairError) as err:
        bad.result()
    assert "en-es" in err.value.details["available"]


def test_http(translator, cluster) -> None:
    body = {"source": "en", "target": "es", "segments": [{"segment_id": 3, "text": "The red book."}]}
    response = requests.post(f"{cluster.url}/translate", json=body, timeout=30)
    assert response.status_code == 200
    [translation] = [Translation.model_validate(t) for t in response.json()]
    assert translation.segment_id == 3 and "libro" in translation.text.lower()
    assert ["en", "es"] in requests.get(f"{cluster.url}/translate", timeout=10).json()["pairs"]

    response = requests.post(f"{cluster.url}/translate", json={**body, "target": "ja"}, timeout=30)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_language_pair"

    response = requests.post(f"{cluster.url}/translate", json={"source": "en", "segments": [{"text": 1}]}, timeout=30)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "bad_input"
    assert {tuple(e["loc"]) for e in error["details"]["errors"]} >= {("target",), ("segments", "0", "segment_id")}

    response = requests.post(f"{cluster.url}/translate", data=b"{not json", timeout=30)
    assert response.status_code == 422 and response.json()["error"]["code"] == "bad_input"


def test_pairs_are_multiplexed_models_evicted_lru(per_pair, cluster) -> None:
    def call(pair: str, text: str) -> str:
        source, target = pair.split("-")
        handle = per_pair.options(multiplexed_model_id=pair)
        return handle.translate.remote(requests_of(text), source, target).result()[0].text

    assert "casa" in call("en-es", "The house.").lower()
    assert "dog" in call("es-en", "El perro.").lower()
    assert "casa" in call("en-es", "The big house.").lower()
    stats = per_pair.stats.remote().result()
    # One pair fits per replica: en-es was loaded, evicted by es-en, and loaded again.
    assert stats.model_loads == {"en-es": 2, "es-en": 1}
    assert stats.loaded_models == ("en-es",)

    with pytest.raises(ValueError, match="does not match"):
        per_pair.options(multiplexed_model_id="en-es").translate.remote(requests_of("Hi."), "es", "en").result()
    with pytest.raises(UnsupportedLanguagePairError):
        per_pair.options(multiplexed_model_id="en-ja").translate.remote(requests_of("Hi."), "en", "ja").result()

    body = {"source": "es", "target": "en", "segments": [{"segment_id": 0, "text": "El perro."}]}
    headers = {"serve_multiplexed_model_id": "es-en"}
    response = requests.post(f"{cluster.url}/translate-pairs", json=body, headers=headers, timeout=30)
    assert response.status_code == 200 and "dog" in response.json()[0]["text"].lower()
