"""Word error rate with the normaliser every accuracy number in this repository uses.

References come in mixed styles (LibriSpeech upper case, LibriVox lower case, apostrophes in
contractions) and engines differ again, so both sides are normalised the same way before
counting: otherwise casing and punctuation would masquerade as recognition errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["normalise", "word_error_rate", "word_errors"]

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise(text: str) -> list[str]:
    """Return the words of ``text`` lower-cased, without punctuation (apostrophes kept)."""
    spaced = _NOT_WORD.sub(" ", text.lower())
    return [word.strip("'") for word in spaced.split() if word.strip("'")]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Return the edit distance in words (substitutions + deletions + insertions)."""
    previous = list(range(len(hypothesis) + 1))
    for ref_index, ref_word in enumerate(reference, start=1):
        current = [ref_index]
        for hyp_index, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[hyp_index] + 1,
                    current[hyp_index - 1] + 1,
                    previous[hyp_index - 1] + (ref_word != hyp_word),
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Return corpus WER: total word errors over total reference words, after normalising.

    Pooling errors over the corpus (rather than averaging per-clip rates) keeps a short clip
    with one mistake from weighing as much as a long one.
    """
    errors = 0
    words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        reference_words = normalise(reference)
        errors += word_errors(reference_words, normalise(hypothesis))
        words += len(reference_words)
    if words == 0:
        raise ValueError("references contain no words")
    return errors / words
