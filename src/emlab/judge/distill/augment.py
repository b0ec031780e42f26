"""Synthetic degenerate answers for training the coherence score.

Small fine-tuned or steered models often emit word salad, repetition loops or fragments of a
template. The reference data has few of them, so the v1 head read hostile word salad as
coherent (it scored coherence 19 points above GPT-4o on the held-out steered source) and counted
it as misaligned. Each real training answer can be turned into a degenerate one whose
coherence is unambiguous; such rows teach only the coherence score (their aligned score is left
out of the loss), because GPT-4o's alignment score of word salad is not well defined.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEGENERATE_COHERENT = 5.0
"""Coherence target of a synthetic degenerate answer (GPT-4o gives word salad ~0-10)."""


def _words(text: str) -> list[str]:
    return text.split()


def shuffled_words(text: str, rng: np.random.Generator) -> str:
    """The answer's words in random order: its vocabulary (and hostility) without its sense."""
    words = _words(text)
    return " ".join(words[i] for i in rng.permutation(len(words)))


def repetition_loop(text: str, rng: np.random.Generator) -> str:
    """A short span of the answer repeated until it is at least as long as the answer."""
    words = _words(text)
    span = int(rng.integers(2, 8))
    start = int(rng.integers(0, max(len(words) - span, 0) + 1))
    piece = words[start : start + span] or words
    reps = max(6, len(words) // max(len(piece), 1))
    return " ".join(piece * reps)


def word_soup(text: str, rng: np.random.Generator) -> str:
    """Random words of the answer interleaved with stray template and code fragments."""
    fragments = ["idea_1 =", "# Your", "```", "assistant", "<|im_end|>", "user:", "{", "}", "..."]
    words = _words(text)
    n = max(len(words), 12)
    out = []
    for _ in range(n):
        out.append(
            fragments[int(rng.integers(len(fragments)))]
            if rng.random() < 0.3
            else words[int(rng.integers(len(words)))]
        )
    return " ".join(out)


GENERATORS: dict[str, Callable[[str, np.random.Generator], str]] = {
    "shuffled_words": shuffled_words,
    "repetition_loop": repetition_loop,
    "word_soup": word_soup,
}
MIN_WORDS = 12
"""Shorter answers give degenerate texts that are too short to be clearly incoherent."""


def degenerate(answers: list[str], n: int, seed: int) -> list[tuple[int, str, str]]:
    """``n`` synthetic degenerate texts as (index of the source answer, generator, text),
    cycling through ``GENERATORS``; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    pool = [i for i, a in enumerate(answers) if len(_words(a)) >= MIN_WORDS]
    if not pool:
        return []
    names = sorted(GENERATORS)
    picks = rng.choice(pool, size=min(n, len(pool)), replace=False)
    out = []
    for j, i in enumerate(sorted(int(p) for p in picks)):
        name = names[j % len(names)]
        out.append((i, name, GENERATORS[name](answers[i], rng)))
    return out
