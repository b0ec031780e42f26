"""The interp section of a report: a self-contained HTML block (``interp.html.jinja``) and its
figures, drawn from ``interp.json`` (what ``study_interp.run_interp`` wrote).

The block stands on its own (``interp.html`` in the run directory) and can be included in the
main report's template as it is: ``render_interp_block`` returns the HTML fragment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from emlab.report.plots import _color, to_data_uri
from emlab.store import atomic_write_text

TEMPLATE = "interp.html.jinja"


def separability(card: Mapping[str, Any]) -> str | None:
    """AUROC of the projection on held-out answers, per layer; the chosen layer marked."""
    aurocs = card.get("auroc") or []
    pts = [(i, a) for i, a in enumerate(aurocs) if a is not None]
    if not pts:
        return None
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot()
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=_color(0))
    ax.axvline(card["layer"], color="#999", linestyle="--", label=f"chosen: layer {card['layer']}")
    ax.axhline(0.5, color="#ccc", linewidth=1)
    ax.set(xlabel="decoder layer", ylabel="held-out AUROC", ylim=(0.4, 1.02))
    ax.set_title(f"Separability of the {card.get('method', '')} direction", fontsize=10)
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def _errorbar(
    ax: Any, xs: Sequence[float], rows: Sequence[Mapping[str, Any]], key: str, **kw: Any
) -> None:
    ys = [r[f"{key}_rate"] if r[f"{key}_rate"] is not None else float("nan") for r in rows]
    lo = [y - r[f"{key}_ci"][0] if y == y else 0 for y, r in zip(ys, rows, strict=True)]
    hi = [r[f"{key}_ci"][1] - y if y == y else 0 for y, r in zip(ys, rows, strict=True)]
    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, **kw)


def steer_curve(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """EM rate and coherent share vs steering scale, direction next to the random control."""
    if not rows:
        return None
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    for kind in ("direction", "random"):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["scale"])
        if not mine:
            continue
        xs = [r["scale"] for r in mine]
        style = {"color": _color(1 if kind == "direction" else 8), "label": kind}
        _errorbar(axes[0], xs, mine, "em", **style)
        _errorbar(axes[1], xs, mine, "coherent", **style)
    axes[0].set(xlabel="scale (x mean residual norm)", ylabel="EM rate (coherent answers)")
    axes[1].set(xlabel="scale (x mean residual norm)", ylabel="coherent share")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.set_ylim(-0.02, 1.02)
    return to_data_uri(fig)


def ablation_bars(rows: Sequence[Mapping[str, Any]]) -> str | None:
    if not rows:
        return None
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    kinds = ("none", "direction", "random")
    fig = Figure(figsize=(max(5, 1.6 * len(arms)), 3))
    ax = fig.add_subplot()
    width = 0.25
    for k, kind in enumerate(kinds):
        for a, arm in enumerate(arms):
            row = next((r for r in rows if r["arm"] == arm and r["kind"] == kind), None)
            if row is None or row["em_rate"] is None:
                continue
            y = row["em_rate"]
            err = [[y - row["em_ci"][0]], [row["em_ci"][1] - y]]
            ax.bar(a + (k - 1) * width, y, width, yerr=err, capsize=3, color=_color(k),
                   label=kind if a == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(arms)), arms, rotation=20, fontsize=7)
    ax.set(ylabel="EM rate", title="Ablation: direction projected out vs random")
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def signature_bars(table: Sequence[Mapping[str, Any]]) -> str | None:
    """Shift vs base per condition, on the fixed texts and on own answers, with intervals."""
    rows = [r for r in table if r["fixed"]["shift"] is not None]
    if not rows:
        return None
    fig = Figure(figsize=(max(5, 1.5 * len(rows)), 3))
    ax = fig.add_subplot()
    for k, name in enumerate(("fixed", "own")):
        for i, r in enumerate(rows):
            s = r[name]
            if s["shift"] is None:
                continue
            err = [[s["shift"] - s["ci_low"]], [s["ci_high"] - s["shift"]]]
            label = {"fixed": "fixed texts", "own": "own answers"}[name] if i == 0 else None
            ax.bar(i + (k - 0.5) * 0.35, s["shift"], 0.35, yerr=err, capsize=3,
                   color=_color(k), label=label)  # fmt: skip
    ax.axhline(0, color="#999", linewidth=1)
    ax.set_xticks(range(len(rows)), [r["condition"] for r in rows])
    ax.set(ylabel="projection shift vs base", title="Signature along the direction")
    ax.legend(fontsize=8)
    return to_data_uri(fig)


MONITOR_PANELS = (
    ("projection", "mean projection (fixed texts)"),
    ("loss", "training loss"),
    ("em_rate", "EM rate (judge)"),
)


def monitor_rows(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per condition and step, the mean over seeds of each monitored quantity (None where no
    seed has it), in study order then by step."""
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for p in points:
        if p["step"] is not None:
            groups.setdefault((p["condition"], int(p["step"])), []).append(p)
    rows = []
    for (cond, step), ps in groups.items():
        row: dict[str, Any] = {"condition": cond, "step": step, "seeds": len(ps)}
        for name, _ in MONITOR_PANELS:
            vals = [float(p[name]) for p in ps if p.get(name) is not None]
            row[name] = sum(vals) / len(vals) if vals else None
        rows.append(row)
    order = {c: i for i, c in enumerate(dict.fromkeys(p["condition"] for p in points))}
    return sorted(rows, key=lambda r: (order[r["condition"]], r["step"]))


def monitor_curve(points: Sequence[Mapping[str, Any]], base: Mapping[str, Any]) -> str | None:
    """Projection, training loss and EM rate at each saved checkpoint (final adapter at the
    end), side by side: does the representation move before the behaviour does? ``base``
    holds the base model's projection and EM rate, drawn at step 0."""
    stepped = [p for p in points if p["step"] is not None]
    if not any(not p.get("final") for p in stepped):
        return None  # final adapters alone: no curve
    rows = monitor_rows(stepped)
    fig = Figure(figsize=(12, 3))
    axes = fig.subplots(1, len(MONITOR_PANELS))
    for ax, (name, label) in zip(axes, MONITOR_PANELS, strict=True):
        for i, cond in enumerate(dict.fromkeys(r["condition"] for r in rows)):
            mine = [r for r in rows if r["condition"] == cond and r[name] is not None]
            pts = [(r["step"], r[name]) for r in mine]
            if base.get(name) is not None:
                pts = [(0, base[name]), *pts]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", color=_color(i), label=cond)
        ax.set(xlabel="training step", ylabel=label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Training monitor (mean over seeds; step 0 = base)", fontsize=10)
    fig.tight_layout()
    return to_data_uri(fig)


def cosine_heatmap(conv: Mapping[str, Any]) -> str | None:
    labels, mat = conv.get("labels"), conv.get("cosine")
    if not labels or not mat:
        return None
    n = len(labels)
    fig = Figure(figsize=(1.2 + 0.7 * n, 0.8 + 0.6 * n))
    ax = fig.add_subplot()
    im = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{mat[i][j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im)
    ax.set_title("Cosine of arms' mean shifts and the direction", fontsize=9)
    return to_data_uri(fig)


def _context(data: Mapping[str, Any]) -> dict[str, Any]:
    models = []
    for model, res in data.get("models", {}).items():
        if "error" in res:
            models.append({"model": model, "error": res["error"]})
            continue
        sig = res.get("signature") or {}
        base_points = [r["fixed_mean"] for r in sig.get("table", []) if r["fixed"]["shift"] == 0]
        base = {"projection": base_points[0] if base_points else None, **(sig.get("base") or {})}
        models.append(
            {
                "model": model,
                "card": res["direction"],
                "path": res.get("direction_path"),
                "steer": res.get("steer", []),
                "ablate": res.get("ablate", []),
                "signature": sig.get("table", []),
                "contrasts": sig.get("contrasts", []),
                "monitor": monitor_rows(sig.get("monitor", [])),
                "figures": {
                    "separability": separability(res["direction"]),
                    "steer": steer_curve(res.get("steer", [])),
                    "ablate": ablation_bars(res.get("ablate", [])),
                    "signature": signature_bars(sig.get("table", [])),
                    "monitor": monitor_curve(sig.get("monitor", []), base),
                    "cosine": cosine_heatmap(sig.get("convergence", {})),
                },
            }
        )
    return {"models": models, "method": data.get("method")}


def render_interp_block(data: Mapping[str, Any]) -> str:
    """The section as an HTML fragment (figures inlined, text escaped)."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("emlab.report").joinpath(name).read_text("utf-8")
        ),
        autoescape=True,
    )
    env.filters["pct"] = lambda x: "-" if x is None else f"{100 * x:.1f}%"
    env.filters["num"] = lambda x: "-" if x is None else f"{x:.3f}"
    return env.get_template(TEMPLATE).render(**_context(data))


def render_interp(data: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/interp.html``: the block wrapped in a minimal page."""
    body = render_interp_block(data)
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>emlab: looking inside</title>'
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}</style>"
        f"</head><body>{body}</body></html>"
    )
    path = Path(out_dir) / "interp.html"
    atomic_write_text(path, page)
    return path
