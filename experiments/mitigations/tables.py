"""The README's mitigation tables, read from a finished run's ``summary.json`` (nothing recomputed).

    cd experiments/mitigations
    python tables.py RUN_DIR > results/tables.md          # or a summary.json itself:
    python tables.py results/dose-summary.json > results/dose-tables.md

Per setting (plain questions, final adapter): misalignment with its interval, valid / all answers,
the setting minus the organism (the arm every ``mitigated vs organism`` comparison is taken
against) and its interval, in-domain learning (bandit on the held-out coding tasks) and the rate
at each snapshot the study evaluated (early stopping; no column when it evaluated none). Then,
when the study has them, the leak probes (each arm in a training context minus the same arm asked
plainly) and the split-behaviour rows (the re-aligned arm minus the organism, plainly and in each
context).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def rate(g: dict[str, Any] | None) -> str:
    if g is None or g.get("rate") is None:
        return "–"
    return f"{pct(g['rate'])} [{100 * g['ci_low']:.1f}, {100 * g['ci_high']:.1f}]"


def diff(c: dict[str, Any] | None) -> str:
    if c is None or c.get("delta") is None:
        return "–"
    sep = " **separated**" if c.get("separated") else ""
    return (
        f"{100 * c['delta']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]"
        f" over {c.get('over')}{sep}"
    )


def final(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in entries if c.get("step") is None]


IN_DOMAIN = {
    "bandit": ("vulnerable code, held-out tasks", "with code"),
    "advice": ("harmful advice, held-out requests", "scored"),
}
"""In-domain measure -> (column header, what its denominator counts); one column per measure."""


def in_domain_cell(d: dict[str, Any] | None, measure: str) -> str:
    if d is None or d.get("rate") is None:
        return "–"
    counted = IN_DOMAIN.get(measure, ("", "scored"))[1]
    return f"{rate(d)} ({d['n_vulnerable']} of {d['n_code']} {counted})"


def tables(s: dict[str, Any]) -> str:
    groups = {(g["condition"], g["step"]): g for g in s["groups"]}
    comps = {(c["a"], c["b"], c.get("step")): c for c in s["comparisons"]}
    ind = {(d["condition"], d["step"], d.get("measure", "bandit")): d for d in s["in_domain"]}
    measures = sorted({m for (_, _, m) in ind}) or ["bandit"]
    organism = next(c["b"] for c in s["comparisons"] if c.get("what") == "mitigated vs organism")
    plain = [c for (c, step) in groups if step is None and "+" not in c]
    steps = sorted({step for (_, step) in groups if step is not None})
    out = [
        f"| setting | misaligned, 95% CI | valid / all | − {organism} (organism) | − base |"
        + "".join(f" {IN_DOMAIN.get(m, m)[0]} |" for m in measures)
        + "".join(f" misaligned @ step {k} |" for k in steps),
        "|---|---|---|---|---|" + "---|" * (len(measures) + len(steps)),
    ]
    for c in plain:
        g = groups[(c, None)]
        out.append(
            f"| {c} | {rate(g)} | {g['n_valid']} / {g['n_total']} | "
            f"{diff(comps.get((c, organism, None))) if c != organism else ''} | "
            f"{diff(comps.get((c, 'base', None))) if c != 'base' else ''} |"
            + "".join(f" {in_domain_cell(ind.get((c, None, m)), m)} |" for m in measures)
            + "".join(f" {rate(groups.get((c, k)))} |" for k in steps)
        )
    if not s["leak_probes"] and not s["realignment"]:
        return "\n".join(out) + "\n"
    out += ["", "| leak probe: arm in context − same arm plain | difference, 95% CI |", "|---|---|"]
    out += [f"| {c['a']} − {c['b']} | {diff(c)} |" for c in final(s["leak_probes"])]
    out += ["", "| split behaviour: re-aligned − organism | difference, 95% CI |", "|---|---|"]
    out += [f"| {c['a']} − {c['b']} | {diff(c)} |" for c in final(s["realignment"])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/mitigations")
    path = path / "summary.json" if path.is_dir() else path  # a run directory or its summary
    print(tables(json.loads(path.read_text(encoding="utf-8"))), end="")
