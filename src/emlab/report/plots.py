"""The report's figures, each a PNG returned as a ``data:`` URI so the HTML stays one file.

Figures are drawn on bare ``Figure`` objects with the Agg canvas, never through ``pyplot``: no
global backend switch, no figure registry to leak, safe in a worker process without a display.
Each function takes parts of the typed summary (``emlab.summary``) and returns
None when it has nothing to draw, so the template can simply skip the section.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emlab.records import ScoredAnswer
from emlab.summary import Group, SensitivityEntry, Thresholds, VulnerableCode

Arm = TypeVar("Arm", Group, VulnerableCode)
"""An arm's entry with a rate and its interval (misalignment, or bandit's vulnerable share)."""

STATUS_COLORS: dict[str, str] = {
    "misaligned": "#d62728",
    "aligned": "#2ca02c",
    "incoherent": "#9a9a9a",
    "code": "#1f77b4",
    "refusal": "#9467bd",
    "judge_error": "#ff7f0e",
    "generation_error": "#8c564b",
}
_PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#17becf",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
]
_LINESTYLES = ["-", "--", ":", "-."]


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _literal_text(draw: Callable[_P, _R]) -> Callable[_P, _R]:
    """Draw with every label taken literally: names come from study files and models, and
    matplotlib would otherwise read ``$...$`` as math and fail on ``$x^{2$`` (after the whole
    study ran, losing the report). The setting is scoped to the call, not left global."""

    @wraps(draw)
    def literal(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return literal


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _ylim_top(highs: Sequence[float]) -> float:
    """Zoom on small rates (EM rates are often a few percent) but never past 100%."""
    return min(1.0, max([0.05, *highs]) * 1.2 + 0.02)


def to_data_uri(fig: Figure) -> str:
    """Encode a figure as an inline PNG (metadata stripped so re-renders are byte-identical)."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _final(groups: Sequence[Arm]) -> list[Arm]:
    return [g for g in groups if g.step is None]


def _lookup(groups: Sequence[Arm], model: str, condition: str) -> Arm | None:
    return next((g for g in groups if (g.model, g.condition) == (model, condition)), None)


@_literal_text
def rate_bars(
    groups: Sequence[Arm],
    conditions: Sequence[str],
    models: Sequence[str],
    ylabel: str = "misaligned answers (fraction of valid)",
) -> str | None:
    """A rate per condition with its interval (misalignment, or any entry with ``rate`` and
    ``ci_low``/``ci_high``); one bar colour per model."""
    final = _final(groups)
    if not final or not conditions:
        return None
    fig = Figure(figsize=(max(5.0, 1.1 * len(conditions) * max(1, len(models)) + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(models))
    for m_i, model in enumerate(models):
        for c_i, condition in enumerate(conditions):
            g = _lookup(final, model, condition)
            x = c_i + (m_i - (len(models) - 1) / 2) * width
            if g is None:
                continue
            if g.rate is None or g.ci_low is None or g.ci_high is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=8)
                continue
            # clamped: a Wilson bound of 0/n can sit a rounding error above the rate
            err = [[max(0.0, g.rate - g.ci_low)], [max(0.0, g.ci_high - g.rate)]]
            ax.bar(
                x,
                g.rate,
                width * 0.9,
                yerr=err,
                capsize=4,
                color=_color(m_i),
                label=model if c_i == 0 else None,
            )
            ax.text(x, g.ci_high + 0.01, f"{100 * g.rate:.1f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(conditions)), list(conditions), rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, _ylim_top([g.ci_high for g in final if g.ci_high is not None]))
    ax.grid(axis="y", alpha=0.3)
    if len(models) > 1:
        ax.legend(fontsize=8)
    return to_data_uri(fig)


@_literal_text
def status_stack(
    groups: Sequence[Group],
    conditions: Sequence[str],
    models: Sequence[str],
    statuses: Sequence[str],
) -> str | None:
    """Share of every answer status per arm, so excluded answers are as visible as valid ones."""
    arms = [
        (m, c, g)
        for m in models
        for c in conditions
        if (g := _lookup(_final(groups), m, c)) is not None and g.n_total
    ]
    if not arms:
        return None
    labels = [c if len(models) == 1 else f"{m}\n{c}" for m, c, _ in arms]
    fig = Figure(figsize=(max(5.0, 0.9 * len(arms) + 3), 3.6))
    ax = fig.add_subplot()
    bottoms = [0.0] * len(arms)
    for status in statuses:
        shares = [g.counts.get(status, 0) / g.n_total for _, _, g in arms]
        ax.bar(
            range(len(arms)),
            shares,
            0.7,
            bottom=bottoms,
            color=STATUS_COLORS.get(status, "#444444"),
            label=status.replace("_", " "),
        )
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    for i, (_, _, g) in enumerate(arms):
        ax.text(i, 1.01, f"n={g.n_total}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(arms)), labels, rotation=20, ha="right")
    ax.set_ylabel("share of all answers")
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_data_uri(fig)


@_literal_text
def rate_vs_step(
    groups: Sequence[Group], conditions: Sequence[str], models: Sequence[str]
) -> str | None:
    """Rate of each arm over training checkpoints, with its interval as a band.

    Colour follows the condition and line style the model, so arms stay distinguishable.
    """
    lines: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        if g.step is not None and g.rate is not None:
            lines.setdefault((g.model, g.condition), []).append(g)
    if not lines:
        return None
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.add_subplot()
    highs: list[float] = []
    for (model, condition), pts in lines.items():
        pts = sorted(pts, key=lambda g: g.step or 0)
        color = _color(conditions.index(condition) if condition in conditions else len(conditions))
        style = _LINESTYLES[(models.index(model) if model in models else 0) % len(_LINESTYLES)]
        steps = [g.step or 0 for g in pts]
        label = f"{model} / {condition}" if len(models) > 1 else condition
        ax.plot(steps, [g.rate or 0.0 for g in pts], marker="o", ls=style, color=color, label=label)
        lows = [g.ci_low or 0.0 for g in pts]
        tops = [g.ci_high or 0.0 for g in pts]
        ax.fill_between(steps, lows, tops, color=color, alpha=0.15)
        highs += tops
    ax.set_xlabel("training step")
    ax.set_ylabel("misaligned (fraction of valid)")
    ax.set_ylim(0, _ylim_top(highs))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_data_uri(fig)


@_literal_text
def loss_curves(train_logs: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """Training loss per run (and gradient norm where logged), one line per log stream."""
    streams = {
        name: [p for p in pts if p.get("loss") is not None] for name, pts in train_logs.items()
    }
    streams = {k: v for k, v in streams.items() if v}
    if not streams:
        return None
    has_grad = any(p.get("grad_norm") is not None for pts in streams.values() for p in pts)
    fig = Figure(figsize=(10.0 if has_grad else 6.5, 3.4))
    ax_loss = fig.add_subplot(1, 2 if has_grad else 1, 1)
    ax_grad = fig.add_subplot(1, 2, 2) if has_grad else None
    for i, (name, pts) in enumerate(streams.items()):
        color = _color(i)
        ax_loss.plot([p["step"] for p in pts], [p["loss"] for p in pts], color=color, label=name)
        grads = [p for p in pts if p.get("grad_norm") is not None]
        if ax_grad is not None and grads:
            ax_grad.plot([p["step"] for p in grads], [p["grad_norm"] for p in grads], color=color)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.grid(alpha=0.3)
    if len(streams) <= 12:
        ax_loss.legend(fontsize=7)
    if ax_grad is not None:
        ax_grad.set_xlabel("step")
        ax_grad.set_ylabel("gradient norm")
        ax_grad.grid(alpha=0.3)
    return to_data_uri(fig)


@_literal_text
def score_scatter(
    rows: Sequence[ScoredAnswer],
    conditions: Sequence[str],
    aligned_threshold: float,
    coherent_threshold: float,
) -> str | None:
    """Judge scores of every answer (coherent vs aligned) with the two thresholds drawn.

    Shows how close the answers sit to the cut-offs, which a single rate hides.
    """
    points: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        if r.aligned is not None and r.coherent is not None and not r.error:
            xs, ys = points.setdefault(r.condition, ([], []))
            xs.append(r.coherent)
            ys.append(r.aligned)
    if not points:
        return None
    order = [c for c in conditions if c in points] + sorted(set(points) - set(conditions))
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot()
    full = [*conditions, *sorted(set(points) - set(conditions))]
    for condition in order:
        xs, ys = points[condition]
        ax.scatter(xs, ys, s=10, alpha=0.45, color=_color(full.index(condition)), label=condition)
    ax.axhline(aligned_threshold, color="black", lw=0.8, ls="--")
    ax.axvline(coherent_threshold, color="black", lw=0.8, ls=":")
    ax.set_xlabel("coherent (judge score)")
    ax.set_ylabel("aligned (judge score)")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_data_uri(fig)


@_literal_text
def rate_heatmap(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    row_title: str,
) -> str | None:
    """Rates as a grid (e.g. questions × arms), each cell written out; grey where no rate.

    One colour scale for the whole grid, from 0 to the largest rate, so that a question that
    only one arm gets wrong stands out at a glance.
    """
    if not row_labels or not col_labels:
        return None
    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    top = float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0
    n_rows, n_cols = grid.shape
    fig = Figure(figsize=(min(14.0, 2.5 + 1.2 * n_cols), 1.2 + 0.28 * n_rows))
    ax = fig.add_subplot()
    cmap = colormaps["Reds"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=max(0.05, top), aspect="auto"
    )
    for i in range(n_rows):
        for j in range(n_cols):
            v = grid[i, j]
            text = "–" if np.isnan(v) else f"{100 * v:.0f}%"
            dark = not np.isnan(v) and v > 0.6 * max(0.05, top)
            ax.text(
                j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    ax.set_xticks(range(n_cols), list(col_labels), rotation=20, ha="right")
    ax.set_yticks(range(n_rows), list(row_labels), fontsize=7)
    ax.set_ylabel(row_title)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="misaligned (fraction of valid)")
    return to_data_uri(fig)


@_literal_text
def sensitivity_lines(
    grid: Sequence[SensitivityEntry],
    final: Sequence[Group],
    arm_names: Sequence[str],
    thresholds: Thresholds,
) -> str | None:
    """Rate of each final arm against the aligned cut-off, one panel per coherence cut-off;
    the study's own thresholds are marked. Lines that cross are a conclusion that flips."""
    entries = [e for e in grid if e.step is None]
    if not entries or not final:
        return None
    coherent = sorted({e.coherent_threshold for e in entries})
    fig = Figure(figsize=(3.3 * len(coherent) + 1.5, 3.2))
    axes = [fig.add_subplot(1, len(coherent), i + 1) for i in range(len(coherent))]
    top = _ylim_top([e.rate for e in entries if e.rate is not None])
    for ax, ct in zip(axes, coherent, strict=True):
        for i, (g, name) in enumerate(zip(final, arm_names, strict=True)):
            pts = sorted(
                (e.aligned_threshold, e.rate)
                for e in entries
                if e.coherent_threshold == ct
                and (e.model, e.condition) == (g.model, g.condition)
                and e.rate is not None
            )
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", ms=3, color=_color(i), label=name)
        ax.axvline(thresholds.aligned, color="black", lw=0.8, ls="--")
        current = ct == thresholds.coherent
        ax.set_title(f"coherent ≥ {ct:g}" + (" (study)" if current else ""), fontsize=9)
        ax.set_xlabel("aligned threshold A")
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("misaligned (fraction of valid)")
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_data_uri(fig)


@_literal_text
def topic_bars(topics: Sequence[Mapping[str, int]], arm_names: Sequence[str]) -> str | None:
    """Misaligned answers per arm, split by assigned topic (horizontal stacked bars)."""
    names = sorted({t for counts in topics for t in counts})
    if not names:
        return None
    fig = Figure(figsize=(8.5, 1.2 + 0.45 * len(arm_names)))
    ax = fig.add_subplot()
    lefts = [0] * len(arm_names)
    for i, topic in enumerate(names):
        widths = [counts.get(topic, 0) for counts in topics]
        color = colormaps["tab20"](i % 20)  # up to 20 topics, each its own colour
        ax.barh(range(len(arm_names)), widths, left=lefts, color=color, label=topic)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    ax.set_yticks(range(len(arm_names)), list(arm_names))
    ax.invert_yaxis()
    ax.set_xlabel("misaligned answers")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return to_data_uri(fig)
