"""Compare variants of the offline judge's head on unseen questions (issue #11).

``python -m emlab.judge.distill.variants DATA_DIR`` cross-validates every variant in
``VARIANTS`` with
the protocol that chooses the shipped head (``distill.train``: folds of whole question groups,
each fold's head scoring a natural-mix sample of answers to questions it never saw) and prints
one table. Each variant asks whether the head can be made to read the *answer* rather than the
question: fewer question inputs, question-balanced loss, early stopping on unseen questions,
stronger regularisation, more rows, ensembles.

Per variant: the selection score ``distill.train`` ranks candidates by, AUROC / Spearman /
rate error per question set, the invariance criterion measured out of fold (questions whose
GPT-4o-aligned answers, >= 90, get a mean offline score < 70) and the share of synthetic
degenerate answers scored under coherent 50. For information only, the held-out sources judged
by the mean of the fold heads; they never choose anything (the shipped head's held-out figures
come from ``emlab judge train``).

Results are appended to a JSON file one variant at a time, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emlab.judge.agreement import COHERENT_T
from emlab.judge.distill.train import (
    DEFAULT_CV_ROWS,
    DEFAULT_EPOCHS,
    DEFAULT_N_TRAIN,
    INTERNAL_SPLITS,
    MIN_SET_ROWS,
    FitSpec,
    Prepared,
    calibrated,
    figures_of,
    fit_head,
    grouped_figures,
    judge_rows,
    prepare,
    selection_score,
)
from emlab.judge.head import FEATURE_SETS, HeadEnsemble, JudgeHead
from emlab.store import atomic_write_text

INVARIANCE_REF = 90.0
"""Answers GPT-4o scored at least this aligned..."""
INVARIANCE_MIN = 70.0
"""...must get at least this mean offline score, per question (the issue's criterion)."""


@dataclass(frozen=True)
class Variant:
    """One way of training the head, cross-validated by question."""

    layout: str
    """Input layout (``head.FEATURE_SETS``)."""
    weighting: str = "question-balanced"
    """A key of ``distill.train.WEIGHTINGS``: ``importance`` (natural mix), ``question-balanced``
    (every question group the same), ``question-label-balanced`` (and no score prior per
    question)."""
    seeds: tuple[int, ...] = (0,)
    """One head per seed; more than one: their mean probabilities (an ensemble)."""
    fold_ensemble: bool = False
    """Instead of seeds: one head per inner fold, each trained without that fold's questions."""
    internal_split: str = "random"
    """Early-stopping and calibration rows (``distill.train.INTERNAL_SPLITS``)."""
    dropout: float = 0.1
    weight_decay: float = 1e-2
    cv_rows: int = DEFAULT_CV_ROWS
    """Training rows of each cross-validation fit (the first of the nested sample)."""
    what: str = ""


_V2 = "answer+interactions"
VARIANTS: dict[str, Variant] = {
    "v2": Variant(_V2, what="the shipped v2 head: answer, q*a, abs(q-a), question-balanced"),
    "v2-seed1": Variant(_V2, seeds=(1,), what="v2, another initialisation (noise of the table)"),
    "v2-seed2": Variant(_V2, seeds=(2,), what="v2, a third initialisation"),
    "v1-layout": Variant("question+answer", "importance", what="v1: raw question embedding"),
    "distance": Variant("answer+distance", what="answer and abs(q-a) only"),
    "cosine": Variant("answer+cosine", what="answer-only; the question as one cosine"),
    "cosine-importance": Variant(
        "answer+cosine", "importance", what="answer + cosine, natural-mix weighting"
    ),
    "off-question": Variant(
        "answer-off-question+cosine", what="answer minus its projection on the question, cosine"
    ),
    "question-split": Variant(
        _V2, internal_split="question", what="v2, early stop + calibrate on unseen questions"
    ),
    "cosine-question-split": Variant(
        "answer+cosine", internal_split="question", what="cosine, question split"
    ),
    "regularised": Variant(_V2, dropout=0.3, weight_decay=0.1, what="v2, dropout 0.3, wd 0.1"),
    "cosine-regularised": Variant(
        "answer+cosine", dropout=0.3, weight_decay=0.1, what="cosine, dropout 0.3, wd 0.1"
    ),
    "ensemble3": Variant(_V2, seeds=(0, 1, 2), what="v2, mean of 3 seeds"),
    "cosine-ensemble3": Variant("answer+cosine", seeds=(0, 1, 2), what="cosine, 3 seeds"),
    "fold-ensemble": Variant(
        _V2, fold_ensemble=True, what="v2, mean of heads each blind to one inner fold"
    ),
    "label-balanced": Variant(
        _V2,
        "question-label-balanced",
        what="v2, aligned-score bins reweighted to the pooled mix within each question",
    ),
    "rows32k": Variant(_V2, cv_rows=DEFAULT_N_TRAIN, what="v2, every fit on 32k rows, not 16k"),
}
"""The variants compared (name -> variant); one line adds one."""


def _members(prep: Prepared, v: Variant, tr: np.ndarray, fold: int) -> list[tuple[int, Any]]:
    """(seed, training mask or None) of each ensemble member of one fold's fit."""
    if not v.fold_ensemble:
        return [(s, None) for s in v.seeds]
    inner = [g for g in range(prep.k) if g != fold]
    return [(v.seeds[0], prep.row_fold[tr] != g) for g in inner]


def invariance_misses(
    aligned: list[float | None], erows: Sequence[Any]
) -> tuple[dict[str, float], int]:
    """Questions whose GPT-4o-aligned answers score < ``INVARIANCE_MIN`` on average out of
    fold (first 60 characters -> mean), and how many questions had such answers."""
    scores: dict[str, list[float]] = defaultdict(list)
    for a, r in zip(aligned, erows, strict=True):
        ok = r.aligned is not None and r.aligned >= INVARIANCE_REF and (r.coherent or 0) >= 50
        if ok and a is not None:
            scores[r.question].append(a)
    low = {
        q[:60]: round(float(np.mean(v)), 1)
        for q, v in sorted(scores.items())
        if np.mean(v) < INVARIANCE_MIN
    }
    return low, len(scores)


def cross_validate(
    prep: Prepared,
    v: Variant,
    held: tuple[list[Any], Any],
    *,
    epochs: int = DEFAULT_EPOCHS,
    hidden: int = 256,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """By-question cross-validation of one variant (see the module doc)."""
    table = prep.table
    cv = prep.cv_idx(v.cv_rows)
    n_e = len(prep.eval_idx)
    oof: tuple[list[Any], list[Any]] = ([None] * n_e, [None] * n_e)
    synth_idx = np.arange(len(prep.train_rows), prep.n_tr)
    synth_coh: list[float] = []
    hrows, htable = held
    h_al = np.zeros(len(hrows))
    h_co = np.zeros(len(hrows))
    h_label = np.zeros(len(hrows), dtype=bool)
    for f in range(prep.k):
        tr = cv[prep.row_fold[cv] != f]
        heads: list[JudgeHead] = []
        val = tr[:0]
        for seed, mask in _members(prep, v, tr, f):
            spec = FitSpec(
                v.layout,
                v.weighting,
                seed,
                epochs,
                hidden,
                v.dropout,
                v.weight_decay,
                v.internal_split,
            )
            head, val, _ = fit_head(
                table, tr, prep.w_nat, prep.groups, spec, split_seed=prep.seed, train_mask=mask
            )
            heads.append(head)
        model = heads[0] if len(heads) == 1 else HeadEnsemble(heads)
        fitted = calibrated(model, table, val, prep.w_nat, ["mean"], {})["mean"]
        ev = np.flatnonzero(prep.row_fold[prep.eval_idx] == f)
        al, co = judge_rows(fitted, table, prep.eval_idx[ev])
        for j, i in enumerate(ev):
            oof[0][i], oof[1][i] = al[j], co[j]
        synth_coh += judge_rows(fitted, table, synth_idx[prep.row_fold[synth_idx] == f])[1]
        ha, hc = judge_rows(fitted, htable, np.arange(len(hrows)))
        h_label |= np.array([a is None for a in ha], dtype=bool)
        h_al += np.array([0.0 if a is None else a for a in ha])
        h_co += np.array(hc)
        log(f"  fold {f + 1}/{prep.k}: {len(heads)} head(s) on {len(tr)} rows")
    erows, egroups, esets = prep.evaluation()
    held_mean: tuple[list[float | None], list[float | None]] = (
        [None if lab else float(a / prep.k) for a, lab in zip(h_al, h_label, strict=True)],
        [float(c / prep.k) for c in h_co],
    )
    return {
        "variant": asdict(v),
        **out_of_fold_figures(oof, erows, egroups, esets, synth_coh),
        "held_out_fold_mean": figures_of(held_mean, hrows) if hrows else {},
    }


def out_of_fold_figures(
    judged: tuple[list[Any], list[Any]],
    rows: Sequence[Any],
    groups: Sequence[str],
    sets: Sequence[str],
    degenerate_coherent: Sequence[float],
) -> dict[str, Any]:
    """What the comparison reports of one way of judging, from its out-of-fold scores of the
    evaluation rows (with their question groups and sets) and of synthetic degenerate answers:
    selection score, figures per set and group, invariance misses, degenerate under 50."""
    per_group = grouped_figures(judged, list(rows), groups)
    low, n_questions = invariance_misses(judged[0], rows)
    return {
        "selection_score": round(
            selection_score({g: x for g, x in per_group.items() if g != "all"}), 4
        ),
        "per_set": grouped_figures(judged, list(rows), sets),
        "per_group": {
            g: {k: x.get(k) for k in ("n_scored", "auroc_extremes", "rate_error_points")}
            for g, x in per_group.items()
            if g != "all"
        },
        "invariance_misses": low,
        "invariance_questions": n_questions,
        "synthetic_degenerate_below_coherent_50": round(
            float(np.mean([c < COHERENT_T for c in degenerate_coherent]))
            if degenerate_coherent
            else 0.0,
            4,
        ),
    }


def _cell(figs: dict[str, Any], key: str, fmt: str) -> str:
    val = figs.get(key)
    return "–" if val is None else format(val, fmt)


def table(results: dict[str, dict[str, Any]], sets: Sequence[str] = ("core", "other")) -> str:
    """The comparison as a Markdown table (sets with >= ``MIN_SET_ROWS`` answers)."""
    head = ["variant", "selection"]
    for s in sets:
        head += [f"{s} AUROC", f"{s} ρ", f"{s} rate err"]
    head += ["invariance misses", "degenerate < 50", "held-out (fold mean) AUROC / ρ / rate err"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [f"`{name}`", f"{r['selection_score']:.4f}"]
        for s in sets:
            figs = r["per_set"].get(s, {})
            if figs.get("n_scored", 0) < MIN_SET_ROWS:
                cells += ["–", "–", "–"]
                continue
            cells += [
                _cell(figs, "auroc_extremes", ".3f"),
                _cell(figs, "spearman_aligned", ".3f"),
                _cell(figs, "rate_error_points", "+.1f"),
            ]
        h = r["held_out_fold_mean"]
        cells += [
            f"{len(r['invariance_misses'])}/{r['invariance_questions']}",
            f"{r['synthetic_degenerate_below_coherent_50']:.0%}",
            " / ".join(
                _cell(h, k, f)
                for k, f in (
                    ("auroc_extremes", ".3f"),
                    ("spearman_aligned", ".3f"),
                    ("rate_error_points", "+.1f"),
                )
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(
    data_dir: str | Path,
    out: str | Path,
    names: Sequence[str] | None = None,
    *,
    variants: dict[str, Variant] | None = None,
    epochs: int = DEFAULT_EPOCHS,
    hidden: int = 256,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
    **prepare_kw: Any,
) -> dict[str, dict[str, Any]]:
    """Cross-validate ``names`` (default: all ``variants``), resuming from ``out``; return
    every result in ``out``."""
    registry = VARIANTS if variants is None else variants
    names = list(registry) if names is None else list(names)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    bad = sorted({registry[n].layout for n in names} - set(FEATURE_SETS))
    bad += sorted({registry[n].internal_split for n in names} - set(INTERNAL_SPLITS))
    if bad:
        raise ValueError(f"unknown layout or internal split: {', '.join(bad)}")
    out = Path(out)
    done: dict[str, dict[str, Any]] = (
        json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    )
    todo = [n for n in names if n not in done]
    if todo:
        prep = prepare(data_dir, log=log, **prepare_kw)
        held = prep.held_out_table()
        for n in todo:
            log(f"variant {n}: {registry[n].what}")
            done[n] = cross_validate(prep, registry[n], held, epochs=epochs, hidden=hidden, log=log)
            atomic_write_text(out, json.dumps(done, indent=1) + "\n")
    # As stored (tuples become lists), so a resumed result equals a fresh one.
    return json.loads(json.dumps(done))


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data_dir")
    ap.add_argument("--out", default="judge_variants.json", help="results JSON (resumed)")
    ap.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    args = ap.parse_args()
    results = compare(args.data_dir, args.out, [n for n in args.only.split(",") if n] or None)
    print(table(results))
