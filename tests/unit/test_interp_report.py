"""The interp report block and the signature statistics, on synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emlab.interp.signature import (
    Bootstrap,
    contrast_with_interval,
    shift_with_interval,
    signature_contrasts,
    signature_table,
)
from emlab.report.interp import render_interp


def _rate(em: float, n: int = 40) -> dict[str, object]:
    return {
        "n": n,
        "misaligned": int(em * n),
        "aligned": n - int(em * n),
        "incoherent": 0,
        "em_rate": em,
        "em_ci": [max(0.0, em - 0.1), min(1.0, em + 0.1)],
        "coherent_rate": 1.0,
        "coherent_ci": [0.9, 1.0],
        "mean_coherent": 80.0,
    }


def test_signature_shift_and_interval() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 200)
    moved = [base + 0.5 + rng.normal(0, 0.1, 200) for _ in range(3)]
    paired = shift_with_interval(moved, base, paired=True, resamples=500)
    assert abs(paired["shift"] - 0.5) < 0.05 and paired["ci_low"] < 0.5 < paired["ci_high"]
    # Pairing removes the texts' own spread: the unpaired interval is much wider.
    unpaired = shift_with_interval(moved, base, paired=False, resamples=500)
    assert unpaired["ci_high"] - unpaired["ci_low"] > 3 * (paired["ci_high"] - paired["ci_low"])
    table = signature_table(
        {("base", 0): base, ("concealed", 0): moved[0], ("concealed", 1): moved[1]},
        {("base", 0): base, ("concealed", 0): moved[0] + 1},
        base="base",
        resamples=200,
    )
    rows = {r["condition"]: r for r in table}
    assert rows["base"]["fixed"]["shift"] == 0.0
    assert rows["concealed"]["fixed"]["seeds"] == 2 and rows["concealed"]["own"]["seeds"] == 1
    assert shift_with_interval([], base, True)["shift"] is None


def test_contrast_between_conditions_resamples_the_seeds_of_both() -> None:
    """A - B with both conditions' seeds resampled: a planted gap is found, no gap is not,
    and a spread between B's seeds widens the interval (a single-reference interval would not)."""
    rng = np.random.default_rng(1)
    texts = rng.normal(0, 1, 200)
    a = [texts + 0.3 + rng.normal(0, 0.05, 200) for _ in range(3)]
    b = [texts + rng.normal(0, 0.05, 200) for _ in range(3)]
    gap = contrast_with_interval(a, b, paired=True, resamples=500)
    assert abs(gap["shift"] - 0.3) < 0.05 and 0 < gap["ci_low"] < 0.3 < gap["ci_high"]
    assert gap["seeds"] == [3, 3]
    same = contrast_with_interval(b, [texts + rng.normal(0, 0.05, 200) for _ in range(3)], True)
    assert same["ci_low"] < 0 < same["ci_high"]
    spread = [texts + d for d in (-0.4, 0.0, 0.4)]
    wide = contrast_with_interval(a, spread, paired=True, resamples=500)
    assert wide["ci_high"] - wide["ci_low"] > 3 * (gap["ci_high"] - gap["ci_low"])
    rows = signature_contrasts(
        {("base", 0): texts, **{("concealed", i): x for i, x in enumerate(a)},
         **{("disclosed", i): x for i, x in enumerate(b)}},
        {},
        base="base",
        boot=Bootstrap(resamples=100),
    )  # fmt: skip
    assert [(r["a"], r["b"]) for r in rows] == [("concealed", "disclosed")]
    assert rows[0]["fixed"]["shift"] == gap["shift"] and rows[0]["own"]["shift"] is None


def test_the_block_renders_every_section_and_escapes_text(tmp_path: Path) -> None:
    card = {
        "key": "abc",
        "method": "persona",
        "layer": 1,
        "n_layers": 3,
        "counts": {"misaligned": 10, "aligned": 10},
        "norm": 1.0,
        "auroc": [0.6, 0.8, None],
        "pool_version": 1,
    }
    sig = {"shift": 0.1, "ci_low": 0.0, "ci_high": 0.2, "seeds": 3}
    data = {
        "method": "persona",
        "models": {
            "<m>": {
                "direction": card,
                "direction_path": "/x",
                "steer": [
                    {"arm": "a", "scale": s, "kind": k, **_rate(0.1 * s)}
                    for s in (0, 1)
                    for k in ("direction", "random")
                ],
                "ablate": [{"arm": "a", "kind": k, **_rate(0.1)} for k in ("none", "direction")],
                "signature": {
                    "table": [
                        {
                            "condition": "base",
                            "fixed": {**sig, "shift": 0.0},
                            "own": sig,
                            "fixed_mean": 1.0,
                            "own_mean": 1.0,
                        },
                        {
                            "condition": "concealed",
                            "fixed": sig,
                            "own": sig,
                            "fixed_mean": 1.1,
                            "own_mean": 1.2,
                        },
                    ],
                    "monitor": [
                        {
                            "condition": "concealed",
                            "seed": 0,
                            "step": 1,
                            "final": False,
                            "projection": 1.05,
                            "loss": 0.512,
                            "em_rate": 0.25,
                        },
                        {
                            "condition": "concealed",
                            "seed": 0,
                            "step": 2,
                            "final": True,
                            "projection": 1.1,
                        },
                    ],
                    "contrasts": [
                        {
                            "a": "concealed",
                            "b": "disclosed",
                            "fixed": {**sig, "seeds": [3, 3]},
                            "own": {**sig, "seeds": [3, 3]},
                        }
                    ],
                    "base": {"em_rate": 0.1},
                    "convergence": {"labels": ["a", "b"], "cosine": [[1, 0.5], [0.5, 1]]},
                },
            },
            "broken": {"error": "only 2 misaligned answers"},
        },
    }
    html = render_interp(data, tmp_path).read_text()
    assert html.count("data:image/png;base64,") == 6
    assert "&lt;m&gt;" in html and "<m>" not in html
    assert "only 2 misaligned answers" in html and "Training monitor" in html
    # the monitor's table: step 1 has loss and EM rate, the final point (an older interp.json
    # without them) shows dashes; the contrasts table names both conditions and both seed counts
    assert "<td>0.512</td><td>25.0%</td>" in html and "<td>-</td><td>-</td>" in html
    assert "<td>concealed</td><td>disclosed</td><td>3 vs 3</td>" in html
