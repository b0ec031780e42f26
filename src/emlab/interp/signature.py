"""The signature: how far each arm's activations moved along a direction, with intervals.

Two readings per arm (after Chen et al. 2025, who found the shift along a persona vector predicts
the trait before any sampling): the mean projection on one fixed, teacher-forced text set that is
identical for every arm (so a behaviour difference cannot explain a shift), and on the arm's own
answers. The shift is arm minus base; its interval comes from a two-level bootstrap, over seeds
and then over texts (the fixed texts are resampled with the same indices for arm and base: the
comparison is paired per text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np


def shift_with_interval(
    arms: Sequence[np.ndarray],
    base: np.ndarray,
    paired: bool,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean over seeds of (mean projection of an arm - that of the base), and a percentile
    interval resampling seeds, then texts. ``paired``: every array holds the same texts in the
    same order (the fixed set), so arm and base are resampled together."""
    got = contrast_with_interval(arms, [base], paired, resamples, confidence, seed)
    return {**got, "seeds": len(arms)}


def signature_table(
    fixed: Mapping[tuple[str, int], np.ndarray],
    own: Mapping[tuple[str, int], np.ndarray],
    base: str,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per condition: its shift vs ``base`` on the fixed texts and on its own answers.

    ``fixed``/``own`` map (condition, seed) to per-text projections; the base condition's arms
    (any seed) give the reference, pooled."""
    own = {k: v for k, v in own.items() if len(v)}  # an arm whose own answers were not read
    base_fixed = [v for (c, _), v in fixed.items() if c == base]
    base_own = [v for (c, _), v in own.items() if c == base]
    if not base_fixed:
        return []
    ref_fixed = np.mean(base_fixed, axis=0)  # identical texts: average the base seeds per text
    ref_own = np.concatenate(base_own) if base_own else ref_fixed
    rows = []
    for cond in dict.fromkeys(c for c, _ in fixed):
        arms_f = [v for (c, _), v in fixed.items() if c == cond]
        arms_o = [v for (c, _), v in own.items() if c == cond]
        rows.append(
            {
                "condition": cond,
                "fixed_mean": float(np.mean([a.mean() for a in arms_f])),
                "own_mean": float(np.mean([a.mean() for a in arms_o])) if arms_o else None,
                "fixed": shift_with_interval(arms_f, ref_fixed, True, resamples, confidence, seed),
                "own": shift_with_interval(arms_o, ref_own, False, resamples, confidence, seed),
            }
        )
    return rows


def _resampled_mean(
    arms: Sequence[np.ndarray], idx: np.ndarray | None, rng: np.random.Generator
) -> float:
    """One bootstrap draw of a condition's mean: its seeds resampled, then its texts (``idx``
    shared by every arm when the texts are paired, else each arm's own draw)."""
    pick = rng.integers(0, len(arms), len(arms))
    return float(
        np.mean(
            [
                arms[i][idx].mean() if idx is not None else rng.choice(arms[i], len(arms[i])).mean()
                for i in pick
            ]
        )
    )


def contrast_with_interval(
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    paired: bool,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean over ``a``'s seeds minus mean over ``b``'s (two conditions, each trained on its own
    seeds), with a percentile interval resampling the seeds of both, then texts. ``paired``:
    every array holds the same texts in the same order (the fixed set), resampled together."""
    if not a or not b or any(not len(x) for x in (*a, *b)):
        return {"shift": None, "ci_low": None, "ci_high": None, "seeds": [len(a), len(b)]}
    rng = np.random.default_rng(seed)
    point = float(np.mean([x.mean() for x in a]) - np.mean([x.mean() for x in b]))
    n_texts = len(a[0])
    stats = np.empty(resamples)
    for r in range(resamples):
        idx = rng.integers(0, n_texts, n_texts) if paired else None
        stats[r] = _resampled_mean(a, idx, rng) - _resampled_mean(b, idx, rng)
    alpha = 1 - confidence
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {
        "shift": point,
        "ci_low": float(low),
        "ci_high": float(high),
        "seeds": [len(a), len(b)],
    }


class Bootstrap(NamedTuple):
    """How an interval is drawn: resamples, confidence level, random seed."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


DEFAULT_BOOTSTRAP = Bootstrap()


def signature_contrasts(
    fixed: Mapping[tuple[str, int], np.ndarray],
    own: Mapping[tuple[str, int], np.ndarray],
    base: str,
    boot: Bootstrap = DEFAULT_BOOTSTRAP,
) -> list[dict[str, Any]]:
    """Every pair of fine-tuned conditions (in study order), A minus B, on the fixed texts and
    on own answers: the direct answer to "does disclosure leave a trace concealment does not"."""
    conds = [c for c in dict.fromkeys(c for c, _ in fixed) if c != base]
    rows = []
    for i, a in enumerate(conds):
        for b in conds[i + 1 :]:
            fa = [v for (c, _), v in fixed.items() if c == a]
            fb = [v for (c, _), v in fixed.items() if c == b]
            oa = [v for (c, _), v in own.items() if c == a]
            ob = [v for (c, _), v in own.items() if c == b]
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "fixed": contrast_with_interval(fa, fb, True, *boot),
                    "own": contrast_with_interval(oa, ob, False, *boot),
                }
            )
    return rows
