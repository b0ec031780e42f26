"""The report's mitigations section: settings side by side, leak probes, split behaviour.

Every number comes from the summary (``emlab.metrics.summarize``: groups, ``in_domain``,
``leak_probes``, ``realignment``); what each arm *is* comes from ``info['settings']``
(``emlab.study_settings``). This module only looks them up and arranges them:

* one comparison figure: misalignment (with its interval) against in-domain learning (the share
  of held-out in-domain answers showing the trained behaviour), one point per setting, and one per
  snapshot of ``evals_at_steps`` (early stopping is a point on the same plane);
* leak probes: each arm in each evaluation context minus the same arm on the plain questions;
* split behaviour: re-aligned arms (``start_from``) and their parents in every context;
* misalignment against re-alignment steps and against the mixing fraction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from emlab.report import plots
from emlab.summary import Group, Rate, Summary


def _label(name: str, step: int | None) -> str:
    return name if step is None else f"{name}@{step}"


def _err(entry: Rate) -> tuple[list[float], list[float]]:
    # clamped: a Wilson bound of 0/n can sit a rounding error above the rate
    rate, low, high = entry.rate or 0.0, entry.ci_low or 0.0, entry.ci_high or 0.0
    return [max(0.0, rate - low)], [max(0.0, high - rate)]


@plots._literal_text
def tradeoff_figure(points: Sequence[Mapping[str, Any]], measure: str | None) -> str | None:
    """Misalignment (y) against in-domain learning (x), each with its interval."""
    drawn = [p for p in points if p["em"] and p["em"].rate is not None and p["learned"]]
    drawn = [p for p in drawn if p["learned"].rate is not None]
    if not drawn:
        return None
    fig = Figure(figsize=(6.8, 4.4))
    ax = fig.add_subplot()
    highs = []
    for i, p in enumerate(drawn):
        em, learned = p["em"], p["learned"]
        ax.errorbar(
            learned.rate,
            em.rate,
            xerr=_err(learned),
            yerr=_err(em),
            fmt="s" if p["step"] is not None else "o",
            color=plots._color(i),
            capsize=3,
            alpha=0.9,
        )
        ax.annotate(
            p["label"],
            (learned.rate, em.rate),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
        highs.append(em.ci_high or 0.0)
    ax.set_xlabel(f"in-domain learning ({measure}: share of held-out answers)")
    ax.set_ylabel("misaligned (fraction of valid)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, plots._ylim_top(highs))
    ax.grid(alpha=0.3)
    return plots.to_data_uri(fig)


@plots._literal_text
def line_figure(
    lines: Mapping[str, Sequence[tuple[float, Group]]], xlabel: str, integer_x: bool
) -> str | None:
    """Misalignment with its interval band against a setting's knob, one line per series."""
    lines = {k: [(x, g) for x, g in v if g.rate is not None] for k, v in lines.items()}
    lines = {k: v for k, v in lines.items() if v}
    if not lines:
        return None
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.add_subplot()
    highs: list[float] = []
    for i, (name, pts) in enumerate(lines.items()):
        pts = sorted(pts, key=lambda p: p[0])
        xs = [x for x, _ in pts]
        color = plots._color(i)
        ax.plot(xs, [g.rate or 0.0 for _, g in pts], marker="o", color=color, label=name)
        ax.fill_between(
            xs,
            [g.ci_low or 0.0 for _, g in pts],
            [g.ci_high or 0.0 for _, g in pts],
            color=color,
            alpha=0.15,
        )
        highs += [g.ci_high or 0.0 for _, g in pts]
    ax.set_xlabel(xlabel)
    ax.set_ylabel("misaligned (fraction of valid)")
    ax.set_ylim(0, plots._ylim_top(highs))
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return plots.to_data_uri(fig)


SAME_FRAMING = {"control": "control", "secure": "control"}
"""Condition names that are one framing (``secure`` is an alias of ``control``)."""


def _pure(setting: Mapping[str, Any], kind: str | None) -> bool:
    """A plain arm trained on one framing alone, with no mitigation knob and at scale 1."""
    same = SAME_FRAMING.get(str(setting.get("framing")), setting.get("framing"))
    return (
        kind is not None
        and same == SAME_FRAMING.get(kind, kind)
        and not setting.get("mitigation")
        and setting.get("scale", 1) == 1
    )


def build(summary: Summary, info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The section's content, or None when the study compares no mitigation (no setting uses a
    mitigation knob and no evaluation context is asked)."""
    settings: list[Mapping[str, Any]] = list(info.get("settings") or [])
    contexts: list[str] = list(info.get("contexts") or [])
    if not contexts and not any(s.get("mitigation") for s in settings):
        return None
    groups = {(g.model, g.condition, g.step): g for g in summary.groups}
    models = list(dict.fromkeys(g.model for g in summary.groups))
    learned_by = {(e.model, e.condition, e.step, e.measure): e for e in summary.in_domain}
    measures = list(dict.fromkeys(e.measure for e in summary.in_domain))
    measure = measures[0] if measures else None
    plain = [s for s in settings if s.get("context") is None]
    by_name = {s["name"]: s for s in settings}
    multi = len(models) > 1

    def name(model: str, label: str) -> str:
        return f"{model} / {label}" if multi else label

    points = []
    for model in models:
        for s in plain:
            steps = sorted(
                {k[2] for k in groups if k[:2] == (model, s["name"]) and k[2] is not None}
            )
            for step in [*steps, None]:
                em = groups.get((model, s["name"], step))
                if em is None:
                    continue
                points.append(
                    {
                        "label": name(model, _label(s["name"], step)),
                        "what": s["what"],
                        "step": step,
                        "em": em,
                        "learned": [
                            learned_by[key]
                            for m in measures
                            if (key := (model, s["name"], step, m)) in learned_by
                        ],
                    }
                )
    figure_points = [
        {**p, "learned": next((e for e in p["learned"] if e.measure == measure), None)}
        for p in points
    ]

    leaks = []
    for e in summary.leak_probes:
        s = by_name.get(str(e.a), {})
        leaks.append(
            {
                "entry": e,
                "arm": name(e.model, str(e.b)),
                "context": s.get("context"),
                "plain_group": groups.get((e.model, str(e.b), None)),
                "context_group": groups.get((e.model, str(e.a), None)),
            }
        )

    split = []
    diffs = {(e.model, e.a): e for e in summary.realignment}
    for model in models:
        for s in plain:
            if not s.get("parent"):
                continue
            cells = []
            for ctx in [None, *contexts]:
                child = s["name"] if ctx is None else f"{s['name']}+{ctx}"
                parent = s["parent"] if ctx is None else f"{s['parent']}+{ctx}"
                cells.append(
                    {
                        "context": ctx or "plain",
                        "parent": groups.get((model, parent, None)),
                        "child": groups.get((model, child, None)),
                        "diff": diffs.get((model, child)),
                    }
                )
            split.append({"arm": name(model, s["name"]), "parent": s["parent"], "cells": cells})

    realign: dict[str, list[tuple[float, Group]]] = {}
    mix: dict[str, list[tuple[float, Group]]] = {}
    for model in models:
        for s in plain:
            final = groups.get((model, s["name"], None))
            if s.get("parent") and final is not None:
                start = groups.get((model, s["parent"], None))
                pts = [] if start is None else [(0.0, start)]  # re-alignment starts at the parent
                pts += [
                    (float(k[2]), g)
                    for k, g in groups.items()
                    if k[:2] == (model, s["name"]) and k[2] is not None
                ]
                if s.get("steps") is not None:
                    pts.append((float(s["steps"]), final))
                realign[name(model, s["name"])] = pts
            if s.get("mix_fraction") is not None and final is not None:
                series = name(model, f"{s['framing']} mixed with {s['mix_with']}")
                mix.setdefault(series, []).append((float(s["mix_fraction"]), final))
                # the pure ends, where the study has them as plain arms: fraction 1 is the
                # arm's own framing, 0 the `with` framing
                for end, kind in ((1.0, s["framing"]), (0.0, s["mix_with"])):
                    pure = next((p for p in plain if _pure(p, kind)), None)
                    g = None if pure is None else groups.get((model, pure["name"], None))
                    if g is not None and (end, g) not in mix[series]:
                        mix[series].append((end, g))
    return {
        "contexts": contexts,
        "measures": measures,
        "measure": measure,
        "points": points,
        "leaks": leaks,
        "split": split,
        "figures": {
            "tradeoff": tradeoff_figure(figure_points, measure),
            "realign": line_figure(realign, "re-alignment training steps", True)
            if any(len(v) > 1 for v in realign.values())
            else None,
            "mix": line_figure(mix, "fraction of the mitigated framing in the data", False)
            if any(len(v) > 1 for v in mix.values())
            else None,
        },
    }
