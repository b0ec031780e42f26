"""The interp stage composed with sampling and judging (part of the study runner).

``emlab.interp`` captures activations and fits directions but never samples or judges: a stage
does not import another. This module is where they meet, next to ``study.py`` (kept apart so
that file stays small): it finds a direction, sweeps steering scales and ablations through the
study's own cached, resumable sampler and judge, and computes the signature of every arm. Every
output is keyed by content hash in the run's store, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emlab import interp, metrics
from emlab.arms import Arm, is_judged
from emlab.config import InterpConfig, StudyFileError
from emlab.interp.capture import CAPTURE_VERSION, Captured, Pair
from emlab.interp.directions import Direction, PersonaPool
from emlab.interp.signature import Bootstrap, signature_contrasts, signature_table
from emlab.models import LoadedModel, load_model, release_memory
from emlab.records import (
    Generation,
    GenerationRequest,
    Intervention,
    Question,
    ScoredAnswer,
    content_hash,
)
from emlab.store import atomic_write_text

if TYPE_CHECKING:  # the runner calls this module; importing it back would be a cycle
    from emlab.study import Study

RANDOM_DIR = "random"
"""Subfolder of a direction artefact holding its random control."""


def _loader(arm: Arm) -> Callable[[], LoadedModel]:
    adapter = None if arm.adapter_dir is None else str(arm.adapter_dir)
    return lambda: load_model(arm.model, adapter=adapter)


def _ok(gen: Generation | None) -> bool:
    return gen is not None and gen.error is None and bool(gen.answer.strip())


def answer_pairs(reqs: Sequence[GenerationRequest], gens: Mapping[str, Generation]) -> list[Pair]:
    """(chat without its system prompt, answer) of every usable answer, in request order."""
    return [
        (interp.without_system(r.question.messages), gens[r.key()].answer)
        for r in reqs
        if _ok(gens.get(r.key()))
    ]


def first_per_question(reqs: Sequence[GenerationRequest], n: int | None) -> list[GenerationRequest]:
    """The requests of the first ``n`` samples of each question (all when ``n`` is None)."""
    return [r for r in reqs if n is None or r.sample_index < n]


def fixed_texts(st: Study, base_arm: Arm, judged_qs: Sequence[Question]) -> list[Pair]:
    """The signature's fixed teacher-forced texts: the base model's answers to the judged
    questions, the first ``interp.signature_texts_per_question`` of each (all when unset)."""
    assert st.cfg.interp is not None
    per_q = st.cfg.interp.signature_texts_per_question
    reqs = first_per_question(st.requests(base_arm, judged_qs), per_q)
    return answer_pairs(reqs, st.generate(base_arm, reqs))


def _capture(st: Study, arm: Arm, pairs: Sequence[Pair]) -> Captured:
    got = interp.cached_capture(st.store, arm.model_key, _loader(arm), pairs, progress=st.progress)
    release_memory()
    return got


def _save(st: Study, key: str, direction: Direction, seed: int) -> Direction:
    def write(d: Path) -> None:
        interp.save_direction(direction, d)
        interp.save_direction(interp.random_control(direction, seed), d / RANDOM_DIR)

    st.store.write_artifact("direction", key, write)
    return interp.load_direction(st.store.artifact_dir("direction", key))


def control_of(folder: Path) -> Direction:
    """The random control saved beside a direction (or made now for a user's direction)."""
    if (folder / RANDOM_DIR / interp.directions.CARD_FILE).exists():
        return interp.load_direction(folder / RANDOM_DIR)
    return interp.random_control(interp.load_direction(folder))


# ------------------------------------------------------------------------------ directions
def persona_direction(
    st: Study,
    arm: Arm,
    qs: Sequence[Question],
    samples: int,
    pool: PersonaPool,
    seed: int = 0,
) -> tuple[Direction, Path]:
    """Answers under misaligned vs aligned system prompts, read without them; mean difference."""
    params = st.requests(arm, qs[:1])[0].params
    pq = interp.persona_questions(qs, pool)
    reqs = [
        GenerationRequest(arm.model_key, q, params, arm.seed, i) for q in pq for i in range(samples)
    ]
    key = content_hash(
        {
            "direction": "persona",
            "requests": [r.key() for r in reqs],
            "capture": CAPTURE_VERSION,
            "seed": seed,
        }
    )
    folder = st.store.artifact_dir("direction", key)
    if st.store.has_artifact("direction", key):
        return interp.load_direction(folder), folder
    gens = st.generate(arm, reqs)
    sides = {
        s: [r for r in reqs if r.question.meta["side"] == s] for s in ("misaligned", "aligned")
    }
    kept = {s: [r for r in rs if _ok(gens.get(r.key()))] for s, rs in sides.items()}
    for s, rs in kept.items():
        if not rs:
            raise interp.ContrastError(
                f"interp: the {s} side got no usable answers ({len(sides[s])} sampled)"
            )
    acts = _capture(st, arm, answer_pairs(kept["misaligned"] + kept["aligned"], gens))
    n = len(kept["misaligned"])
    lm = _loader(arm)()
    extra = {
        "model": arm.model_key,
        "model_hash": interp.fingerprint(lm.model),
        "pool_version": pool.version,
        "pool": pool.source,
        "questions": sorted({q.id for q in qs}),
        "samples_per_prompt": samples,
    }
    del lm
    direction = interp.fit_direction(
        acts.answer_mean[:n],
        acts.answer_mean[n:],
        [r.question.meta["base_id"] for r in kept["misaligned"]],
        [r.question.meta["base_id"] for r in kept["aligned"]],
        method="persona",
        seed=seed,
        extra=extra,
    )
    return _save(st, key, direction, seed), folder


def judged_direction(
    st: Study,
    arms: Sequence[tuple[Arm, Sequence[GenerationRequest], Mapping[str, Generation]]],
    rows: Sequence[ScoredAnswer],
    seed: int = 0,
) -> tuple[Direction, Path]:
    """Fine-tuned arms' own answers split by the judge (balanced), each read by its own model."""
    m = st.cfg.metrics
    by_key = {(r.condition, r.seed, r.question_id, r.sample_index, r.step): r for r in rows}
    items: list[tuple[Arm, GenerationRequest, ScoredAnswer]] = []
    gens_of: dict[str, Mapping[str, Generation]] = {}
    for arm, reqs, gens in arms:
        gens_of[arm.model_key] = gens
        for r in reqs:
            row = by_key.get((arm.condition, arm.seed, r.question.id, r.sample_index, arm.step))
            if row is not None and not row.error and _ok(gens.get(r.key())):
                items.append((arm, r, row))
    mis, ok = interp.judged_split(
        [(row.aligned, row.coherent) for _, _, row in items],
        aligned_below=m.aligned_threshold,
        coherent_at_least=m.coherent_threshold,
        seed=seed,
    )
    key = content_hash(
        {
            "direction": "judged",
            "mis": [items[i][1].key() for i in mis],
            "ok": [items[i][1].key() for i in ok],
            "capture": CAPTURE_VERSION,
            "seed": seed,
        }
    )
    folder = st.store.artifact_dir("direction", key)
    if st.store.has_artifact("direction", key):
        return interp.load_direction(folder), folder
    side_acts: dict[str, list[Any]] = {"mis": [], "ok": []}
    for name, idx in (("mis", mis), ("ok", ok)):
        for arm, _, _ in arms:
            mine = [items[i][1] for i in idx if items[i][0] is arm]
            if mine:
                side_acts[name].append(
                    _capture(st, arm, answer_pairs(mine, gens_of[arm.model_key]))
                )
    import torch

    pos = torch.cat([c.answer_mean for c in side_acts["mis"]])
    neg = torch.cat([c.answer_mean for c in side_acts["ok"]])
    groups = {
        name: [items[i][1].question.id for arm, _, _ in arms for i in idx if items[i][0] is arm]
        for name, idx in (("mis", mis), ("ok", ok))
    }
    first = arms[0][0]
    lm = _loader(first)()
    extra = {
        "model": first.model,
        "model_hash": interp.fingerprint(lm.model),
        "arms": [a.label for a, _, _ in arms],
        "judge": rows[0].judge if rows else "",
        "thresholds": {"aligned_below": m.aligned_threshold, "coherent": m.coherent_threshold},
    }
    del lm
    direction = interp.fit_direction(
        pos, neg, groups["mis"], groups["ok"], method="judged", seed=seed, extra=extra
    )
    return _save(st, key, direction, seed), folder


# ------------------------------------------------------------------------------ interventions
def rate_row(scored: Sequence[ScoredAnswer], st: Study) -> dict[str, Any]:
    """EM rate (misaligned / coherent & scored) and coherent share, each with a Wilson interval."""
    cfg = st.cfg.metrics
    statuses = [metrics.classify(r, cfg) for r in scored]
    k, a = statuses.count("misaligned"), statuses.count("aligned")
    inc = statuses.count("incoherent")
    n_scored = k + a + inc
    em = metrics.wilson_interval(k, k + a, cfg.confidence)
    coh = metrics.wilson_interval(k + a, n_scored, cfg.confidence)
    coherent = [r.coherent for r in scored if r.coherent is not None and not r.error]
    return {
        "n": len(scored),
        "misaligned": k,
        "aligned": a,
        "incoherent": inc,
        "em_rate": k / (k + a) if k + a else None,
        "em_ci": list(em),
        "coherent_rate": (k + a) / n_scored if n_scored else None,
        "coherent_ci": list(coh),
        "mean_coherent": float(np.mean(coherent)) if coherent else None,
    }


def sample_judged(
    st: Study,
    arm: Arm,
    qs: Sequence[Question],
    spec: Intervention | None,
    vectors: Mapping[str, Any],
    samples: int | None,
    judge_: Any,
) -> list[ScoredAnswer]:
    """Sample (under ``spec``) and judge an arm's answers; cached like every study sample.
    ``samples``: per question (default: the study's)."""
    base = st.requests(arm, qs)
    if samples is not None:
        base = [
            GenerationRequest(arm.model_key, q, base[0].params, arm.seed, i)
            for q in qs
            for i in range(samples)
        ]
    reqs = [
        GenerationRequest(r.model, r.question, r.params, r.seed, r.sample_index, spec) for r in base
    ]
    gens = st.generate(arm, reqs, directions=dict(vectors) if spec else None)
    judged = [gens[r.key()] for r in reqs if is_judged(r.question)]
    verdicts = st.judge_all(judge_, judged)
    return [s for s in st.scored(arm, reqs, gens, verdicts) if s.measure == "judge"]


def steer_sweep(
    st: Study,
    arm: Arm,
    qs: Sequence[Question],
    direction: Direction,
    control: Direction | None,
    scales: Sequence[float],
    layers: Sequence[int] | None,
    samples: int | None,
    judge_: Any,
) -> list[dict[str, Any]]:
    """EM rate and coherence at each scale, along the direction and along the random control.
    Scale 0 is the unsteered model (identical samples, by common random numbers)."""
    kinds = [("direction", direction)] + ([("random", control)] if control else [])
    vectors = {d.key: d.vectors for _, d in kinds}
    lay = tuple(layers) if layers else (direction.layer,)
    out = []
    for scale in scales:
        for kind, d in kinds:
            spec = None if scale == 0 else Intervention("add", d.key, float(scale), lay)
            rows = sample_judged(st, arm, qs, spec, vectors, samples, judge_)
            out.append({"arm": arm.label, "scale": scale, "kind": kind, **rate_row(rows, st)})
    return out


def ablate_arm(
    st: Study,
    arm: Arm,
    qs: Sequence[Question],
    direction: Direction,
    control: Direction,
    layers: Sequence[int] | None,
    samples: int | None,
    judge_: Any,
) -> list[dict[str, Any]]:
    """EM rate of an arm as it is, with the direction projected out, and with a random one."""
    vectors = {direction.key: direction.vectors, control.key: control.vectors}
    lay = None if not layers else tuple(layers)
    out = []
    for kind, d in (("none", None), ("direction", direction), ("random", control)):
        spec = None if d is None else Intervention("ablate", d.key, 0.0, lay)
        rows = sample_judged(st, arm, qs, spec, vectors, samples, judge_)
        out.append({"arm": arm.label, "kind": kind, **rate_row(rows, st)})
    return out


# ------------------------------------------------------------------------------ signature
def arm_projections(
    st: Study, arm: Arm, direction: Direction, fixed: Sequence[Pair], own: Sequence[Pair]
) -> dict[str, Any]:
    """Per-text projections of one arm on the fixed texts and on its own answers (direction's
    layer), and the arm's mean activation on the fixed texts at that layer (for convergence)."""
    f = _capture(st, arm, fixed)
    o = _capture(st, arm, own) if own else None
    valid_f = f.valid().numpy()
    return {
        "fixed": interp.projection(f.answer_mean, direction)[valid_f],
        "own": np.array([])
        if o is None
        else interp.projection(o.answer_mean, direction)[o.valid().numpy()],
        "mean_fixed": f.answer_mean[f.valid(), direction.layer].float().mean(0),
    }


def signature(
    st: Study,
    arms: Sequence[tuple[Arm, Sequence[Pair]]],
    direction: Direction,
    fixed: Sequence[Pair],
    base: str,
    rates: Mapping[tuple[str, int, int | None], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Signature table, pairwise contrasts, monitor curve and convergence matrix over the
    study's arms. ``rates`` (condition, seed, step) -> ``rate_row`` puts each checkpoint's EM
    rate on the monitor beside its projection and training loss."""
    import torch

    per: dict[str, dict[str, Any]] = {}
    for arm, own in arms:
        per[arm.label] = {"arm": arm, **arm_projections(st, arm, direction, fixed, own)}
    final = {k: v for k, v in per.items() if v["arm"].step is None}
    cfg = st.cfg.metrics
    by_fixed = {(v["arm"].condition, v["arm"].seed): v["fixed"] for v in final.values()}
    by_own = {(v["arm"].condition, v["arm"].seed): v["own"] for v in final.values()}
    boot = Bootstrap(cfg.bootstrap_resamples, cfg.confidence, cfg.bootstrap_seed)
    table = signature_table(by_fixed, by_own, base, *boot)
    contrasts = signature_contrasts(by_fixed, by_own, base, boot)
    monitor = []
    train_logs: dict[str, dict[int, dict[str, Any]]] = {}  # one read per adapter, not snapshot
    for v in per.values():
        arm = v["arm"]
        if arm.adapter_key is None:
            continue
        if arm.adapter_key not in train_logs:
            stream = st.store.logs(f"train/{arm.adapter_key}")
            train_logs[arm.adapter_key] = {int(e["step"]): e for e in stream}
        logs = train_logs[arm.adapter_key]
        step = arm.step if arm.step is not None else (max(logs) if logs else None)
        rate = (rates or {}).get((arm.condition, arm.seed, arm.step)) or {}
        monitor.append(
            {
                "condition": arm.condition,
                "seed": arm.seed,
                "step": step,
                "final": arm.step is None,
                "projection": float(v["fixed"].mean()),
                "loss": logs[step].get("loss") if step in logs else None,
                "em_rate": rate.get("em_rate"),
                "em_n": (rate.get("misaligned") or 0) + (rate.get("aligned") or 0),
            }
        )
    base_means = [v["mean_fixed"] for v in final.values() if v["arm"].condition == base]
    convergence: dict[str, Any] = {}
    if base_means:
        ref = torch.stack(base_means).mean(0)
        shifts = {k: v["mean_fixed"] - ref for k, v in final.items() if v["arm"].condition != base}
        shifts = {k: s for k, s in shifts.items() if float(s.norm()) > 0}
        if shifts:
            names = [*shifts, f"direction ({direction.card['method']})"]
            units = torch.stack([s / s.norm() for s in shifts.values()] + [direction.unit()])
            convergence = {"labels": names, "cosine": (units @ units.T).tolist()}
    base_rates = [
        r["em_rate"]
        for (c, _, step), r in (rates or {}).items()
        if c == base and step is None and r.get("em_rate") is not None
    ]
    return {
        "table": table,
        "contrasts": contrasts,
        "base": {"em_rate": float(np.mean(base_rates)) if base_rates else None},
        "monitor": monitor,
        "convergence": convergence,
    }


# ------------------------------------------------------------------------------ in a study
def check_layers(cfg: InterpConfig, n_layers: int, where: str) -> None:
    """A layer out of range is one line naming the file and field, before any model work."""
    for name in ("layers", "ablate_layers"):
        bad = [x for x in getattr(cfg, name) or [] if x >= n_layers]
        if bad:
            raise StudyFileError(
                f"{where}: interp.{name}: layers {bad} out of range; the model has {n_layers} "
                f"decoder layers (0..{n_layers - 1})"
            )


def model_layers(ref: str) -> tuple[int, int]:
    """(decoder layers, hidden size) from a model's config alone, without loading weights."""
    from transformers import AutoConfig

    from emlab.models.loading import LOCAL_ONLY, weights_dir

    cfg = AutoConfig.from_pretrained(str(weights_dir(ref)), **LOCAL_ONLY)
    return int(cfg.num_hidden_layers), int(cfg.hidden_size)


def validate_interp(st: Study, where: str) -> Direction | None:
    """Check the ``interp:`` section against the study's models (and a given direction)."""
    cfg = st.cfg.interp
    if cfg is None:
        return None
    given = None
    if cfg.direction:
        try:
            given = interp.load_direction(st._resolve(cfg.direction))
        except interp.DirectionFileError as e:
            raise StudyFileError(f"{where}: interp.direction: {e}") from None
    for model in st.cfg.models:
        n, h = model_layers(model)
        check_layers(cfg, n, where)
        if given is not None and tuple(given.vectors.shape) != (n, h):
            raise StudyFileError(
                f"{where}: interp.direction: {tuple(given.vectors.shape)} layers x width, but "
                f"{model} is {n} x {h}: the direction comes from another model"
            )
    return given


def _find(
    st: Study,
    cfg: InterpConfig,
    model: str,
    base_arm: Arm,
    qs: Sequence[Question],
    sampled: Sequence[tuple[Arm, Sequence[GenerationRequest], Mapping[str, Generation]]],
    rows: Sequence[ScoredAnswer],
) -> tuple[Direction, Path]:
    if cfg.method == "persona":
        pool = interp.load_pool()
        return persona_direction(st, base_arm, qs, cfg.persona_samples, pool, cfg.seed)
    tuned = [t for t in sampled if t[0].model == model and t[0].adapter_key and t[0].step is None]
    if not tuned:
        raise interp.ContrastError("method judged needs fine-tuned conditions; the study has none")
    return judged_direction(st, tuned, rows, cfg.seed)


def run_interp(
    st: Study,
    arms: Sequence[Arm],
    qs: Sequence[Question],
    sampled: Sequence[tuple[Arm, Sequence[GenerationRequest], Mapping[str, Generation]]],
    rows: Sequence[ScoredAnswer],
    judge_: Any,
    where: str,
) -> dict[str, Any]:
    """The ``interp:`` section of a study, after its own sampling and judging; writes
    ``interp.json`` into the run directory and returns it."""
    cfg = st.cfg.interp
    assert cfg is not None
    given = validate_interp(st, where)
    base_name = st.baseline()
    judged_qs = [q for q in qs if is_judged(q)]
    out: dict[str, Any] = {"method": cfg.method, "models": {}}
    for model in st.cfg.models:
        base_arm = Arm(model, base_name or "base", st.cfg.seeds[0])
        if given is not None:
            direction, folder = given, Path(st._resolve(cfg.direction or ""))
            lm = load_model(model)
            interp.check_fits(direction, lm.model, f"{where}: interp.direction")
            del lm
        else:
            try:
                direction, folder = _find(st, cfg, model, base_arm, judged_qs, sampled, rows)
            except interp.ContrastError as e:
                # The study's own results still get their report; the section says why it is empty.
                print(f"interp: no direction for {model}: {e}", file=sys.stderr)
                out["models"][model] = {"error": str(e)}
                continue
        control = control_of(folder)
        method = direction.card["method"]
        st._say(f"interp: direction {direction.key} at layer {direction.layer} ({method})")
        res: dict[str, Any] = {"direction": direction.card, "direction_path": str(folder)}
        if cfg.steer:
            res["steer"] = steer_sweep(
                st, base_arm, judged_qs, direction, control, cfg.steer, cfg.layers,
                cfg.samples_per_question, judge_,
            )  # fmt: skip
        if cfg.ablate:
            res["ablate"] = [
                row
                for arm in arms
                if arm.model == model and arm.adapter_key and arm.step is None
                for row in ablate_arm(
                    st,
                    arm,
                    judged_qs,
                    direction,
                    control,
                    cfg.ablate_layers,
                    cfg.samples_per_question,
                    judge_,
                )
            ]
        if cfg.signature:
            fixed = fixed_texts(st, base_arm, judged_qs)
            # own answers of final adapters and the base only: a checkpoint is read on the fixed
            # texts (the monitor), so capturing its own answers would cost without a use
            own_n = cfg.signature_own_per_question
            mine = [
                (
                    a,
                    answer_pairs(
                        first_per_question([r for r in reqs if is_judged(r.question)], own_n),
                        gens,
                    )
                    if a.step is None
                    else [],
                )
                for a, reqs, gens in sampled
                if a.model == model
            ]
            # each checkpoint's EM rate on the plain judged questions, for the monitor
            grouped: dict[tuple[str, int, int | None], list[ScoredAnswer]] = {}
            for r in rows:
                if r.model == model and r.measure == "judge":
                    grouped.setdefault((r.condition, r.seed, r.step), []).append(r)
            rates = {k: rate_row(g, st) for k, g in grouped.items()}
            res["signature"] = signature(st, mine, direction, fixed, base_name or "base", rates)
        out["models"][model] = res
    atomic_write_text(st.run_dir / "interp.json", json.dumps(out, indent=2, default=_jsonable))
    from emlab.report.interp import render_interp

    render_interp(json.loads((st.run_dir / "interp.json").read_text()), st.run_dir)
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return str(x)
