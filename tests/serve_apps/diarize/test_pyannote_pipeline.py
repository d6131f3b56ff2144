"""The quality-profile diarizer, run through pyannote's real `Pipeline.from_pretrained` on a tiny local pipeline.

community-1 itself is gated on the hub (unreachable here): the directory built below has its layout (config.yaml,
segmentation/, embedding/, plda/) with tiny random models saved in pyannote's checkpoint format.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

from octavia.audio import AudioClip
from octavia.errors import ModelIntegrityError, ModelNotAvailableError
from serve_apps.diarize.pyannote_pipeline import PyannotePipelineDiarizer, diarization_from_annotation
from tests.serve_apps.diarize.conftest import save_tiny_pyannote_model, tiny_pyannet

EMBEDDING_DIMENSION = 16
LDA_DIMENSION = 8


def build_tiny_pipeline(root):
    import torch

    from serve_apps.diarize.pyannote_pipeline import import_pyannote_audio

    import_pyannote_audio()
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC

    save_tiny_pyannote_model(tiny_pyannet(window=5.0), root / "segmentation" / "pytorch_model.bin")
    torch.manual_seed(0)
    embedding = XVectorMFCC(mfcc={"n_mfcc": 20}, dimension=EMBEDDING_DIMENSION)
    embedding.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=5.0)
    save_tiny_pyannote_model(embedding.eval(), root / "embedding" / "pytorch_model.bin")
    (root / "plda").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        root / "plda" / "xvec_transform.npz",
        mean1=np.zeros(EMBEDDING_DIMENSION),
        mean2=np.zeros(LDA_DIMENSION),
        lda=rng.standard_normal((EMBEDDING_DIMENSION, LDA_DIMENSION)),
    )
    plda = {"mu": np.zeros(LDA_DIMENSION), "tr": np.eye(LDA_DIMENSION), "psi": np.linspace(2.0, 1.0, LDA_DIMENSION)}
    np.savez(root / "plda" / "plda.npz", **plda)
    config = {
        "dependencies": {"pyannote.audio": "4.0.0"},
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": "$model/segmentation",
                "embedding": "$model/embedding",
                "plda": "$model/plda",
                "clustering": "AgglomerativeClustering",
                "segmentation_step": 0.5,
                "embedding_batch_size": 8,
                "segmentation_batch_size": 8,
            },
        },
        "params": {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "min_cluster_size": 1, "threshold": 0.7},
        },
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-pipeline"))


def noise(seconds: float) -> AudioClip:
    rng = np.random.default_rng(1)
    return AudioClip((0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32), 16_000)


def test_local_pipeline_loads_and_runs_offline(tiny_pipeline_dir, no_network):
    diarizer = PyannotePipelineDiarizer(tiny_pipeline_dir, device="cpu")
    clip = noise(8.0)

    result = diarizer.diarize(clip, num_speakers=2)

    assert result.speakers == ("SPEAKER_00", "SPEAKER_01")
    assert result.turns[0].speaker == "SPEAKER_00"
    assert all(0.0 <= t.start < t.end <= clip.duration for t in result.turns)
    assert [t.start for t in result.turns] == sorted(t.start for t in result.turns)
    # Exclusive diarization: no two turns overlap.
    assert all(a.end <= b.start + 1e-3 for a, b in itertools.pairwise(result.turns))
    assert diarizer.diarize(clip).speakers[0] == "SPEAKER_00"


def test_pipeline_with_an_unsafe_checkpoint_is_refused(tmp_path):
    import torch

    root = build_tiny_pipeline(tmp_path / "pipeline")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (marker.write_text, ("ran",))

    torch.save({"state_dict": {}, "payload": Exploit()}, root / "embedding" / "pytorch_model.bin")
    with pytest.raises(ModelIntegrityError):
        PyannotePipelineDiarizer(root, device="cpu")
    assert not marker.exists()


def test_hub_pipeline_offline_says_what_to_do(no_network):
    with pytest.raises(ModelNotAvailableError, match=r"HF_TOKEN.*offline profile"):
        PyannotePipelineDiarizer("pyannote/speaker-diarization-community-1", token="hf_fake")


def test_annotation_conversion_renames_by_first_appearance_and_clips():
    from pyannote.core import Annotation, Segment

    annotation = Annotation()
    annotation[Segment(5.0, 7.0)] = "alice"
    annotation[Segment(-0.2, 3.0)] = "bob"
    annotation[Segment(9.5, 12.0)] = "alice"
    annotation[Segment(11.0, 13.0)] = "carol"  # starts after the end of the audio
    result = diarization_from_annotation(annotation, duration=10.0)
    assert [(t.start, t.end, t.speaker) for t in result.turns] == [
        (0.0, 3.0, "SPEAKER_00"),
        (5.0, 7.0, "SPEAKER_01"),
        (9.5, 10.0, "SPEAKER_01"),
    ]
