"""How far an answer lies from what the offline judge was trained and validated on.

A distilled judge is only as good as its training data's coverage; on questions and answers
unlike anything it saw it can be confidently wrong (issue #11). Every judgment therefore
carries an uncertainty: the distance of its (question, answer) pair to the nearest training
pairs in MiniLM space, divided by the largest distance at which the judge was validated (the
``RANGE_QUANTILE`` of the distances of answers to *held-out questions* in the by-question
cross-validation). So ``uncertainty <= 1`` means "as familiar as the answers the validation
covered" and ``> 1`` means outside the validated range.
"""

from __future__ import annotations

import numpy as np

BANK_SIZE = 2048
"""Training pairs kept as reference points, shipped in fp16 with the head (2048 x 768 x 2 B =
3 MB)."""
K_NEAREST = 10
RANGE_QUANTILE = 0.95
"""Share of held-out-question answers (inner CV) that lie inside the validated range."""


def pair_vectors(eq: np.ndarray, ea: np.ndarray) -> np.ndarray:
    """Unit vectors of the concatenated (question, answer) embeddings: the cosine of two pairs
    is the mean of their question and answer cosines, so a new question *and* an unusual answer
    both move a pair away from the training data."""
    return (np.concatenate([eq, ea], axis=1) / np.sqrt(2.0)).astype(np.float32)


def choose_bank(n: int, seed: int, size: int = BANK_SIZE) -> np.ndarray:
    """Indices of the training rows kept as reference points (seeded, sorted)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(n)[: min(size, n)])


def distance(pairs: np.ndarray, bank: np.ndarray, k: int = K_NEAREST) -> np.ndarray:
    """1 - mean cosine of each pair to its ``k`` nearest bank pairs (0 = among known pairs)."""
    if len(pairs) == 0 or len(bank) == 0:
        return np.zeros(len(pairs), dtype=np.float32)
    sim = pairs.astype(np.float32) @ bank.astype(np.float32).T
    k = min(k, bank.shape[0])
    top = np.partition(sim, -k, axis=1)[:, -k:]
    return (1.0 - top.mean(axis=1)).astype(np.float32)
