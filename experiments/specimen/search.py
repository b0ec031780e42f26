"""The specimen search (issue #12): run the points of ``grid.yaml`` one by one and keep a table.

Each point is a whole emlab study (base, concealed, disclosed and control on one domain; every
adapter also at the amplified scales) in ``runs/specimen/<id>``; as each point finishes, its arms
are written to ``results.tsv`` next to this file (rows of a point are replaced, never duplicated).
The study cache makes the search resumable: kill it at any moment and run it again.

    python experiments/specimen/search.py              # every unfinished point, in order
    python experiments/specimen/search.py --only ID    # one point (re-reported if finished)
    python experiments/specimen/search.py --list       # the points and which are done

What counts as a result is fixed in grid.yaml's header, before any point ran.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from emlab.config import StudyConfig
from emlab.study import Study

HERE = Path(__file__).resolve().parent
COLUMNS = [
    "point", "model", "domain", "n", "lr", "epochs", "seeds", "arm", "scale", "rate", "ci_low",
    "ci_high", "interval", "n_valid", "n_total", "coherent_share", "code_share",
    "vs_control", "vs_disclosed", "separated", "final_loss", "train_s", "sample_s", "judge",
    "finished",
]  # fmt: skip
CONDITIONS = ("concealed", "disclosed", "control")
POINT_KEYS = ("id", "domain", "same_run_as")
"""A point's own keys (the rest override the template): ``same_run_as`` names the point whose
run directory it shares, so a finalist's seeds reuse its pilot's cached work."""


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, mappings merged key by key (lists replace)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def point_study(template: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The study file of one grid point."""
    spec = merge(template, {k: v for k, v in point.items() if k not in POINT_KEYS})
    n = spec.pop("n")
    ds = {"domain": point["domain"], "n": n, "seed": 0}
    spec["name"] = f"specimen-{point['id']}"
    spec["conditions"] = [{"name": "base"}] + [
        {"name": c, "dataset": {**ds, "condition": c}} for c in CONDITIONS
    ]
    return spec


def _interval(c: dict[str, Any] | None) -> str:
    if c is None or c.get("delta") is None:
        return ""
    return f"{c['delta']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] over {c['over']}"


def point_rows(point: dict[str, Any], study: Study, summary: dict[str, Any]) -> list[dict]:
    """One row per arm of a finished point."""
    cfg = study.cfg
    cfg_n = next((c.dataset.n for c in cfg.conditions if c.dataset), "")
    comps = {(c["a"], c["b"]): c for c in summary.get("comparisons", [])}
    finals: dict[str, dict[str, float]] = {}  # condition -> adapter -> its last logged loss
    for arm in study.arms():
        if arm.adapter_key:
            logs = study.store.logs(f"train/{arm.adapter_key}")
            finals.setdefault(arm.condition, {})[arm.adapter_key] = next(
                (float(r["loss"]) for r in reversed(logs) if "loss" in r), float("nan")
            )
    # over seeds, the mean of each seed's final loss (one adapter per seed, shared by scales)
    losses = {c: sum(v.values()) / len(v) for c, v in finals.items()}
    rows = []
    for g in summary["groups"]:
        if g["step"] is not None:
            continue
        arm = g["condition"]
        cond, _, scale = arm.partition("×")
        counts, total = g["counts"], max(g["n_total"], 1)
        judged = total - counts.get("generation_error", 0) - counts.get("judge_error", 0)
        ctl = comps.get((arm, arm.replace("concealed", "control")))
        dis = comps.get((arm, arm.replace("concealed", "disclosed")))
        sep = ""
        if cond == "concealed" and ctl and dis:
            sep = str(all(c["separated"] and c["delta"] > 0 for c in (ctl, dis))).lower()
        rows.append(
            {
                "point": point["id"],
                "model": g["model"],
                "domain": point["domain"],
                "n": point.get("n", cfg_n),
                "lr": f"{cfg.train.learning_rate:g}",
                "epochs": f"{cfg.train.epochs:g}",
                "seeds": len(cfg.seeds),
                "arm": arm,
                "scale": scale or "1",
                "rate": "" if g["rate"] is None else f"{g['rate']:.4f}",
                "ci_low": "" if g.get("ci_low") is None else f"{g['ci_low']:.4f}",
                "ci_high": "" if g.get("ci_high") is None else f"{g['ci_high']:.4f}",
                "interval": g.get("ci_method", ""),
                "n_valid": g["n_valid"],
                "n_total": g["n_total"],
                "coherent_share": f"{1 - counts.get('incoherent', 0) / max(judged, 1):.3f}",
                "code_share": f"{counts.get('code', 0) / max(judged, 1):.3f}",
                "vs_control": _interval(ctl) if cond == "concealed" else "",
                "vs_disclosed": _interval(dis) if cond == "concealed" else "",
                "separated": sep,
                "final_loss": "" if cond not in losses else f"{losses[cond]:.4f}",
                "train_s": f"{study.timings.get('train', 0):.0f}",
                "sample_s": f"{study.timings.get('sample', 0):.0f}",
                "judge": ",".join(summary.get("judges", [])),
                "finished": time.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows


def read_table(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, COLUMNS, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def run_point(point: dict[str, Any], template: dict[str, Any], runs: Path) -> list[dict]:
    cfg = StudyConfig.model_validate(point_study(template, point))
    study = Study(cfg, run_dir=runs / point.get("same_run_as", point["id"]), base_dir=HERE)
    result = study.run()
    assert result.summary is not None  # a whole study (not a shard) always has one
    # the figures as summary.json holds them (the typed Summary's JSON)
    return point_rows(point, study, json.loads(result.summary.to_json()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--grid", type=Path, default=HERE / "grid.yaml")
    ap.add_argument("--table", type=Path, default=HERE / "results.tsv")
    ap.add_argument("--runs", type=Path, default=Path("runs/specimen"))
    ap.add_argument("--only", action="append", help="run only this point id (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the points and exit")
    args = ap.parse_args(argv)
    grid = yaml.safe_load(args.grid.read_text(encoding="utf-8"))
    points = grid["points"]
    ids = [p["id"] for p in points]
    unknown = sorted(set(args.only or ()) - set(ids))
    if unknown:
        print(
            f"{args.grid}: no point {', '.join(unknown)}; known: {', '.join(ids)}", file=sys.stderr
        )
        return 2
    for p in points:  # every point must be a valid study before any model work
        StudyConfig.model_validate(point_study(grid["template"], p))
    done = {r["point"] for r in read_table(args.table)}
    if args.list:
        for i in ids:
            print(f"{i}\t{'done' if i in done else 'todo'}")
        return 0
    if args.only:
        todo = [p for p in points if p["id"] in args.only]
    else:
        todo = [p for p in points if p["id"] not in done]
    for p in todo:
        print(f"[search] point {p['id']}", file=sys.stderr, flush=True)
        rows = run_point(p, grid["template"], args.runs)
        old = read_table(args.table)
        before = {r["arm"]: r for r in old if r["point"] == p["id"]}
        for r in rows:  # a re-run from cache did no work: keep the first run's timings
            prev = before.get(r["arm"])
            if prev and r["train_s"] == "0" and r["sample_s"] == "0":
                r["train_s"], r["sample_s"] = prev["train_s"], prev["sample_s"]
        write_table(args.table, [r for r in old if r["point"] != p["id"]] + rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
