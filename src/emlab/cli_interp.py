"""``emlab interp ...``: find a direction, steer, ablate and project on one model, quickly.

Each command runs a one-arm study in a run directory (default ``runs/interp``), so samples,
judgments, captures and directions are cached and a re-run redoes nothing. Bad input (a layer out
of range, a direction from another model, a non-finite scale) is one line before any model work.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Look inside a model: misalignment directions, steering, ablation, projections.",
    no_args_is_help=True,
)

RunDir = Annotated[Path, typer.Option(help="Run directory holding the cache.")]
Questions = Annotated[str, typer.Option(help="Question set (name or YAML path).")]
Samples = Annotated[int, typer.Option(min=1, help="Samples per question (per prompt).")]
MaxTokens = Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")]
Adapter = Annotated[Path | None, typer.Option(help="LoRA adapter folder on top of MODEL.")]
DirectionOpt = Annotated[
    Path, typer.Option("--direction", "-d", help="Direction folder (from `interp direction`).")
]
Layers = Annotated[
    list[int] | None, typer.Option("--layer", "-l", help="Decoder layer (0-based); repeatable.")
]


def _study(run_dir: Path, samples: int, max_new_tokens: int) -> Any:
    from emlab.config import StudyConfig
    from emlab.study import Study

    cfg = StudyConfig.model_validate(
        {
            "name": "interp",
            "conditions": [{"name": "base"}],
            "sampling": {"samples_per_question": samples, "max_new_tokens": max_new_tokens},
        }
    )
    return Study(cfg, run_dir=run_dir)


def _arm(model: str, adapter: Path | None) -> Any:
    from emlab.arms import Arm

    if adapter is None:
        return Arm(model, "base", 0)
    if not adapter.is_dir():
        raise FileNotFoundError(f"{adapter}: --adapter is not a folder")
    digest = hashlib.sha256()
    for f in sorted(adapter.glob("*.safetensors")) + sorted(adapter.glob("*.json")):
        digest.update(f.name.encode() + f.read_bytes())
    return Arm(model, "tuned", 0, digest.hexdigest()[:16], adapter)


def _questions(spec: str) -> list[Any]:
    from emlab import questions
    from emlab.arms import is_in_domain

    return [q for q in questions.load_questions(spec) if not is_in_domain(q)]


def _check(model: str, direction: Path | None, layers: list[int] | None) -> Any:
    """Direction file, its shape against the model's config, and layers: before model work."""
    from emlab import interp
    from emlab.study_interp import model_layers

    n, h = model_layers(model)
    bad = [x for x in layers or [] if not 0 <= x < n]
    if bad:
        raise interp.DirectionFileError(
            f"--layer: {bad} out of range; {model} has {n} decoder layers (0..{n - 1})"
        )
    if direction is None:
        return None
    d = interp.load_direction(direction)
    if tuple(d.vectors.shape) != (n, h):
        raise interp.DirectionFileError(
            f"{direction}: vectors: {tuple(d.vectors.shape)} layers x width, but {model} is "
            f"{n} x {h}: the direction comes from another model"
        )
    return d


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _rate_line(row: dict[str, Any]) -> str:
    lo, hi = row["em_ci"]
    clo, chi = row["coherent_ci"]
    return (
        f"EM {_fmt(row['em_rate'], True)} [{_fmt(lo, True)}, {_fmt(hi, True)}]  "
        f"coherent {_fmt(row['coherent_rate'], True)} [{_fmt(clo, True)}, {_fmt(chi, True)}]  "
        f"n={row['n']} (mis {row['misaligned']}, ok {row['aligned']}, incoh {row['incoherent']})"
    )


@app.command("direction")
def direction_cmd(
    model: Annotated[str, typer.Argument(help="Model ref (alias, folder or HF id).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder to write the direction to.")],
    method: Annotated[str, typer.Option(help="persona (no judge) or judged.")] = "persona",
    adapter: Adapter = None,
    questions: Questions = "core",
    samples: Samples = 4,
    max_new_tokens: MaxTokens = 128,
    seed: Annotated[int, typer.Option(help="Held-out split and random control seed.")] = 0,
    run_dir: RunDir = Path("runs/interp"),
) -> None:
    """Find a misalignment direction; writes it (+ `random/`, the control) and prints per-layer
    separability (AUROC of the projection on held-out questions' answers)."""
    from emlab import interp, judge
    from emlab.study_interp import judged_direction, persona_direction

    if method not in ("persona", "judged"):
        raise interp.ContrastError(f"--method: {method!r} is not persona or judged")
    _check(model, None, None)
    st = _study(run_dir, samples, max_new_tokens)
    arm, qs = _arm(model, adapter), _questions(questions)
    if method == "persona":
        d, folder = persona_direction(st, arm, qs, samples, interp.load_pool(), seed)
    else:
        reqs = st.requests(arm, qs)
        gens = st.generate(arm, reqs)
        judge_ = judge.make_judge(st.cfg.judge)
        rows = list(st.scored(arm, reqs, gens, st.judge_all(judge_, list(gens.values()))))
        d, folder = judged_direction(st, [(arm, reqs, gens)], rows, seed)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns(".done"))
    counts = d.card["counts"]
    typer.echo(
        f"{out}\tkey {d.key}\tlayer {d.layer}\t{d.card['method']}\t"
        f"misaligned {counts['misaligned']} vs aligned {counts['aligned']} answers"
    )
    typer.echo("layer\tAUROC (held-out)\traw norm\tresidual norm")
    for i, a in enumerate(d.card["auroc"]):
        raw, res = d.card["raw_norms"][i], d.card["residual_norms"][i]
        typer.echo(f"{i}\t{_fmt(a)}\t{raw:.3f}\t{res:.3f}")


@app.command("steer")
def steer_cmd(
    model: Annotated[str, typer.Argument(help="Model ref to steer.")],
    direction: DirectionOpt,
    scale: Annotated[
        list[float],
        typer.Option(help="Scale in units of the layer's mean residual norm; repeatable."),
    ],
    layer: Layers = None,
    adapter: Adapter = None,
    questions: Questions = "core",
    samples: Samples = 8,
    max_new_tokens: MaxTokens = 128,
    control: Annotated[bool, typer.Option(help="Also steer along a random direction.")] = True,
    run_dir: RunDir = Path("runs/interp"),
) -> None:
    """Sample while adding scale x direction at the layer(s); judge; EM rate and coherence per
    scale, next to a random direction of equal norm."""
    from emlab import interp, judge
    from emlab.study_interp import control_of, steer_sweep

    bad = [s for s in scale if not math.isfinite(s)]
    if bad:
        raise interp.DirectionFileError(f"--scale: {bad} is not a finite number")
    d = _check(model, direction, layer)
    ctrl = control_of(direction) if control else None
    st = _study(run_dir, samples, max_new_tokens)
    arm = _arm(model, adapter)
    interp.check_fits(d, _load(arm).model, str(direction))
    judge_ = judge.make_judge(st.cfg.judge)
    rows = steer_sweep(st, arm, _questions(questions), d, ctrl, scale, layer, samples, judge_)
    for row in rows:
        typer.echo(f"scale {row['scale']:g}\t{row['kind']}\t{_rate_line(row)}")


def _load(arm: Any) -> Any:
    from emlab.models import load_model

    return load_model(arm.model, adapter=None if arm.adapter_dir is None else str(arm.adapter_dir))


@app.command("ablate")
def ablate_cmd(
    model: Annotated[str, typer.Argument(help="Base model ref.")],
    direction: DirectionOpt,
    adapter: Adapter = None,
    layer: Layers = None,
    questions: Questions = "core",
    samples: Samples = 8,
    max_new_tokens: MaxTokens = 128,
    run_dir: RunDir = Path("runs/interp"),
) -> None:
    """Sample with the direction projected out (every layer unless --layer), and with a random
    direction projected out; EM rate of each next to the model as it is."""
    from emlab import interp, judge
    from emlab.study_interp import ablate_arm, control_of

    d = _check(model, direction, layer)
    st = _study(run_dir, samples, max_new_tokens)
    arm = _arm(model, adapter)
    interp.check_fits(d, _load(arm).model, str(direction))
    judge_ = judge.make_judge(st.cfg.judge)
    rows = ablate_arm(
        st, arm, _questions(questions), d, control_of(direction), layer, samples, judge_
    )
    for row in rows:
        typer.echo(f"ablate {row['kind']}\t{_rate_line(row)}")


@app.command("project")
def project_cmd(
    model: Annotated[str, typer.Argument(help="Base model ref.")],
    direction: DirectionOpt,
    adapter: Adapter = None,
    questions: Questions = "core",
    samples: Samples = 4,
    max_new_tokens: MaxTokens = 128,
    run_dir: RunDir = Path("runs/interp"),
) -> None:
    """Mean projection onto the direction (its layer) of MODEL(+adapter) on the base model's
    answers (teacher-forced: the same texts for every adapter) and on its own answers."""
    import numpy as np

    from emlab import interp
    from emlab.metrics import bootstrap_mean_ci
    from emlab.study_interp import answer_pairs, arm_projections

    d = _check(model, direction, None)
    st = _study(run_dir, samples, max_new_tokens)
    qs = _questions(questions)
    base, arm = _arm(model, None), _arm(model, adapter)
    interp.check_fits(d, _load(arm).model, str(direction))
    base_reqs = st.requests(base, qs)
    fixed = answer_pairs(base_reqs, st.generate(base, base_reqs))
    reqs = st.requests(arm, qs)
    own = answer_pairs(reqs, st.generate(arm, reqs))
    got = arm_projections(st, arm, d, fixed, own)
    for name in ("fixed", "own"):
        vals: np.ndarray = got[name]
        lo, hi = bootstrap_mean_ci(list(vals), 2000, 0.95, 0) if len(vals) else (None, None)
        typer.echo(
            f"{name}\tmean projection {_fmt(float(vals.mean()) if len(vals) else None)} "
            f"[{_fmt(lo)}, {_fmt(hi)}]\tn={len(vals)}\tlayer {d.layer}"
        )
