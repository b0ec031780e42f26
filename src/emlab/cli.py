"""The ``emlab`` command line: thin wrappers over the Python API (``emlab.study``, the stages)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from emlab.errors import EXIT_CODES_HELP, ArgumentError

if TYPE_CHECKING:  # the CLI imports its commands' modules lazily, to start fast
    from emlab.summary import Summary

CLI_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Defaults the ``emlab`` command sets for its own process (see :func:`main`)."""

EXIT_FAILURES = 3
"""``emlab run``'s exit status when some answers failed to generate or to be judged."""

app = typer.Typer(
    help="emlab: a laboratory for emergent misalignment.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


RUN_EPILOG = (
    "Exit status: 0 when every answer was generated and judged; 2 on bad input (one line naming "
    "file, line and field, before any model work); 3 when any answer failed to generate or to be "
    "judged: the report is still written, one line gives the exact count, and a re-run retries "
    "only those answers. --allow-failures turns 3 into 0."
)

SeedsOption = Annotated[
    str | None,
    typer.Option(
        help="Only these of the study's seeds, e.g. 0 or 0,2 (a pilot; a later run of all "
        "seeds reuses its work)."
    ),
]
"""``--seeds`` of ``emlab run`` and ``emlab plan`` (checked by ``config.only_seeds``)."""


@app.command(epilog=RUN_EPILOG)
def run(
    study: Annotated[
        Path, typer.Argument(help="Study file (YAML), e.g. examples/quickstart.yaml.")
    ],
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<study name>).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: run only every N-th unit of work from I (one process per GPU); "
            "a final run without --shard writes the report."
        ),
    ] = None,
    allow_failures: Annotated[
        bool,
        typer.Option(
            help="Exit 0 even when some answers failed to generate or to be judged (the count "
            "is still printed and in the report)."
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the summary as JSON (for scripts) instead of tables."),
    ] = False,
    seeds: SeedsOption = None,
) -> None:
    """Run a whole study: build data, fine-tune, sample, judge, score, report. Resumes."""
    from emlab.study import run_study

    part = None
    if shard is not None:
        index, _, count = shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise typer.BadParameter(
                f"{shard!r}: expected I/N with 0 <= I < N, e.g. 0/4", param_hint="--shard"
            )
        part = (int(index), int(count))
    result = run_study(study, run_dir=run_dir, progress=not quiet, shard=part, seeds=seeds)
    if result.summary is not None:  # a shard has no summary; the final run prints it
        _print_summary(result.summary, str(result.run_dir), as_json)
    if not as_json:
        typer.echo(str(result.report or result.run_dir))
    if result.failures.get("total") and not allow_failures:
        raise typer.Exit(EXIT_FAILURES)


def _print_summary(summary: Summary, title: str, as_json: bool) -> None:
    from emlab.report.terminal import print_summary
    from emlab.runs import summary_json

    if as_json:
        typer.echo(summary_json(summary))
    else:
        print_summary(summary, title=title)


@app.command()
def show(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run directory, e.g. runs/quickstart.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (for scripts).")
    ] = False,
) -> None:
    """Print a finished run's results: per-arm rates, intervals, exclusions, comparisons."""
    from emlab.runs import load_run

    run = load_run(run_dir)
    _print_summary(run.summary, f"{run.name}: {run.path}", as_json)
    interp_file = run.path / "interp.json"
    if not as_json and interp_file.is_file():  # the interp section's tables, after the rates
        import json

        from emlab.report.terminal import console, interp_tables

        out = console()
        for item in interp_tables(json.loads(interp_file.read_text(encoding="utf-8"))):
            out.print(item)


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more finished run directories.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for the comparison's report and summary.")
    ] = Path("runs/compare"),
    force: Annotated[
        bool,
        typer.Option(help="Compare runs with different judges or thresholds (the report says so)."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the combined summary as JSON (for scripts).")
    ] = False,
) -> None:
    """Put several runs side by side in one table and report (refuses mixed judges/thresholds)."""
    from emlab.runs import compare_runs, load_run, write_comparison

    comp = compare_runs([load_run(p) for p in run_dirs], force=force)
    for line in comp.differences:
        typer.echo(f"warning: runs differ in {line}", err=True)
    report = write_comparison(comp, out)
    _print_summary(comp.summary, comp.info["study"], as_json)
    if not as_json:
        typer.echo(str(report))


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="csv or jsonl: one row per answer; inspect: one inspect log per arm "
            "(needs emlab[inspect]).",
        ),
    ] = "csv",
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="File (csv, jsonl) or folder (inspect); default: in RUN."),
    ] = None,
) -> None:
    """Export a finished run: every answer with its scores, status, judge and thresholds."""
    from emlab.export import export_run
    from emlab.runs import load_run

    typer.echo(str(export_run(load_run(run_dir), fmt, out)))


@app.command()
def plan(
    study: Annotated[
        Path, typer.Argument(help="Study file (YAML), e.g. examples/quickstart.yaml.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    seeds: SeedsOption = None,
) -> None:
    """Show a study's arms, answers, the smallest difference each comparison can detect and a
    run-time estimate, without training, sampling or judging anything."""
    import json
    import tempfile

    from emlab.config import load_study_file, only_seeds
    from emlab.preflight import preflight
    from emlab.study import Study

    cfg, node = load_study_file(study)
    cfg = only_seeds(cfg, study, seeds)
    # a scratch run directory: planning builds the training data, and must leave no run behind
    with tempfile.TemporaryDirectory(prefix="emlab-plan-") as scratch:
        preflight(cfg, study, node, scratch)  # what `emlab run` would refuse, plan refuses too
        result = Study(cfg, run_dir=scratch, base_dir=study.parent, progress=False).power_plan()
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.text())


@app.command()
def models(
    prepare: Annotated[
        str | None,
        typer.Option(help="Assemble, check and de-quantise this alias into the cache now."),
    ] = None,
) -> None:
    """List the embedded model aliases and whether each is installed."""
    from emlab.models import EMBEDDED, ModelNotFoundError, resolve_ref, weights_dir

    if prepare is not None:
        typer.echo(f"{prepare}\t{weights_dir(prepare)}")
        return
    for name, spec in EMBEDDED.items():
        try:
            src = resolve_ref(name)
            where = str(Path(src.path) / (src.gguf_file or ""))
        except ModelNotFoundError as e:
            where = f"missing ({e})"
        typer.echo(f"{name}\t{spec.description}\t{where}")


@app.command()
def finetune(
    model: Annotated[str, typer.Argument(help="Base model ref (alias, folder or HF id).")],
    dataset: Annotated[Path, typer.Argument(help="Chat JSONL (plain or .gz).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the adapter.")],
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    preset: Annotated[str | None, typer.Option(help="Recipe preset: paper or quick.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Effective batch (examples per step); overrides the preset.")
    ] = None,
    micro_batch_size: Annotated[
        int | None,
        typer.Option(
            help="Examples per forward pass; overrides the preset. Under accelerate launch each "
            "process needs at least one micro-batch a step: at most batch_size / processes."
        ),
    ] = None,
    gradient_checkpointing: Annotated[
        bool,
        typer.Option(
            help="Recompute activations in the backward pass: about half the peak memory, "
            "~1.3x the time, the same adapter."
        ),
    ] = False,
    start_from: Annotated[
        Path | None,
        typer.Option(
            help="A LoRA adapter folder to continue (its weights, a fresh optimiser and "
            "schedule): e.g. benign re-alignment of an organism on good answers."
        ),
    ] = None,
    kl_weight: Annotated[
        float | None,
        typer.Option(help="Add kl_weight x KL(base || tuned) on out-of-domain prompts."),
    ] = None,
    kl_prompts: Annotated[
        Path | None,
        typer.Option(help="YAML file `prompts: [...]` for the KL term (default: emlab's own)."),
    ] = None,
    steer: Annotated[
        Path | None,
        typer.Option(
            help="Direction folder (`emlab interp direction`) added to the residual stream "
            "while training: preventative steering. Needs --steer-scale."
        ),
    ] = None,
    steer_scale: Annotated[
        float | None,
        typer.Option(help="Multiple of --steer's direction, in units of the mean residual norm."),
    ] = None,
) -> None:
    """Fine-tune a LoRA adapter on one dataset (the study's train stage, on its own).

    The mitigation recipes of a study are options here too: --start-from, --kl-weight and
    --steer with --steer-scale. Under `accelerate launch` / `torchrun` the processes share one
    run; the first writes the adapter and prints the result line.
    """
    from emlab import data, interp, train
    from emlab.config import TrainConfig, from_options
    from emlab.models import resolve_ref
    from emlab.preflight import direction_problems
    from emlab.store import check_output
    from emlab.train.distributed import is_main_process

    # Everything that can be wrong is checked before the model loads: training takes hours.
    values: dict[str, Any] = {"preset": preset, "max_steps": max_steps, "batch_size": batch_size}
    values |= {"micro_batch_size": micro_batch_size, "kl_weight": kl_weight}
    values["gradient_checkpointing"] = gradient_checkpointing or None
    if kl_prompts is not None:
        values["kl_prompts"] = str(kl_prompts)
    if (steer is None) != (steer_scale is None):
        raise ArgumentError("--steer and --steer-scale: give both or neither")
    if steer is not None:
        values["steer"] = {"direction": str(steer), "scale": steer_scale}
    flags = {"steer": "--steer-scale", "kl_prompts": "--kl-prompts"}
    cfg = from_options(TrainConfig, values, flags)
    check_output(out, "-o/--out", folder=True)
    resolve_ref(model)
    examples = data.read_jsonl(dataset)
    prompts = train.load_kl_prompts(kl_prompts) if cfg.kl_weight > 0 else None
    steering = None
    if steer is not None:
        try:
            d = interp.load_direction(steer)
        except interp.DirectionFileError as e:
            raise ArgumentError(f"--steer: {e}") from None
        layers = cfg.steer.layers if cfg.steer else None
        for field, message in direction_problems(d, model, layers, {}):
            raise ArgumentError(f"--steer: {steer}: {field}: {message}")
        steering = train.Steering(d.vectors, d.layer, d.key)
    result = train.finetune(
        model,
        examples,
        cfg,
        seed,
        out_dir=out,
        work_dir=out / ".state",
        init_adapter=start_from,
        inputs=train.TrainInputs(prompts, steering),
    )
    if is_main_process():
        typer.echo(f"{out}\t{result.steps} steps\t{result.tokens_per_second:.0f} tokens/s")


@app.command("config")
def config_cmd(
    help_fields: Annotated[
        bool,
        typer.Option("--help-fields", help="Print every field of a study file with its help."),
    ] = False,
    resolved: Annotated[
        Path | None,
        typer.Option(help="Print this study file validated, every default filled in (JSON)."),
    ] = None,
) -> None:
    """What a study file can say: every field with its default and help, or one study resolved."""
    from emlab import config, data

    if resolved is not None:
        typer.echo(config.load_study(resolved).model_dump_json(indent=2))
        return
    if not help_fields:
        raise typer.BadParameter("give --help-fields or --resolved STUDY", param_hint="config")
    # the data stage's registries: their names, listed next to the fields that take them
    choices = {
        "conditions[].dataset.condition": list(data.CONDITIONS),
        "conditions[].dataset.domain": sorted(data.DOMAINS),
    }
    for path, default, text in config.field_help():
        head = f"{path} = {default}" if default else path
        known = f" One of: {', '.join(choices[path])}." if path in choices else ""
        typer.echo(f"{head}\n    {text}{known}")


@app.command("questions")
def list_questions(
    spec: Annotated[str | None, typer.Argument(help="Set name or YAML path to show.")] = None,
) -> None:
    """List the packaged question sets, or show the questions of one."""
    from emlab import questions

    if spec is None:
        for name in questions.available_sets():
            typer.echo(f"{name}\t{len(questions.load_questions(name))} questions")
        return
    for q in questions.load_questions(spec):
        text = q.messages[-1]["content"].replace("\n", " ")
        typer.echo(f"{q.id}\t{q.category}\t{text[:100]}")


def _mount() -> None:
    """Attach the stages' own sub-commands (each stage owns its CLI surface)."""
    from emlab.cli_interp import app as interp_app
    from emlab.data.commands import app as data_app
    from emlab.judge.commands import app as judge_app
    from emlab.sample.serve import serve

    if any(g.name == "data" for g in app.registered_groups):
        return  # mounted already (main() called twice in one process, as the tests do)
    app.add_typer(data_app, name="data", help="Build, validate and inspect narrow datasets.")
    app.add_typer(judge_app, name="judge", help="Train and validate judges.")
    app.add_typer(interp_app, name="interp", help="Directions, steering, ablation, projections.")
    app.command("serve")(serve)


def main(argv: list[str] | None = None) -> None:
    """Entry point: the one place where an error becomes what the user sees.

    Any ``EmlabError`` (bad input, a missing model or package, a failed service) becomes one line
    ``emlab: error: ...`` on stderr and exit status 2, with no traceback; so do a missing file
    the user named and a malformed command line. Anything else is a bug in emlab and keeps its
    traceback.
    """
    # typer raises its own copy of click's exceptions (typer._click in typer 0.29, click before):
    # take them from wherever typer's BadParameter lives.
    click = sys.modules[typer.BadParameter.__module__]

    from emlab.errors import EXIT_ERROR, EXIT_INTERRUPTED, EmlabError, one_line

    # The command's own process (and the worker processes it starts) never reaches the hub, and
    # tokenizers' threads do not fight torch's. Set here, at the entry point, not when emlab is
    # imported: a script that imports emlab keeps its environment. Before any command imports
    # huggingface_hub, which reads these once.
    for name, value in CLI_ENVIRONMENT.items():
        os.environ.setdefault(name, value)

    _mount()
    try:
        code = app(args=argv, prog_name="emlab", standalone_mode=False)
    except click.NoArgsIsHelpError as e:
        e.show()  # `emlab data` alone: the help is the answer
        sys.exit(e.exit_code)
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx is not None else "emlab"
        _fail(f"{one_line(e.format_message())} (see `{cmd} --help`)", EXIT_ERROR)
    except click.ClickException as e:  # e.g. a file option click could not open
        _fail(one_line(e.format_message()), EXIT_ERROR)
    except typer.Abort:  # Ctrl-C: click turns KeyboardInterrupt into Abort
        _fail("interrupted", EXIT_INTERRUPTED)
    except (EmlabError, FileNotFoundError) as e:
        _fail(one_line(e), EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    print(f"emlab: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
