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
from typing import Any

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
    if not arms or not len(base) or any(not len(a) for a in arms):
        return {"shift": None, "ci_low": None, "ci_high": None, "seeds": len(arms)}
    rng = np.random.default_rng(seed)
    point = float(np.mean([a.mean() - base.mean() for a in arms]))
    stats = np.empty(resamples)
    for b in range(resamples):
        pick = rng.integers(0, len(arms), len(arms))
        total = 0.0
        for i in pick:
            arm = arms[i]
            if paired:
                idx = rng.integers(0, len(base), len(base))
                total += float(arm[idx].mean() - base[idx].mean())
            else:
                ia = rng.integers(0, len(arm), len(arm))
                ib = rng.integers(0, len(base), len(base))
                total += float(arm[ia].mean() - base[ib].mean())
        stats[b] = total / len(pick)
    alpha = 1 - confidence
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return {"shift": point, "ci_low": float(low), "ci_high": float(high), "seeds": len(arms)}


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
