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
from emlab.summary import Rate, Summary

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


def _interval(r: Rate) -> str:
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
    if not groups:
        out.append(Text("No judged answers."))
        return out
    out.append(Text(result_sentence(summary), style="bold"))
    out.append(Text(method_line(summary, ", ".join(summary.judges) or None, summary.seeds())))
    return out


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
