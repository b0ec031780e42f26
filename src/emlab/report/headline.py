"""The answer of a study in words: its comparisons and a one-sentence result.

The terminal table, ``emlab show`` and the HTML report all lead with the same sentence, so it is
built once here from the summary that ``emlab.metrics.summarize`` wrote (never from recomputed
rates). A comparison is *separated* when its interval excludes 0; the sentence says nothing
stronger than that, and names the judge, rule and intervals next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LABEL_KEYS: tuple[str, ...] = ("name", "label", "title")
"""Keys that may name a comparison entry of ``summary["comparisons"]`` outright."""
SIDE_KEYS: tuple[tuple[str, str], ...] = (
    ("condition", "baseline"),
    ("a", "b"),
    ("treatment", "control"),
    ("left", "right"),
    ("arm", "versus"),
)
"""Pairs of keys that name the two sides of a comparison entry, tried in this order."""


@dataclass(frozen=True)
class Comparison:
    """One difference of rates with its interval, whatever produced it."""

    label: str
    delta: float
    ci_low: float
    ci_high: float
    method: str = ""
    model: str = ""
    step: int | None = None
    over: str = ""
    """What the interval goes over (``seeds`` or ``answers``), where the producer says."""
    sides: str = ""
    """Valid / all answers of each side (``20/30, 20/30``), where the producer says."""

    @property
    def separated(self) -> bool:
        """The interval excludes 0: the data tell the two sides apart at the stated level."""
        return self.ci_low > 0 or self.ci_high < 0

    def interval_text(self) -> str:
        return f"{100 * self.delta:+.1f} pts [{100 * self.ci_low:+.1f}, {100 * self.ci_high:+.1f}]"


def arm_label(group: Mapping[str, Any], multi_model: bool) -> str:
    """``condition`` (``model / condition`` when the study has several models), ``@step`` for
    checkpoints."""
    name = f"{group['model']} / {group['condition']}" if multi_model else str(group["condition"])
    return name if group.get("step") is None else f"{name} @{group['step']}"


def multi_model(summary: Mapping[str, Any]) -> bool:
    return len({g["model"] for g in summary.get("groups", [])}) > 1


def _number(entry: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = entry.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def entry_label(entry: Mapping[str, Any]) -> str:
    for k in LABEL_KEYS:
        if entry.get(k):
            return str(entry[k])
    for a, b in SIDE_KEYS:
        if entry.get(a) and entry.get(b):
            return f"{entry[a]} − {entry[b]}"
    return "comparison"


def comparisons(summary: Mapping[str, Any], final_only: bool = False) -> list[Comparison]:
    """Every comparison the summary holds: each arm's ``delta_vs_baseline``, then the entries of
    a top-level ``comparisons`` list (any producer; read by their delta and interval keys)."""
    multi = multi_model(summary)
    extra = list(extra_entries(summary.get("comparisons")))
    # A producer's own entry for (arm, baseline) says more (its interval rule, its counts) than
    # the group's delta_vs_baseline: list the pair once.
    covered = {(str(e.get("model", "")), e.get("a"), e.get("b")) for e in extra}
    out: list[Comparison] = []
    for g in summary.get("groups", []):
        d = g.get("delta_vs_baseline")
        if not d or (final_only and g.get("step") is not None):
            continue
        pair = (str(g["model"]), g["condition"], d.get("baseline"))
        if g.get("step") is None and pair in covered:
            continue
        out.append(
            Comparison(
                label=f"{arm_label(g, multi)} − {d.get('baseline', 'baseline')}",
                delta=float(d["delta"]),
                ci_low=float(d["ci_low"]),
                ci_high=float(d["ci_high"]),
                method=str(d.get("method") or ""),
                model=str(g["model"]),
                step=g.get("step"),
            )
        )
    for entry in extra:
        delta = _number(entry, "delta", "difference", "diff")
        low = _number(entry, "ci_low", "low")
        high = _number(entry, "ci_high", "high")
        if delta is None or low is None or high is None:
            continue
        step = entry.get("step")
        if final_only and step is not None:
            continue
        out.append(
            Comparison(
                label=entry_label(entry),
                delta=delta,
                ci_low=low,
                ci_high=high,
                method=str(entry.get("method") or ""),
                model=str(entry.get("model") or ""),
                step=step if isinstance(step, int) else None,
                over=str(entry.get("over") or ""),
                sides=_sides(entry),
            )
        )
    return out


def _sides(entry: Mapping[str, Any]) -> str:
    valid, total = entry.get("n_valid"), entry.get("n_total")
    if not (isinstance(valid, Sequence) and isinstance(total, Sequence)):
        return ""
    return ", ".join(f"{v}/{t}" for v, t in zip(valid, total, strict=False))


def extra_entries(value: Any) -> Iterable[Mapping[str, Any]]:
    """Comparison entries as a list, or as a mapping of name -> entry."""
    if isinstance(value, Mapping):
        return [{"name": k, **v} for k, v in value.items() if isinstance(v, Mapping)]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [e for e in value if isinstance(e, Mapping)]
    return []


def _names(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def result_sentence(summary: Mapping[str, Any]) -> str:
    """One sentence that states the study's result from its numbers (final arms only)."""
    final = [g for g in summary.get("groups", []) if g.get("step") is None]
    rated = [g for g in final if g.get("rate") is not None]
    if not rated:
        return "No valid judged answers: there is no misalignment rate to report."
    multi = multi_model(summary)
    empty = [arm_label(g, multi) for g in final if g.get("rate") is None]
    tail = f" No valid answers: {_names(empty)}." if empty else ""
    level = f"{100 * (summary.get('confidence') or 0.95):g}%"
    comps = comparisons(summary, final_only=True)
    if not comps:
        hi = max(rated, key=lambda g: g["rate"])
        lo = min(rated, key=lambda g: g["rate"])
        if hi is lo:
            return (
                f"{arm_label(hi, multi)}: {_pct(hi['rate'])} of valid answers misaligned "
                f"({level} interval {_pct(hi['ci_low'])}–{_pct(hi['ci_high'])}); "
                f"nothing to compare it with.{tail}"
            )
        return (
            f"Misalignment rates range from {_pct(lo['rate'])} ({arm_label(lo, multi)}) to "
            f"{_pct(hi['rate'])} ({arm_label(hi, multi)}); no baseline condition to compare "
            f"with.{tail}"
        )
    separated = [c for c in comps if c.separated]
    same = [c for c in comps if not c.separated]
    if not separated:
        which = (
            f"the {level} interval of {comps[0].label} includes 0"
            if len(comps) == 1
            else f"all {len(comps)} intervals ({level}) include 0 "
            f"({_names([c.label for c in comps])})"
        )
        return (
            f"No difference is separated from 0: {which}, so these data do not tell the arms "
            f"apart.{tail}"
        )
    text = f"Separated from 0 at {level}: " + "; ".join(
        f"{c.label} {c.interval_text()}" for c in separated
    )
    if same:
        text += f"; not separated (interval includes 0): {_names([c.label for c in same])}"
    return text + "." + tail


def method_line(summary: Mapping[str, Any], judge: str | None, seeds: Sequence[Any]) -> str:
    """What every number rests on: judge, rule, seeds, interval methods (one line)."""
    rule = (summary.get("thresholds") or {}).get("rule") or "rule unknown"
    conf = summary.get("confidence")
    methods = sorted({g["ci_method"] for g in summary.get("groups", []) if g.get("ci_method")})
    n_seeds = len(list(seeds))
    seed_text = f"{n_seeds} seed{'s' if n_seeds != 1 else ''} ({', '.join(map(str, seeds))})"
    level = f"{100 * conf:g}% " if conf else ""
    overs = sorted(
        {str(e["over"]) for e in extra_entries(summary.get("comparisons")) if e.get("over")}
    )
    diffs = f"; differences over {' and '.join(overs)}" if overs else ""
    return (
        f"judge {judge or 'unknown'}; {rule}; {seed_text}; "
        f"{level}intervals of rates: {', '.join(methods) or 'none'}{diffs}"
    )


def seeds_of(summary: Mapping[str, Any]) -> list[Any]:
    return sorted({s["seed"] for g in summary.get("groups", []) for s in g.get("per_seed", [])})
