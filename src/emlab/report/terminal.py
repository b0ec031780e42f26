"""The study's result as a table in the terminal (what ``emlab run`` / ``emlab show`` print).

Reads the same summary as the HTML report, so the terminal and the page cannot disagree: per arm
the rate, its interval, valid / all answers and every excluded kind, then each comparison with
whether its interval excludes 0, the one-sentence result, and the judge and rule underneath.
"""

from __future__ import annotations

import io
import shutil
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from emlab.report.headline import comparisons, method_line, result_sentence
from emlab.summary import Compliance, Rate, Summary

EXCLUDED_HEADERS: dict[str, str] = {
    "incoherent": "incoherent",
    "code": "CODE",
    "refusal": "REFUSAL",
    "judge_error": "judge err",
    "generation_error": "gen err",
}
"""Column titles for the excluded kinds (the judge's labels in capitals, as it emits them)."""


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _interval(r: Rate | Compliance) -> str:
    if r.ci_low is None:
        return "n/a"
    return f"{_pct(r.ci_low)}–{_pct(r.ci_high)}"


def summary_tables(summary: Summary, title: str | None = None) -> list[Any]:
    """The renderables, in order: arms table, comparisons table (if any), result, method line."""
    groups = summary.groups
    multi = summary.multi_model
    excluded = summary.excluded_statuses
    arms = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    arms.add_column("arm", no_wrap=True)
    arms.add_column("misaligned", justify="right")
    arms.add_column(f"{100 * summary.confidence:g}% CI", justify="right", no_wrap=True)
    arms.add_column("valid / all", justify="right", no_wrap=True)
    for s in excluded:
        arms.add_column(EXCLUDED_HEADERS.get(s, s.replace("_", " ")), justify="right")
    broad = any(g.breadth for g in groups)
    if broad:  # how many question categories have a misaligned answer
        arms.add_column("categories", justify="right", no_wrap=True)
    for g in groups:
        b = g.breadth
        hit = [f"{b.n_categories_misaligned} / {b.n_categories}" if b else "0 / 0"]
        arms.add_row(
            g.label(multi),
            _pct(g.rate),
            _interval(g),
            f"{g.n_valid} / {g.n_total}",
            *[str(g.excluded.get(s, 0)) for s in excluded],
            *(hit if broad else []),
        )
    out: list[Any] = [arms]
    comps = comparisons(summary)
    if comps:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("comparison", no_wrap=True)
        table.add_column("difference [interval]", justify="right", no_wrap=True)
        table.add_column("interval excludes 0", justify="center")
        table.add_column("method")
        for c in comps:
            mark = Text("yes", style="bold") if c.separated else Text("no", style="dim")
            table.add_row(c.label, c.interval_text(), mark, c.method)
        out.append(table)
    harm = compliance_table(summary, multi)
    if harm is not None:
        out.append(harm)
    if not groups:
        out.append(Text("No judged answers."))
        return out
    out.append(Text(result_sentence(summary), style="bold"))
    out.append(Text(method_line(summary, ", ".join(summary.judges) or None, summary.seeds())))
    return out


def compliance_table(summary: Summary, multi: bool) -> Table | None:
    """Harmful-request compliance per arm next to its EM rate (the jailbreak contrast); None
    when the study asked no harmful request."""
    if not summary.compliance:
        return None
    table = Table(
        title="harmful-request compliance vs EM",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for name in ("arm", "complied", "interval", "complied / answered", "off topic", "failed"):
        table.add_column(name, justify="left" if name == "arm" else "right", no_wrap=True)
    table.add_column("misaligned (EM)", justify="right", no_wrap=True)
    for c in summary.compliance:
        counts = c.counts
        table.add_row(
            c.label(multi),
            _pct(c.rate),
            _interval(c),
            f"{counts.get('complied', 0)} / {c.n}",
            str(counts.get("off_topic", 0)),
            str(counts.get("judge_error", 0) + counts.get("generation_error", 0)),
            "not asked" if c.em is None else f"{_pct(c.em.rate)} ({_interval(c.em)})",
        )
    return table


def console(file: IO[str] | None = None) -> Console:
    """A console as wide as the terminal, or 120 columns when the output is a pipe or file."""
    width = shutil.get_terminal_size((120, 24)).columns
    return Console(file=file, width=max(100, width), highlight=False, soft_wrap=False)


def print_summary(summary: Summary, title: str | None = None, out: Console | None = None) -> None:
    """Print the tables and the result sentence (to stdout unless ``out`` is given)."""
    target = out or console()
    for item in summary_tables(summary, title):
        target.print(item)


def render_text(summary: Summary, title: str | None = None, width: int = 120) -> str:
    """The same output as a plain string (no colour codes), for tests and logs."""
    cons = Console(width=width, record=True, highlight=False, color_system=None, file=io.StringIO())
    print_summary(summary, title, cons)
    return cons.export_text()


def _shift(s: dict[str, Any] | None) -> str:
    if not s or s.get("shift") is None:
        return "n/a"
    there = s["ci_low"] > 0 or s["ci_high"] < 0
    return f"{s['shift']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]{' *' if there else ''}"


def _titled(title: str, columns: tuple[str, ...], right: tuple[str, ...] = ()) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for col in columns:
        t.add_column(col, no_wrap=True, justify="right" if col in right else "left")
    return t


def interp_tables(data: dict[str, Any]) -> list[Any]:
    """A study's ``interp.json`` as terminal tables per model: the direction, the signature
    (each condition vs base), the contrasts between conditions and the training monitor.
    ``*`` marks an interval that excludes 0; the same numbers as the report's section."""
    from emlab.report.interp import monitor_rows

    out: list[Any] = []
    for model, res in data.get("models", {}).items():
        if "error" in res:
            out.append(Text(f"interp, {model}: no direction ({res['error']})"))
            continue
        card = res["direction"]
        auroc = (card.get("auroc") or [None] * (card["layer"] + 1))[card["layer"]]
        out.append(
            Text(
                f"interp, {model}: {card['method']} direction {card['key']} at layer "
                f"{card['layer']} (held-out AUROC {'n/a' if auroc is None else f'{auroc:.3f}'})"
            )
        )
        sig = res.get("signature") or {}
        if sig.get("table"):
            t = _titled(
                "signature: shift of the mean projection vs base",
                ("condition", "seeds", "fixed texts [95% CI]", "own answers [95% CI]"),
            )
            for r in sig["table"]:
                t.add_row(r["condition"], str(r["fixed"]["seeds"]), _shift(r["fixed"]),
                          _shift(r["own"]))  # fmt: skip
            out.append(t)
        if sig.get("contrasts"):
            t = _titled(
                "contrasts: A - B (both sides' seeds resampled)",
                ("A", "B", "fixed texts [95% CI]", "own answers [95% CI]"),
            )
            for r in sig["contrasts"]:
                t.add_row(r["a"], r["b"], _shift(r["fixed"]), _shift(r["own"]))
            out.append(t)
        rows = monitor_rows(sig.get("monitor", []))
        if rows:
            cols = ("condition", "step", "seeds", "projection", "loss", "EM rate")
            t = _titled("training monitor (mean over seeds)", cols, right=cols[1:])
            for r in rows:
                num = [("n/a" if r[k] is None else f"{r[k]:.3f}") for k in ("projection", "loss")]
                t.add_row(r["condition"], str(r["step"]), str(r["seeds"]), *num,
                          _pct(r["em_rate"]))  # fmt: skip
            out.append(t)
    return out
