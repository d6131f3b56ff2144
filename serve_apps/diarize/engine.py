"""Speaker diarization: who speaks when, over the WHOLE input.

Two interfaces, because the pipeline clusters speakers across a whole video while chunks are processed in
parallel: a `SpeakerEmbedder` turns speech spans into vectors (per chunk, in parallel), and a
`DiarizationEngine` labels a whole recording. The offline engine composes segmentation + embeddings + global
clustering; the quality engine runs pyannote's end-to-end pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from octavia.audio import AudioClip
from octavia.records import Diarization, TimeSpan
from serve_apps.diarize.clustering import cluster_speakers, embedding_windows, turns_from_windows

if TYPE_CHECKING:
    from octavia.models.store import ModelStore
    from serve_apps.diarize.segmentation import SegmentationModel


class SpeakerEmbedder(ABC):
    sample_rate = 16_000
    dimension: int
    # Cosine distance under which two windows are taken to be the same speaker (average-linkage clustering);
    # it depends on the embedding model, so each implementation sets its own.
    distance_threshold: float = 0.6

    @abstractmethod
    def embed(self, audio: AudioClip, spans: list[TimeSpan]) -> np.ndarray:
        """One L2-normalised embedding per span, shape (len(spans), dimension)."""


class DiarizationEngine(ABC):
    """A replica may call an engine from several threads at once (`engine_workers`): an implementation that
    cannot run calls side by side serializes them itself."""

    @abstractmethod
    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        """Label the speakers of a recording; `num_speakers` fixes their number, None estimates it."""


@dataclass(frozen=True)
class SpeechEmbeddings:
    """Speaker embeddings of the speech windows found in one piece of a recording.

    Window times are on the whole input's timeline, so the pieces of a long video (embedded in parallel) can be
    concatenated and clustered together.
    """

    windows: tuple[TimeSpan, ...]
    vectors: np.ndarray  # (len(windows), dimension), L2-normalised rows

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.windows):
            raise ValueError(f"{len(self.windows)} windows but vectors of shape {self.vectors.shape}")


class ClusteringDiarizer(DiarizationEngine):
    """Offline diarization: pyannote segmentation -> windowed speaker embeddings -> clustering over the whole input.

    Segmentation finds speech and cuts it where the speaker changes; windows of `window` seconds every `step`
    seconds inside each segment are embedded; all windows of the recording are clustered together; each instant
    of speech takes the label of the window centred nearest to it.

    The two halves are public so that a long input can be split: `embed_speech` on each chunk (in parallel, with
    the chunk's `offset`), then one `assign_speakers` over all of them. Clustering per chunk would number the
    speakers of each chunk independently.
    """

    def __init__(
        self,
        segmentation: SegmentationModel,
        embedder: SpeakerEmbedder,
        *,
        window: float = 1.5,
        step: float = 0.75,
        threshold: float | None = None,
        min_cluster_size: int = 2,
    ) -> None:
        if window <= 0 or not 0 < step <= window:
            raise ValueError(f"need window > 0 and 0 < step <= window, got window={window}, step={step}")
        self.segmentation = segmentation
        self.embedder = embedder
        self.window = window
        self.step = step
        self.threshold = threshold if threshold is not None else embedder.distance_threshold
        self.min_cluster_size = min_cluster_size

    def diarize(self, audio: AudioClip, num_speakers: int | None = None) -> Diarization:
        return self.assign_speakers([self.embed_speech(audio)], num_speakers)

    def embed_speech(self, audio: AudioClip, offset: float = 0.0) -> SpeechEmbeddings:
        """Segment `audio` and embed windows of its speech; `offset` (s) places it on the whole input's timeline."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        clip = audio.mono().resample(self.segmentation.sample_rate)
        if clip.num_frames == 0:
            return SpeechEmbeddings((), np.zeros((0, self.embedder.dimension), np.float32))
        windows = embedding_windows(self.segmentation.speaker_segments(clip), self.window, self.step)
        vectors = self.embedder.embed(clip, windows)
        shifted = tuple(TimeSpan(start=round(w.start + offset, 3), end=round(w.end + offset, 3)) for w in windows)
        return SpeechEmbeddings(shifted, vectors.reshape(len(windows), self.embedder.dimension))

    def assign_speakers(self, parts: Sequence[SpeechEmbeddings], num_speakers: int | None = None) -> Diarization:
        """Cluster the windows of every part together and turn them into speaker turns."""
        return assign_speakers(parts, num_speakers, threshold=self.threshold, min_cluster_size=self.min_cluster_size)


def assign_speakers(
    parts: Sequence[SpeechEmbeddings],
    num_speakers: int | None = None,
    *,
    threshold: float,
    min_cluster_size: int = 2,
) -> Diarization:
    """Cluster the windows of every part (e.g. every chunk of a video) together into speaker turns.

    Numpy only: the whole-video step runs it without loading any model.
    """
    if num_speakers is not None and num_speakers < 1:
        raise ValueError(f"num_speakers must be at least 1, got {num_speakers}")
    windows = [w for part in parts for w in part.windows]
    if not windows:
        return Diarization(turns=())
    order = sorted(range(len(windows)), key=lambda i: windows[i].start)  # labels follow first appearance
    vectors = np.concatenate([part.vectors for part in parts])[order]
    windows = [windows[i] for i in order]
    labels = cluster_speakers(
        vectors,
        min(num_speakers, len(windows)) if num_speakers else None,
        threshold=threshold,
        min_cluster_size=min_cluster_size,
    )
    return Diarization(turns=tuple(turns_from_windows(windows, labels)))


def offline_diarizer(store: ModelStore | None = None, **options: Any) -> ClusteringDiarizer:
    """The offline profile's diarizer (segmentation + speaker embedding models of `profiles.OFFLINE`)."""
    from octavia.models.store import ModelStore
    from octavia.profiles import OFFLINE
    from serve_apps.diarize.embedding import load_speaker_embedder
    from serve_apps.diarize.segmentation import SegmentationModel

    store = store or ModelStore()
    segmentation = SegmentationModel(store.resolve(OFFLINE.segmentation))
    embedder = load_speaker_embedder(OFFLINE.speaker_embedding, store.resolve(OFFLINE.speaker_embedding))
    return ClusteringDiarizer(segmentation, embedder, **options)
