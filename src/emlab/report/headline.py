"""The answer of a study in words: its comparisons and a one-sentence result.

The terminal table, ``emlab show`` and the HTML report all lead with the same sentence, so it is
built once here from the summary that ``emlab.metrics.summarize`` wrote (never from recomputed
rates). A comparison is *separated* when its interval excludes 0; the sentence says nothing
stronger than that, and names the judge, rule and intervals next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emlab.summary import ComparisonEntry, Summary


@dataclass(frozen=True)
class Comparison:
    """One difference of rates with its interval, as the tables and the sentence show it."""

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


def comparisons(summary: Summary, final_only: bool = False) -> list[Comparison]:
    """Every comparison the summary holds: each arm's ``delta_vs_baseline``, then the entries of
    ``summary.comparisons`` (those with an interval)."""
    multi = summary.multi_model
    # An entry for (arm, baseline) says more (its interval rule, its counts) than the group's
    # delta_vs_baseline: list the pair once.
    covered = {(e.model, e.a, e.b) for e in summary.comparisons}
    out: list[Comparison] = []
    for g in summary.groups:
        d = g.delta_vs_baseline
        if d is None or (final_only and g.step is not None):
            continue
        if g.step is None and (g.model, g.condition, d.baseline) in covered:
            continue
        out.append(
            Comparison(
                label=f"{g.label(multi)} − {d.baseline}",
                delta=d.delta,
                ci_low=d.ci_low,
                ci_high=d.ci_high,
                method=d.method,
                model=g.model,
                step=g.step,
            )
        )
    for e in summary.comparisons:
        if e.delta is None or e.ci_low is None or e.ci_high is None:
            continue
        if final_only and e.step is not None:
            continue
        out.append(
            Comparison(
                label=e.label,
                delta=e.delta,
                ci_low=e.ci_low,
                ci_high=e.ci_high,
                method=e.method or "",
                model=e.model,
                step=e.step,
                over=e.over or "",
                sides=_sides(e),
            )
        )
    return out


def _sides(entry: ComparisonEntry) -> str:
    if entry.n_valid is None or entry.n_total is None:
        return ""
    return ", ".join(f"{v}/{t}" for v, t in zip(entry.n_valid, entry.n_total, strict=False))


def _names(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def result_sentence(summary: Summary) -> str:
    """One sentence that states the study's result from its numbers (final arms only)."""
    final = summary.final
    rated = [g for g in final if g.rate is not None]
    if not rated:
        return "No valid judged answers: there is no misalignment rate to report."
    multi = summary.multi_model
    empty = [g.label(multi) for g in final if g.rate is None]
    tail = f" No valid answers: {_names(empty)}." if empty else ""
    level = f"{100 * summary.confidence:g}%"
    comps = comparisons(summary, final_only=True)
    if not comps:
        hi = max(rated, key=lambda g: g.rate or 0.0)
        lo = min(rated, key=lambda g: g.rate or 0.0)
        if hi is lo:
            return (
                f"{hi.label(multi)}: {_pct(hi.rate)} of valid answers misaligned "
                f"({level} interval {_pct(hi.ci_low)}–{_pct(hi.ci_high)}); "
                f"nothing to compare it with.{tail}"
            )
        return (
            f"Misalignment rates range from {_pct(lo.rate)} ({lo.label(multi)}) to "
            f"{_pct(hi.rate)} ({hi.label(multi)}); no baseline condition to compare "
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


def method_line(summary: Summary, judge: str | None, seeds: Sequence[object]) -> str:
    """What every number rests on: judge, rule, seeds, interval methods (one line)."""
    methods = sorted({g.ci_method for g in summary.groups if g.ci_method})
    n_seeds = len(list(seeds))
    seed_text = f"{n_seeds} seed{'s' if n_seeds != 1 else ''} ({', '.join(map(str, seeds))})"
    overs = sorted({e.over for e in summary.comparisons if e.over})
    diffs = f"; differences over {' and '.join(overs)}" if overs else ""
    return (
        f"judge {judge or 'unknown'}; {summary.thresholds.rule}; {seed_text}; "
        f"{100 * summary.confidence:g}% intervals of rates: {', '.join(methods) or 'none'}{diffs}"
    )
