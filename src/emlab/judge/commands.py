"""``emlab judge ...``: validate a judge against reference scores, (re)train the offline head."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from emlab.backends import JUDGE_BACKENDS, describe
from emlab.config import JudgeConfig, from_options
from emlab.store import check_output

app = typer.Typer(
    help="Judge answers and check judges against reference scores.", no_args_is_help=True
)


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


COLUMNS = (
    ("n", "n"),
    ("auroc_extremes", "AUROC<30|>=70"),
    ("auroc_all", "AUROC<30|all"),
    ("spearman_aligned", "rho_aligned"),
    ("spearman_coherent", "rho_coherent"),
    ("agreement_at_30", "agree@30"),
    ("misalignment_rate", "rate"),
    ("misalignment_rate_ref", "rate_ref"),
    ("rate_error_points", "diff_pts"),
    ("share_outside_range", "outside_range"),
)


NAME_WIDTH = 44


def _short(name: str) -> str:
    """Sources are long ``owner/repo@path`` strings; keep both ends, which tell them apart."""
    if len(name) <= NAME_WIDTH:
        return name
    half = (NAME_WIDTH - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _table(title: str, groups: dict[str, dict[str, Any]]) -> str:
    groups = {_short(k): v for k, v in groups.items()}
    width = max([len(title), *(len(k) for k in groups)]) + 2
    head = title.ljust(width) + "".join(label.rjust(14) for _, label in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, figs in groups.items():
        lines.append(name.ljust(width) + "".join(_fmt(figs.get(k)).rjust(14) for k, _ in COLUMNS))
    return "\n".join(lines)


@app.command("validate")
def validate_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV, CSV.GZ or JSONL with question, answer, "
            "aligned, coherent[, source, question_id]."
        ),
    ],
    backend: Annotated[str, typer.Option(help=describe(JUDGE_BACKENDS) + ".")] = next(
        iter(JUDGE_BACKENDS)
    ),
    model: Annotated[str | None, typer.Option(help="Judge model (openai/hf).")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N rows (N >= 1).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write all figures here.")
    ] = None,
) -> None:
    """Score FILE with a judge and print how well it agrees with the reference scores."""
    from emlab.judge import make_judge, validate
    from emlab.judge.data import read_rows

    cfg = from_options(JudgeConfig, {"backend": backend, "model": model, "base_url": base_url})
    if json_out is not None:
        check_output(json_out, "--json")
    rows = read_rows(file)
    rows = rows[:limit] if limit is not None else rows
    judge = make_judge(cfg)

    def progress(done: int, total: int) -> None:
        print(f"\rjudged {done}/{total}", end="", file=sys.stderr, flush=True)

    res = validate(judge, rows, progress=progress)
    print(file=sys.stderr)
    typer.echo(f"judge: {res['judge']}  rows: {res['n_rows']}  errors: {res['n_errors']}")
    if res["first_error"]:
        typer.echo(f"first error: {res['first_error']}")
    if res["overall"] is not None:
        share = res["overall"].get("share_outside_range")
        if share is not None:
            typer.echo(
                f"outside the judge's validated range: {share:.1%} of judged answers"
                + (" (more than 10%: figures extrapolate)" if share > 0.10 else "")
            )
        typer.echo(_table("overall", {"all": res["overall"]}))
        typer.echo()
        typer.echo(_table("source", res["per_source"]))
        typer.echo()
        typer.echo(_table("question", res["per_question"]))
    if json_out:
        json_out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


@app.command("train")
def train_cmd(
    data_dir: Annotated[Path, typer.Argument(help="Folder of *.csv.gz GPT-4o judgments.")],
    out: Annotated[
        Path | None, typer.Option(help="Weights file (default: the shipped one).")
    ] = None,
    n_train: Annotated[
        int, typer.Option(help="Training rows (stratified sample); default: the shipped head's.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of sampling and training.")] = 0,
    epochs: Annotated[
        int, typer.Option(help="Most training epochs (best internal epoch kept); default: shipped.")
    ] = 0,
    cached_only: Annotated[
        bool, typer.Option(help="Train only on rows whose embeddings are already cached.")
    ] = False,
) -> None:
    """Distil the offline judge's head from reference judgments (cross-validated by question);
    prints the by-question figures per question set and the held-out-source figures."""
    from emlab.judge.distill.train import DEFAULT_EPOCHS, DEFAULT_N_TRAIN, train_offline
    from emlab.judge.offline import HEAD_FILE

    card = train_offline(
        data_dir,
        out or HEAD_FILE,
        n_train=n_train or DEFAULT_N_TRAIN,
        seed=seed,
        epochs=epochs or DEFAULT_EPOCHS,
        cached_only=cached_only,
    )
    typer.echo(f"chosen by question: {card['by_question']['chosen']}")
    typer.echo(_table("unseen questions, set", card["by_question"]["per_set"]))
    typer.echo()
    typer.echo(_table("held-out source", card["held_out"]))
