"""MarianEngine with a tiny randomly-initialised Marian model and tokenizer saved by transformers."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from octavia.errors import UnsupportedLanguagePairError
from octavia.models.store import ModelStore
from octavia.records import TranslationRequest
from serve_apps.translate.marian import MarianEngine, default_models

VOCABULARY = "the house is big small red dog cat runs sleeps on sofa and a I like we have two three"


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = tmp_path_factory.mktemp("marian")
    rng = random.Random(0)
    words = VOCABULARY.split()
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(300)))
    for side in ("source", "target"):
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(work / side),
            vocab_size=40,
            hard_vocab_limit=False,
            unk_id=0,
            eos_id=1,
            bos_id=-1,
            pad_id=-1,
            minloglevel=2,
        )
        (work / f"{side}.model").rename(work / f"{side}.spm")
    sp = spm.SentencePieceProcessor(model_file=str(work / "source.spm"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    for token in ("<pad>", ">>es<<", ">>pt<<"):  # target tokens as in the multi-target opus-mt models
        vocab[token] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab))

    tokenizer = MarianTokenizer(str(work / "source.spm"), str(work / "target.spm"), str(work / "vocab.json"))
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
    )
    model_dir = work / "opus-mt-tiny-en-ROMANCE"
    torch.manual_seed(0)
    tokenizer.save_pretrained(model_dir)
    MarianMTModel(config).save_pretrained(model_dir)
    return model_dir


def test_a_batch_keeps_its_segment_ids_and_order(tiny_marian) -> None:
    engine = MarianEngine({("en", "es"): tiny_marian}, batch_size=2, max_new_tokens=6, device="cpu")
    texts = ["the house is big", "I like the red dog", "we have two cats and a sofa"]
    batch = [TranslationRequest(segment_id=i, text=t) for i, t in zip([7, 3, 11], texts, strict=True)]
    out = engine.translate(batch, "en", "es")

    assert [t.segment_id for t in out] == [7, 3, 11]
    assert [t.source_text for t in out] == texts
    assert all(t.source_language == "en" and t.target_language == "es" for t in out)
    assert all(isinstance(t.text, str) and t.text for t in out)  # random weights (seeded): words, not meaning


def test_empty_segments_stay_empty_and_unknown_pairs_are_named(tiny_marian) -> None:
    engine = MarianEngine({("en", "es"): tiny_marian}, max_new_tokens=4)
    out = engine.translate([TranslationRequest(segment_id=1, text="  ")], "en", "es")
    assert out[0].text == ""

    with pytest.raises(UnsupportedLanguagePairError, match="available pairs: en->es"):
        engine.translate([TranslationRequest(segment_id=1, text="the dog")], "en", "ja")


def test_a_multi_target_model_needs_the_target_token(tiny_marian) -> None:
    engine = MarianEngine({("en", "pt"): tiny_marian, ("en", "ja"): tiny_marian}, max_new_tokens=4)
    assert engine.translate([TranslationRequest(segment_id=4, text="the cat")], "en", "pt")[0].segment_id == 4
    with pytest.raises(UnsupportedLanguagePairError, match=">>ja<<"):
        engine.translate([TranslationRequest(segment_id=1, text="the dog")], "en", "ja")


def test_default_pairs_come_from_the_catalogue() -> None:
    models = default_models()
    assert models[("en", "es")] == "opus-mt-en-es"
    assert models[("en", "pt")] == "opus-mt-en-ROMANCE"
    assert ("en", "ROMANCE") not in models


def test_a_catalogue_model_is_fetched_into_the_store_on_first_use(tiny_marian, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    downloads = []

    def fake_snapshot_download(repo_id: str, revision: str, local_dir: str) -> str:
        downloads.append(repo_id)
        shutil.copytree(tiny_marian, local_dir, dirs_exist_ok=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    store = ModelStore(root=tmp_path)
    engine = MarianEngine(store=store, max_new_tokens=4)
    assert ("en", "pt") in engine.pairs() and ("en", "es") in engine.pairs()

    out = engine.translate([TranslationRequest(segment_id=2, text="the red house")], "en", "es")
    assert [(t.segment_id, t.target_language) for t in out] == [(2, "es")]
    assert downloads == ["Helsinki-NLP/opus-mt-en-es"]
    assert store.status("opus-mt-en-es").ok  # pinned by the store, so the next start loads offline
