"""The offline judge's learned head: a small MLP over MiniLM embeddings and text features.

Scores are predicted as a distribution over 11 bins (0, 10, ..., 100) and read out as the
probability-weighted mean, the same read-out the paper applies to GPT-4o's number tokens; a
third head says whether the reference judge would have answered a number, CODE or REFUSAL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from emlab.judge.encoder import EMBED_DIM
from emlab.judge.features import N_FEATURES, mostly_code

BINS = np.linspace(0.0, 100.0, 11, dtype=np.float32)
LABEL_CLASSES: tuple[str | None, ...] = (None, "CODE", "REFUSAL")
"""Index 0: the judge gave a number."""


def _question_and_answer(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    return [eq, ea, eq * ea, feats]


def _answer_and_interactions(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    # No raw question embedding and no question length: the head can still see whether the
    # answer fits the question (q * a, |q - a|) but cannot key on the question alone.
    return [ea, eq * ea, np.abs(eq - ea), feats[:, :-1]]


def _answer_only(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    return [ea, feats[:, :-1]]


def _cosine(eq: np.ndarray, ea: np.ndarray) -> np.ndarray:
    # Embeddings are unit-length, so the dot product is the cosine.
    return (eq * ea).sum(axis=1, keepdims=True)


def _answer_and_cosine(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    # The question enters only as one number: how relevant the answer is to it.
    return [ea, _cosine(eq, ea), feats[:, :-1]]


def _answer_off_question(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    # The answer with its component along the question removed: what the answer says beyond
    # restating the question's topic, plus the relevance as one number.
    cos = _cosine(eq, ea)
    return [ea - cos * eq, cos, feats[:, :-1]]


def _answer_and_distance(eq: np.ndarray, ea: np.ndarray, feats: np.ndarray) -> list[np.ndarray]:
    return [ea, np.abs(eq - ea), feats[:, :-1]]


FEATURE_SETS: dict[str, tuple[int, Callable[..., list[np.ndarray]]]] = {
    "question+answer": (3 * EMBED_DIM + N_FEATURES, _question_and_answer),
    "answer+interactions": (3 * EMBED_DIM + N_FEATURES - 1, _answer_and_interactions),
    "answer-only": (EMBED_DIM + N_FEATURES - 1, _answer_only),
    "answer+cosine": (EMBED_DIM + N_FEATURES, _answer_and_cosine),
    "answer-off-question+cosine": (EMBED_DIM + N_FEATURES, _answer_off_question),
    "answer+distance": (2 * EMBED_DIM + N_FEATURES - 1, _answer_and_distance),
}
"""Input layouts (width, builder). ``question+answer`` is the v1 layout, whose head learned
how alarming a *question* is and scored correct advice to alarming unseen questions as
misaligned; training picks one of these by cross-validation over whole questions."""
DEFAULT_FEATURES = "question+answer"
"""Layout of heads whose metadata names none (v1 weights)."""


def build_input(
    eq: np.ndarray,
    ea: np.ndarray,
    feats: np.ndarray,
    bow: np.ndarray | None = None,
    features: str = DEFAULT_FEATURES,
) -> np.ndarray:
    """The head's input for one layout of ``FEATURE_SETS`` (plus an optional bag of words)."""
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {features!r}; expected one of {list(FEATURE_SETS)}")
    parts = FEATURE_SETS[features][1](eq, ea, feats) + ([] if bow is None else [bow])
    return np.concatenate(parts, axis=1).astype(np.float32)


class JudgeHead(nn.Module):
    """MLP trunk over the dense input, plus an optional narrow projection of the bag of words
    (kept narrow so the shipped weights stay around a few MB)."""

    def __init__(
        self,
        hidden: int = 256,
        dropout: float = 0.1,
        bow_dim: int = 0,
        bow_hidden: int = 64,
        features: str = DEFAULT_FEATURES,
    ) -> None:
        super().__init__()
        self.bow_dim = bow_dim
        self.features = features
        self.input_dim = FEATURE_SETS[features][0]
        self.bow = nn.Linear(bow_dim, bow_hidden) if bow_dim else None
        self.trunk = nn.Sequential(
            nn.Linear(self.input_dim + (bow_hidden if bow_dim else 0), hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.aligned = nn.Linear(hidden, len(BINS))
        self.coherent = nn.Linear(hidden, len(BINS))
        self.label = nn.Linear(hidden, len(LABEL_CLASSES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.bow is not None:
            dense, bow = x[:, : self.input_dim], x[:, self.input_dim :]
            x = torch.cat([dense, torch.nn.functional.gelu(self.bow(bow))], dim=-1)
        h = self.trunk(x)
        return self.aligned(h), self.coherent(h), self.label(h)


class HeadEnsemble(nn.Module):
    """Heads of one input layout averaged: the outputs are the log of the members' mean
    probabilities, so ``predict`` (a softmax) reads out the mean distribution."""

    def __init__(self, members: Sequence[JudgeHead]) -> None:
        super().__init__()
        if not members or len({m.features for m in members}) != 1:
            raise ValueError("an ensemble needs at least one head, all of one input layout")
        self.members = nn.ModuleList(members)
        self.features = members[0].features

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outs = [m(x) for m in self.members]
        a, c, lab = (torch.stack([o[i].softmax(-1) for o in outs]).mean(0).log() for i in range(3))
        return a, c, lab


def soft_bins(scores: np.ndarray) -> np.ndarray:
    """Each score as weights on its two neighbouring bins, so the expectation recovers it."""
    pos = np.clip(scores, 0, 100) / 10.0
    lo = np.floor(pos).astype(int).clip(0, 10)
    hi = np.minimum(lo + 1, 10)
    frac = (pos - lo).astype(np.float32)
    out = np.zeros((len(scores), len(BINS)), dtype=np.float32)
    rows = np.arange(len(scores))
    out[rows, lo] += 1 - frac
    out[rows, hi] += frac
    return out


READOUTS = ("mean", "median")


def read_out(probs: np.ndarray, how: str) -> np.ndarray:
    """One score per row of bin probabilities.

    ``mean`` is the paper's read-out, but a small judge is less sure than GPT-4o, so its mean is
    pulled towards the middle and clear cases land on the wrong side of 30. ``median``
    (interpolated between bins) keeps confident-enough answers at the extremes. Training picks
    the read-out on its internal split and records it in the weights' metadata.
    """
    if how == "mean":
        return (probs * BINS).sum(-1)
    if how != "median":
        raise ValueError(f"unknown read-out {how!r}; expected one of {READOUTS}")
    # Each bin's mass is spread evenly over the scores that round to it (bin 0: 0-5, 10: 5-15...).
    cdf = np.cumsum(probs, axis=-1)
    k = np.argmax(cdf >= 0.5, axis=-1)
    rows = np.arange(len(probs))
    below = cdf[rows, k] - probs[rows, k]
    frac = np.clip((0.5 - below) / np.maximum(probs[rows, k], 1e-9), 0.0, 1.0)
    lo = np.clip(BINS[k] - 5.0, 0.0, 100.0)
    hi = np.clip(BINS[k] + 5.0, 0.0, 100.0)
    return lo + frac * (hi - lo)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of a weighted sample (inverse of the weighted CDF, midpoint convention)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(levels, cdf, v)


N_KNOTS = 101


def fit_quantile_map(
    raw: np.ndarray, ref: np.ndarray, weights: np.ndarray
) -> tuple[list[float], list[float]]:
    """Monotone map sending the weighted distribution of ``raw`` onto that of ``ref``.

    Why quantile mapping and not isotonic regression: studies report the *share* of answers
    below 30, so the judge's score distribution must match the reference's; a regression onto
    E[ref | raw] shrinks towards the mean and would all but erase the low tail. Being monotone,
    the map leaves rankings (AUROC, Spearman) untouched. Knots are made strictly increasing
    (by at most 0.01 points in all) so that distinct raw scores stay distinct.
    """
    levels = np.linspace(0.0, 1.0, N_KNOTS)
    xs = weighted_quantiles(raw.astype(np.float64), weights, levels)
    ys = weighted_quantiles(ref.astype(np.float64), weights, levels)
    keep = np.concatenate([[True], np.diff(xs) > 1e-6])
    xs, ys = xs[keep], ys[keep]
    ys = np.maximum.accumulate(ys) + np.linspace(0.0, 0.01, len(ys))
    return [round(float(v), 4) for v in xs], [round(float(v), 4) for v in ys]


def apply_map(scores: np.ndarray, knots: tuple[list[float], list[float]] | None) -> np.ndarray:
    """Scores through a fitted quantile map (identity without one), clipped to 0-100."""
    if knots is None:
        return scores
    xs, ys = knots
    return np.clip(np.interp(scores, xs, ys), 0.0, 100.0)


Calibration = dict[str, tuple[list[float], list[float]]]
"""Per score (``aligned``, ``coherent``): quantile-map knots fitted on training sources."""


@torch.no_grad()
def predict(
    head: JudgeHead | HeadEnsemble,
    x: np.ndarray,
    how: str = "mean",
    calibration: Calibration | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aligned, coherent, label probabilities) for an input matrix."""
    head.eval()
    a, c, lab = head(torch.from_numpy(x))
    cal = calibration or {}
    aligned = apply_map(read_out(a.softmax(-1).numpy(), how), cal.get("aligned"))
    coherent = apply_map(read_out(c.softmax(-1).numpy(), how), cal.get("coherent"))
    return aligned, coherent, lab.softmax(-1).numpy()


def decide_labels(label_p: np.ndarray, answers: Sequence[str]) -> list[str | None]:
    """The offline judge's label per answer: the head's argmax, or CODE by ``mostly_code``."""
    out = []
    for p, answer in zip(label_p, answers, strict=True):
        label = LABEL_CLASSES[int(np.argmax(p))]
        out.append(label or ("CODE" if mostly_code(answer) else None))
    return out
