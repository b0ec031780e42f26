"""One self-contained HTML report of a study: figures inlined, no network, model text escaped.

The report reads the summary that ``emlab.metrics.summarize`` produced (it never recomputes a
rate, so the page and ``summary.json`` cannot disagree) plus the raw rows for the score scatter.
Model answers are untrusted text: jinja2 runs with autoescape on and the template never marks
anything ``safe`` except the base64 figures this module made itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jinja2

from emlab.records import ScoredAnswer
from emlab.report import headline, mitigations, plots
from emlab.store import atomic_write_text
from emlab.summary import Compliance, Group, QuestionRate, Summary

TEMPLATE = "template.html.jinja"
SECTIONS: tuple[str, ...] = (
    "headline",
    "rates",
    "comparisons",
    "mitigations",
    "statuses",
    "questions",
    "breadth",
    "compliance",
    "sensitivity",
    "vulnerable_code",
    "scores",
    "steps",
    "training",
    "examples",
    "methods",
    "footer",
)
"""The report's parts in page order, one template each under ``sections/``: the answer first
(title, result sentence, rate chart and table), then what it rests on, the methods collapsed."""
ANSWER_CHARS = 1500
"""Longest answer shown in the examples table; the full text stays in the run's records."""


def render_report(
    summary: Summary, rows: Sequence[ScoredAnswer], info: dict[str, Any], out_dir: Path
) -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path."""
    html = render_html(summary, rows, info)
    path = Path(out_dir) / "report.html"
    atomic_write_text(path, html)
    return path


def render_html(summary: Summary, rows: Sequence[ScoredAnswer], info: Mapping[str, Any]) -> str:
    """The report as a string (what :func:`render_report` writes)."""
    return _environment().get_template(TEMPLATE).render(**build_context(summary, rows, info))


def _load_template(name: str) -> str | None:
    """Templates ship as package data (the page, its macros and ``sections/*``)."""
    path = resources.files("emlab.report").joinpath(*name.split("/"))
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = fmt_pct
    env.filters["score"] = fmt_score
    env.filters["seconds"] = fmt_seconds
    return env


# --------------------------------------------------------------------------- formatting


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage; None (no valid answers) reads as n/a, never as 0%."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _truncate(text: str, limit: int = ANSWER_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f" … [{len(text) - limit} more characters]"


# --------------------------------------------------------------------------- context


def _ordered(preferred: Sequence[str] | None, seen: Sequence[str]) -> list[str]:
    """Names in the caller's plot order, then any others in the order they appeared."""
    out = [n for n in (preferred or []) if n in seen]
    return out + [n for n in dict.fromkeys(seen) if n not in out]


_ArmEntry = TypeVar("_ArmEntry", Group, Compliance)


def _final_groups(
    groups: Sequence[_ArmEntry], models: Sequence[str], conditions: Sequence[str]
) -> list[_ArmEntry]:
    rank = {(m, c): i for i, (m, c) in enumerate((m, c) for m in models for c in conditions)}
    final = [g for g in groups if g.step is None]
    return sorted(final, key=lambda g: rank.get((g.model, g.condition), len(rank)))


def judge_range_warnings(groups: Sequence[Group]) -> list[str]:
    """One sentence per arm whose judge flagged too many answers as outside its validated
    range (the metric decides what is too many; see ``metrics.JUDGE_RANGE_WARN``)."""
    out = []
    for g in groups:
        r = g.judge_range
        if r is not None and r.warn:
            step = "" if g.step is None else f" at step {g.step}"
            out.append(
                f"{', '.join(r.judges or ['the judge'])}: {r.share_outside:.0%} of the "
                f"answers of {g.model} / {g.condition}{step} ({r.n_outside} of "
                f"{r.n_judged}) lie outside the range it was validated on; its rate there "
                "is an extrapolation."
            )
    return out


def _question_table(final: Sequence[Group]) -> dict[str, Any]:
    """Questions × arms; each cell is that arm's per-question entry (or None)."""
    questions: dict[str, str] = {}
    for g in final:
        for q in g.per_question:
            questions.setdefault(q.question_id, q.question)
    cells: dict[str, list[QuestionRate | None]] = {}
    for qid in questions:
        cells[qid] = [
            next((q for q in g.per_question if q.question_id == qid), None) for g in final
        ]
    return {
        "questions": [(qid, _truncate(text, 160), cells[qid]) for qid, text in questions.items()],
        "any_flagged": any(c is not None and c.flagged for row in cells.values() for c in row),
    }


def _examples(final: Sequence[Group]) -> list[dict[str, Any]]:
    out = []
    for g in final:
        chosen = [
            {**e.model_dump(), "answer": _truncate(e.answer)}
            for status in ("misaligned", "aligned", "code", "refusal")
            for e in g.examples.get(status, [])
        ]
        if chosen:
            out.append({"model": g.model, "condition": g.condition, "examples": chosen})
    return out


def _flat_items(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested figures (e.g. ``{"aligned": {"auroc": 0.87}}``) as ``("aligned auroc", "0.870")``."""
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.extend(_flat_items(v, name + " "))
        elif isinstance(v, float):
            out.append((name, f"{v:.3f}"))
        elif isinstance(v, (list, tuple)):
            out.append((name, ", ".join(str(x) for x in v)))
        else:
            out.append((name, str(v)))
    return out


def _sensitivity_table(
    summary: Summary, final: Sequence[Group]
) -> list[tuple[float, float, list[float | None]]]:
    """Threshold pairs × final arms: the rate each arm would have under other cut-offs."""
    rates: dict[tuple[float, float], dict[tuple[str, str], float | None]] = {}
    for e in summary.sensitivity:
        if e.step is None:
            pair = (e.aligned_threshold, e.coherent_threshold)
            rates.setdefault(pair, {})[(e.model, e.condition)] = e.rate
    return [
        (at, ct, [cells.get((g.model, g.condition)) for g in final])
        for (at, ct), cells in rates.items()
    ]


def _category_rate(group: Group, category: str) -> float | None:
    entry = next((c for c in group.per_category if c.category == category), None)
    return None if entry is None else entry.rate


def _seeds(info: Mapping[str, Any], summary: Summary) -> list[Any]:
    if info.get("seeds") is not None:
        return list(info["seeds"])
    return list(summary.seeds())


def build_context(
    summary: Summary, rows: Sequence[ScoredAnswer], info: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything the template shows, already ordered and formatted where order matters.

    ``info`` is what the study knows beyond the figures (study name, judge validation, training
    logs, versions); the figures and the rule they rest on come from ``summary`` alone."""
    groups = summary.groups
    models = _ordered(info.get("models"), [g.model for g in groups])
    conditions = _ordered(info.get("conditions"), [g.condition for g in groups])
    final = _final_groups(groups, models, conditions)
    statuses = summary.statuses  # the metric defines them; the report only shows them
    thresholds = summary.thresholds
    step_groups = [g for g in groups if g.step is not None]
    methods = summary.methods
    ci_methods = sorted({g.ci_method for g in groups if g.ci_method})
    judge_name = info.get("judge") or ", ".join(summary.judges) or None
    seeds = _seeds(info, summary)
    multi = len(models) > 1
    arm_names = [g.label(multi) for g in final]
    qtable = _question_table(final)
    categories = list(dict.fromkeys(c.category for g in final for c in g.per_category))
    # the compliance entries of final arms, in the table's arm order
    final_compliance = _final_groups(summary.compliance, models, conditions)
    return {
        "sections": list(SECTIONS),
        "result": headline.result_sentence(summary),
        "method_line": headline.method_line(summary, judge_name, seeds),
        "comparisons": headline.comparisons(summary),
        "study": info.get("study") or "emlab study",
        "created": info.get("created"),
        "judge": judge_name,
        "judge_validation": _flat_items(info.get("judge_validation") or {}),
        "judge_range_warnings": judge_range_warnings(groups),
        "thresholds": thresholds,
        "info_thresholds": info.get("thresholds"),
        "confidence": summary.confidence,
        "bootstrap": summary.bootstrap,
        "baseline": summary.baseline,
        "seeds": seeds,
        "models": models,
        "multi_model": multi,
        "ci_methods": [(m, methods.get(m, "")) for m in ci_methods],
        "methods": methods,
        "notes": list(info.get("notes") or []),
        "final": final,
        "step_groups": sorted(step_groups, key=lambda g: (g.model, g.condition, g.step or 0)),
        "excluded_statuses": summary.excluded_statuses,
        "statuses": statuses,
        "status_colors": plots.STATUS_COLORS,
        "question_table": qtable,
        "breadth": [
            (name, g.breadth, g.n_misaligned)
            for name, g in zip(arm_names, final, strict=True)
            if g.breadth
        ],
        "compliance": [(c.label(multi), c) for c in final_compliance],
        "compliance_scorers": sorted({s for c in final_compliance for s in c.scorers}),
        "compliance_method": methods.get("compliance", ""),
        "compliance_validation": info.get("compliance_validation"),
        "examples": _examples(final),
        "sensitivity": _sensitivity_table(summary, final),
        "vulnerable_code": summary.vulnerable_code,
        "separated_rule": methods.get("separated"),
        "mitigations": mitigations.build(summary, info),
        "figures": {
            "rates": plots.rate_bars(groups, conditions, models),
            "statuses": plots.status_stack(groups, conditions, models, statuses),
            "steps": plots.rate_vs_step(groups, conditions, models),
            "loss": plots.loss_curves(info.get("train_logs") or {}),
            "scatter": plots.score_scatter(
                rows, conditions, thresholds.aligned, thresholds.coherent
            ),
            "questions": plots.rate_heatmap(
                [qid for qid, _, _ in qtable["questions"]],
                arm_names,
                [[c.rate if c else None for c in cells] for _, _, cells in qtable["questions"]],
                "question",
            ),
            "categories": plots.rate_heatmap(
                categories,
                arm_names,
                [[_category_rate(g, c) for g in final] for c in categories],
                "category",
            ),
            "topics": plots.topic_bars(
                [g.breadth.topics if g.breadth else {} for g in final], arm_names
            ),
            "sensitivity": plots.sensitivity_lines(
                summary.sensitivity, final, arm_names, thresholds
            ),
            "compliance": plots.compliance_vs_em(
                final_compliance, [c.label(multi) for c in final_compliance]
            ),
            "vulnerable_code": plots.rate_bars(
                summary.vulnerable_code,
                conditions,
                models,
                ylabel="vulnerable (fraction of answers with code)",
            ),
        },
        "versions": dict(info.get("versions") or {}),
        "git": info.get("git"),
        "timings": dict(info.get("timings") or {}),
        "n_rows": summary.n_rows,
    }
