"""Embedding windows, global speaker clustering, and turn assembly.

These functions only see embeddings and time spans, never audio, so the pipeline can embed chunks of a long
video in parallel and then cluster every window of the WHOLE video at once (clustering per chunk would give each
chunk its own, incompatible, speaker numbering).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import numpy as np

from octavia.records import SpeakerTurn, TimeSpan


def embedding_windows(segments: Sequence[TimeSpan], window: float = 1.5, step: float = 0.75) -> list[TimeSpan]:
    """Windows of `window` seconds every `step` seconds inside each segment, in time order.

    A segment no longer than `window` is one window; the last window of a longer one ends at the segment's end.
    Windows never cross segment boundaries, so each one holds a single speaker when the segments do.
    """
    if window <= 0 or not 0 < step <= window:
        raise ValueError(f"need window > 0 and 0 < step <= window, got window={window}, step={step}")
    windows: list[TimeSpan] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if seg.duration <= window:
            windows.append(seg)
            continue
        count = int(np.ceil((seg.duration - window) / step - 1e-9)) + 1
        for i in range(count):
            start = min(seg.start + i * step, seg.end - window)
            windows.append(TimeSpan(start=round(start, 3), end=round(start + window, 3)))
    return windows


def speaker_name(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def cluster_speakers(
    embeddings: np.ndarray,
    num_speakers: int | None = None,
    *,
    threshold: float = 0.6,
    min_cluster_size: int = 2,
) -> np.ndarray:
    """Speaker label per embedding (rows in time order): 0 for whoever appears first, 1 for the next, ...

    Average-linkage agglomerative clustering on cosine distance. With `num_speakers=None` the dendrogram is
    cut at `threshold`; otherwise it is cut so that exactly `num_speakers` clusters have at least
    `min_cluster_size` members. Smaller clusters (a cough, two overlapping voices, a laugh) are not speakers:
    their members join the nearest large cluster. scipy's `linkage` is used rather than sklearn's
    `AgglomerativeClustering` because the same tree is cut several times while looking for that count.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, dimension), got shape {x.shape}")
    n = x.shape[0]
    if num_speakers is not None and not 1 <= num_speakers <= max(n, 1):
        raise ValueError(f"num_speakers must be between 1 and the number of embeddings ({n}), got {num_speakers}")
    if threshold <= 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1 or num_speakers == 1:
        return np.zeros(n, np.int64)
    if num_speakers == n:
        return np.arange(n, dtype=np.int64)

    from scipy.cluster.hierarchy import fcluster, linkage

    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    tree = linkage(x, method="average", metric="cosine")
    min_size = max(1, min(min_cluster_size, n // max(num_speakers or 1, 1)))
    if num_speakers is None:
        labels = _reassign_small(x, fcluster(tree, t=threshold, criterion="distance"), min_size)
    else:
        labels = fcluster(tree, t=num_speakers, criterion="maxclust")
        for count in range(num_speakers, n + 1):
            candidate = fcluster(tree, t=count, criterion="maxclust")
            if (np.bincount(candidate) >= min_size).sum() >= num_speakers:
                labels = _reassign_small(x, candidate, min_size, keep=num_speakers)
                break
    return _by_first_appearance(labels)


def _reassign_small(x: np.ndarray, labels: np.ndarray, min_size: int, keep: int | None = None) -> np.ndarray:
    """Move members of clusters smaller than `min_size` (or beyond the `keep` largest) to the nearest kept one."""
    ids, sizes = np.unique(labels, return_counts=True)
    order = np.argsort(-sizes, kind="stable")
    large = [int(ids[i]) for i in order if sizes[i] >= min_size]
    if keep is not None:
        large = large[:keep]
    if not large:
        return labels
    centroids = np.stack([x[labels == c].mean(axis=0) for c in large])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    out = labels.copy()
    small = ~np.isin(labels, large)
    if small.any():
        out[small] = np.asarray(large)[np.argmax(x[small] @ centroids.T, axis=1)]
    return out


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    _, first = np.unique(labels, return_index=True)
    rank = {int(labels[i]): r for r, i in enumerate(sorted(first))}
    return np.array([rank[int(label)] for label in labels], dtype=np.int64)


def turns_from_windows(windows: Sequence[TimeSpan], labels: Sequence[int] | np.ndarray) -> list[SpeakerTurn]:
    """Speaker turns from labelled embedding windows, in time order.

    Where windows overlap, each instant goes to the window whose centre is nearest; consecutive pieces with the
    same speaker that touch are merged. Gaps between windows (silence) stay gaps.
    """
    if len(windows) != len(labels):
        raise ValueError(f"{len(windows)} windows but {len(labels)} labels")
    order = sorted(range(len(windows)), key=lambda i: (windows[i].start, windows[i].end))
    spans = [(windows[i].start, windows[i].end, int(labels[i])) for i in order if windows[i].duration > 0]
    if not spans:
        return []
    starts = [s for s, _, _ in spans]
    longest = max(e - s for s, e, _ in spans)
    centers = sorted((s + e) / 2 for s, e, _ in spans)
    # The nearest centre only changes at window edges and half-way between neighbouring centres.
    bounds = sorted({t for s, e, _ in spans for t in (s, e)} | {(a + b) / 2 for a, b in itertools.pairwise(centers)})
    pieces: list[tuple[float, float, int]] = []
    for a, b in itertools.pairwise(bounds):
        middle = (a + b) / 2
        best, best_distance = None, np.inf
        # Only windows starting at most `longest` before the piece can cover it.
        for j in range(bisect.bisect_right(starts, a) - 1, -1, -1):
            s, e, label = spans[j]
            if s < a - longest - 1e-9:
                break
            if s <= a and e >= b:
                distance = abs((s + e) / 2 - middle)
                if distance < best_distance:
                    best, best_distance = label, distance
        if best is None:
            continue
        if pieces and pieces[-1][2] == best and abs(pieces[-1][1] - a) < 1e-9:
            pieces[-1] = (pieces[-1][0], b, best)
        else:
            pieces.append((a, b, best))
    return [SpeakerTurn(start=round(a, 3), end=round(b, 3), speaker=speaker_name(label)) for a, b, label in pieces]
