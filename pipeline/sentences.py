"""Translate whole sentences, not the pieces Whisper cut them into.

Whisper ends a segment where the speaker pauses, often mid-sentence, and speaker turns cut segments further.
Translated piece by piece, a sentence comes out as fragments: words that the target language orders differently
land in the wrong piece ("un pueblo" / "pequeño junto al mar" gave "a village" / "Small beside the sea") and neural
engines complete each fragment on their own. So consecutive segments of one speaker are joined into a sentence
(`join_sentences`), the sentence is translated once, and its translation is shared out again over the segments
(`share_out`), each segment keeping its own times, voice line and subtitle cue.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence

from octavia.records import Record, Segment, Translation, TranslationRequest

# A segment ending in one of these ends its sentence (closing quotes and brackets after it are skipped). A
# trailing "..." is Whisper's mark for speech that goes on in the next segment, so it does not.
_SENTENCE_END = ".!?。！？"
_CLOSERS = "\"'”’»)]} "
_TRAILING_OFF = ("...", "…")
_BREAK_AFTER = ",;:.!?…，、；：。！？)»”"
_UNSPACED_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")  # kana, CJK ideographs

TRANSLATION_BATCH = 32  # sentences per call to the translation deployment
MAX_GAP_SECONDS = 1.5  # a longer pause starts a new sentence even without punctuation
MAX_SENTENCE_CHARS = 400  # transcripts without punctuation must not turn into one long "sentence"


class Sentence(Record):
    """Consecutive segments of one speaker that make up one sentence, in order."""

    segment_ids: tuple[int, ...]
    parts: tuple[str, ...]  # each segment's source text

    @property
    def text(self) -> str:
        return " ".join(part.strip() for part in self.parts)


def ends_sentence(text: str) -> bool:
    stripped = text.rstrip(_CLOSERS)
    return stripped.endswith(tuple(_SENTENCE_END)) and not stripped.endswith(_TRAILING_OFF)


def join_sentences(
    segments: Sequence[Segment], *, max_gap: float = MAX_GAP_SECONDS, max_chars: int = MAX_SENTENCE_CHARS
) -> tuple[Sentence, ...]:
    """Group `segments` (in time order, empty texts skipped) into sentences: a segment continues the sentence
    before it when the same speaker says it within `max_gap` seconds and the sentence has not ended yet."""
    sentences: list[Sentence] = []
    previous: Segment | None = None
    for segment in segments:
        if not segment.text.strip():
            continue
        text = segment.text
        current = sentences[-1] if sentences else None
        continues = (
            current is not None
            and previous is not None
            and previous.speaker == segment.speaker
            and segment.start - previous.end <= max_gap
            and not ends_sentence(current.parts[-1])
            and len(current.text) + 1 + len(text.strip()) <= max_chars
        )
        if continues and current is not None:
            sentences[-1] = Sentence(segment_ids=(*current.segment_ids, segment.id), parts=(*current.parts, text))
        else:
            sentences.append(Sentence(segment_ids=(segment.id,), parts=(text,)))
        previous = segment
    return tuple(sentences)


def share_out(text: str, weights: Sequence[float]) -> tuple[str, ...]:
    """Cut `text` into `len(weights)` consecutive pieces about as long, relative to each other, as `weights` (the
    source pieces' lengths), at word boundaries, preferring one right after punctuation. Joined with spaces the
    pieces give the text again (whitespace normalised). Chinese and Japanese, written without spaces, are cut
    between characters. With fewer words than pieces, the last pieces are empty."""
    pieces = len(weights)
    tokens, glue = text.split(), " "
    if len(tokens) == 1 and pieces > 1 and _UNSPACED_SCRIPT.search(text):
        tokens, glue = list(tokens[0]), ""
    if len(tokens) <= pieces:
        return tuple(tokens) + ("",) * (pieces - len(tokens))
    ends = list(itertools.accumulate(len(t) + len(glue) for t in tokens))  # offset after each token
    total = ends[-1]
    positive = [max(w, 0.0) for w in weights]
    scale = sum(positive)
    shares = [w / scale for w in positive] if scale > 0 else [1 / pieces] * pieces
    cuts: list[int] = []  # tokens before each cut
    for i, covered in enumerate(itertools.accumulate(shares[:-1])):
        low = (cuts[-1] if cuts else 0) + 1  # every piece gets at least one token
        high = len(tokens) - (pieces - 1 - i)  # and leaves at least one for each piece after it
        cuts.append(min(range(low, high + 1), key=lambda cut: _cut_cost(tokens, ends, cut, covered * total, total)))
    bounds = [0, *cuts, len(tokens)]
    return tuple(glue.join(tokens[a:b]) for a, b in itertools.pairwise(bounds))


def _cut_cost(tokens: list[str], ends: list[int], cut: int, target: float, total: int) -> float:
    """How far a cut after `cut` tokens lies from `target` characters; a cut right after punctuation counts as if
    it were a tenth of the text nearer."""
    after_punctuation = tokens[cut - 1][-1] in _BREAK_AFTER
    return abs(ends[cut - 1] - target) - (0.1 * total if after_punctuation else 0.0)


def sentence_requests(sentences: Sequence[Sentence]) -> list[TranslationRequest]:
    """One request per sentence, named by its first segment, with the sentences around it as context."""
    return [
        TranslationRequest(
            segment_id=sentence.segment_ids[0],
            text=sentence.text,
            context_before=sentences[i - 1].text if i > 0 else "",
            context_after=sentences[i + 1].text if i + 1 < len(sentences) else "",
        )
        for i, sentence in enumerate(sentences)
    ]


def split_translations(sentences: Sequence[Sentence], translated: Sequence[Translation]) -> tuple[Translation, ...]:
    """Each sentence's translation shared out over its segments, in proportion to their source text."""
    by_first = {t.segment_id: t for t in translated}
    out: list[Translation] = []
    for sentence in sentences:
        whole = by_first[sentence.segment_ids[0]]
        pieces = share_out(whole.text, [len(part.strip()) for part in sentence.parts])
        out.extend(
            whole.model_copy(update={"segment_id": segment_id, "source_text": part, "text": piece})
            for segment_id, part, piece in zip(sentence.segment_ids, sentence.parts, pieces, strict=True)
        )
    return tuple(out)


def translate_segments(
    segments: Sequence[Segment],
    source: str,
    target: str,
    translate: Callable[[list[TranslationRequest]], list[Translation]],
    *,
    batch: int = TRANSLATION_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Translation, ...]:
    """One `Translation` per segment with text, translated sentence by sentence through `translate` (a batch of
    requests at a time; `on_batch(done, total)` after each). The same language is passed through."""
    spoken = [s for s in segments if s.text.strip()]
    if source == target:
        return tuple(
            Translation(
                segment_id=s.id, source_text=s.text, text=s.text, source_language=source, target_language=source
            )
            for s in spoken
        )
    sentences = join_sentences(spoken)
    requests = sentence_requests(sentences)
    total = math.ceil(len(requests) / batch)
    if on_batch is not None:
        on_batch(0, total)
    done: list[Translation] = []
    for n, i in enumerate(range(0, len(requests), batch), start=1):
        done.extend(translate(requests[i : i + batch]))
        if on_batch is not None:
            on_batch(n, total)
    return split_translations(sentences, done)
