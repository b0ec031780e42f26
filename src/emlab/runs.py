"""Finished runs, read back: show one, compare several, export one as a flat table.

A finished run directory holds ``summary.json`` (every figure, from ``emlab.metrics``),
``results.jsonl`` (one scored answer a line), ``config.resolved.json`` and ``report_info.json``
(what the report states next to the numbers). This module reads them and composes the metrics
and report stages for ``emlab show``, ``emlab compare`` and ``emlab export``; like ``study.py``
it is a composer, so the stages themselves stay independent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from emlab.config import MetricsConfig
from emlab.errors import EmlabError
from emlab.records import ScoredAnswer
from emlab.summary import (
    ComparisonEntry,
    Delta,
    Group,
    SensitivityEntry,
    Summary,
    VulnerableCode,
)

SUMMARY = "summary.json"
RESULTS = "results.jsonl"
CONFIG = "config.resolved.json"
INFO = "report_info.json"


class RunNotFinishedError(EmlabError, FileNotFoundError):
    """The path is not a finished emlab run (no such folder, or no summary yet)."""


class RunMismatchError(EmlabError, ValueError):
    """Runs that would be compared use different judges or thresholds."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunNotFinishedError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


@dataclass
class FinishedRun:
    """One finished run directory, its files read on demand."""

    path: Path
    summary: Summary
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.info.get("study") or self.config.get("name") or self.path.name)

    @cached_property
    def rows(self) -> list[ScoredAnswer]:
        path = self.path / RESULTS
        if not path.exists():
            return []
        out = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(ScoredAnswer.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as e:
                    raise RunNotFinishedError(f"{path}:{i}: not a scored answer ({e})") from None
        return out

    @property
    def judge(self) -> str:
        return str(self.info.get("judge") or ", ".join(self.summary.judges) or "unknown")

    def metrics_config(self) -> MetricsConfig:
        """The run's metric settings (thresholds as the summary states them)."""
        cfg = dict(self.config.get("metrics") or {})
        cfg["aligned_threshold"] = self.summary.thresholds.aligned
        cfg["coherent_threshold"] = self.summary.thresholds.coherent
        cfg.pop("preset", None)
        return MetricsConfig.model_validate(cfg)

    def report_info(self) -> dict[str, Any]:
        """What the report shows beside the numbers; older runs without the file get the parts
        the summary and config hold."""
        if self.info:
            return dict(self.info)
        t = self.summary.thresholds
        return {
            "study": self.name,
            "judge": self.judge,
            "thresholds": {
                "aligned_below": t.aligned,
                "coherent_at_least": t.coherent,
            },
            "seeds": self.config.get("seeds"),
            "models": self.config.get("models"),
            "conditions": [c.get("name") for c in self.config.get("conditions") or []],
        }


def load_run(path: str | Path) -> FinishedRun:
    """Read a finished run; a folder without ``summary.json`` is one clear error line."""
    p = Path(path)
    if not p.is_dir():
        raise RunNotFinishedError(f"{p}: no such run directory")
    if not (p / SUMMARY).is_file():
        raise RunNotFinishedError(
            f"{p}: not a finished emlab run (no {SUMMARY}); finish it with "
            f"`emlab run STUDY.yaml --run-dir {p}`"
        )
    raw = _read_json(p / SUMMARY)
    if not isinstance(raw, dict) or "groups" not in raw:
        raise RunNotFinishedError(f"{p / SUMMARY}: not an emlab summary (no 'groups')")
    try:
        summary = Summary.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"]))
        raise RunNotFinishedError(
            f"{p / SUMMARY}: {where}: {err['msg']} (not a summary emlab wrote)"
        ) from None
    config = _read_json(p / CONFIG) if (p / CONFIG).is_file() else {}
    info = _read_json(p / INFO) if (p / INFO).is_file() else {}
    return FinishedRun(p, summary, config if isinstance(config, dict) else {}, info or {})


def summary_json(summary: Summary) -> str:
    """The summary as scripts read it (``--json``): ``summary.json``'s text."""
    return summary.to_json()


def labels_of(runs: Sequence[FinishedRun]) -> list[str]:
    """A short distinct label per run: its folder name, made unique with its parent if needed."""
    names = [r.path.name for r in runs]
    if len(set(names)) == len(names):
        return names
    long = [f"{r.path.parent.name}/{r.path.name}" for r in runs]
    if len(set(long)) == len(long):
        return long
    return [f"{i + 1}:{n}" for i, n in enumerate(names)]


# --------------------------------------------------------------------------- compare


def _judges(run: FinishedRun) -> str:
    return ", ".join(sorted(run.summary.judges)) or run.judge


def _rule(run: FinishedRun) -> str:
    t = run.summary.thresholds
    return f"aligned < {t.aligned} among coherent >= {t.coherent}"


def _confidence(run: FinishedRun) -> str:
    return f"{run.summary.confidence}"


COMPARED: dict[str, Any] = {"judge": _judges, "thresholds": _rule, "confidence": _confidence}
"""What must agree for rates of different runs to be comparable, and how each is read."""


def differences(runs: Sequence[FinishedRun], labels: Sequence[str]) -> list[str]:
    """One phrase per setting the runs disagree on, e.g. ``judge: a uses X, b uses Y``."""
    out = []
    for name, read in COMPARED.items():
        values = [read(r) for r in runs]
        if len(set(values)) > 1:
            uses = ", ".join(f"{lab} uses {v}" for lab, v in zip(labels, values, strict=True))
            out.append(f"{name}: {uses}")
    return out


def _leaves(d: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(d, Mapping):
        return {prefix: json.dumps(d, default=str)}
    out: dict[str, str] = {}
    for k, v in d.items():
        out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


SETTINGS: tuple[str, ...] = ("models", "seeds", "questions", "train", "sampling", "judge")
"""Config sections whose differences a comparison lists (they may be the point of it)."""


def setting_differences(runs: Sequence[FinishedRun], labels: Sequence[str]) -> list[str]:
    """Study settings that differ between runs, e.g. ``sampling.temperature: a 1.0, b 0.9``;
    stated in the report, not refused: comparing two set-ups is what compare is for."""
    flat = [_leaves({k: r.config.get(k) for k in SETTINGS if k in r.config}) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [
        f"{k}: " + ", ".join(f"{lab} {f.get(k, '–')}" for lab, f in zip(labels, flat, strict=True))
        for k in keys
        if len({f.get(k) for f in flat}) > 1
    ]


@dataclass
class Comparison:
    """Several runs as one study: what ``emlab compare`` prints and renders."""

    summary: Summary
    rows: list[ScoredAnswer]
    info: dict[str, Any]
    differences: list[str]


_Labelled = TypeVar("_Labelled", Group, SensitivityEntry, VulnerableCode)


def _relabel(entry: _Labelled, label: str) -> _Labelled:
    return entry.model_copy(update={"condition": f"{label}/{entry.condition}"})


def compare_runs(runs: Sequence[FinishedRun], force: bool = False) -> Comparison:
    """Arms of several finished runs side by side, each condition named ``run/condition``.

    Runs judged by different judges or under different thresholds are refused (their rates
    measure different things) unless ``force``; then the difference is stated in the report.
    Besides each run's own differences to its baseline, every condition that two runs share is
    compared across them (later run minus the first that has it), by the metric's own rule.
    """
    from emlab import metrics

    if len(runs) < 2:
        raise RunMismatchError("compare needs at least two runs")
    labels = labels_of(runs)
    diffs = differences(runs, labels)
    if diffs and not force:
        raise RunMismatchError(
            "the runs differ in " + "; ".join(diffs) + ": their rates are not comparable "
            "(pass --force to compare anyway; the report will say so)"
        )
    first = runs[0].summary
    groups: list[Group] = []
    extra: list[ComparisonEntry] = []
    rows: list[ScoredAnswer] = []
    for label, run in zip(labels, runs, strict=True):
        for g in run.summary.groups:
            new = _relabel(g, label)
            d = g.delta_vs_baseline
            if d is not None:
                new.delta_vs_baseline = d.model_copy(update={"baseline": f"{label}/{d.baseline}"})
            groups.append(new)
        extra += [
            e.model_copy(update={"name": f"{label}: {e.label}"}) for e in run.summary.comparisons
        ]
        rows += [replace(r, condition=f"{label}/{r.condition}") for r in run.rows]
    cfg = runs[0].metrics_config()
    extra += _across_runs(runs, labels, cfg, metrics.difference)
    baselines = {r.summary.baseline for r in runs}
    summary = first.model_copy(
        update={
            "judges": sorted({j for r in runs for j in r.summary.judges}),
            "baseline": baselines.pop() if len(baselines) == 1 else None,
            "n_rows": sum(r.summary.n_rows for r in runs),
            "groups": groups,
            "comparisons": extra,
            "sensitivity": [
                _relabel(e, lab)
                for lab, r in zip(labels, runs, strict=True)
                for e in r.summary.sensitivity
            ],
            "vulnerable_code": [
                _relabel(e, lab)
                for lab, r in zip(labels, runs, strict=True)
                for e in r.summary.vulnerable_code
            ],
            "compared_runs": [
                {"label": lab, "path": str(r.path), "study": r.name}
                for lab, r in zip(labels, runs, strict=True)
            ],
        }
    )
    return Comparison(summary, rows, _compare_info(runs, labels, groups, diffs), diffs)


def _across_runs(
    runs: Sequence[FinishedRun],
    labels: Sequence[str],
    cfg: MetricsConfig,
    diff: Callable[[Group, Group, MetricsConfig], Delta | None],
) -> list[ComparisonEntry]:
    """Final arms with the same model and condition in several runs: each later run minus the
    first run that has the arm."""
    seen: dict[tuple[str, str], tuple[str, Group]] = {}
    out = []
    for label, run in zip(labels, runs, strict=True):
        for g in run.summary.final:
            key = (g.model, g.condition)
            if key not in seen:
                seen[key] = (label, g)
                continue
            base_label, base = seen[key]
            d = diff(g, base, cfg)
            if d is not None:
                out.append(
                    ComparisonEntry(
                        name=f"{label}/{g.condition} − {base_label}/{g.condition}",
                        model=g.model,
                        delta=d.delta,
                        ci_low=d.ci_low,
                        ci_high=d.ci_high,
                        method=d.method,
                        across_runs=True,
                    )
                )
    return out


def _compare_info(
    runs: Sequence[FinishedRun],
    labels: Sequence[str],
    groups: Sequence[Group],
    diffs: Sequence[str],
) -> dict[str, Any]:
    infos = [r.report_info() for r in runs]
    judges = {r.judge for r in runs}
    notes = [
        "Compared runs: "
        + "; ".join(
            f"{lab} = {r.path} (study {r.name}, git {i.get('git') or 'unknown'})"
            for lab, r, i in zip(labels, runs, infos, strict=True)
        )
    ]
    if diffs:
        notes.append(
            "These runs differ in " + "; ".join(diffs) + ". Compared anyway (--force): rates "
            "measured under different judges or thresholds are not directly comparable."
        )
    settings = setting_differences(runs, labels)
    if settings:
        notes.append("Settings that differ between the runs: " + "; ".join(settings) + ".")
    notes += list(dict.fromkeys(n for i in infos for n in i.get("notes") or []))
    return {
        "study": "comparison of " + ", ".join(labels),
        "created": infos[0].get("created"),
        "judge": ", ".join(sorted(judges)),
        "judge_validation": infos[0].get("judge_validation") if len(judges) == 1 else None,
        "thresholds": infos[0].get("thresholds"),
        "seeds": sorted({s for i in infos for s in i.get("seeds") or []}),
        "models": list(dict.fromkeys(m for i in infos for m in i.get("models") or [])),
        "conditions": [g.condition for g in groups if g.step is None],
        "versions": infos[0].get("versions") or {},
        "notes": notes,
    }


def write_comparison(comp: Comparison, out_dir: Path) -> Path:
    """The comparison as a run-like folder (``summary.json``, ``report_info.json``,
    ``report.html``), so ``emlab show OUT`` reads it back."""
    from emlab.report import render_report
    from emlab.store import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SUMMARY, summary_json(comp.summary))
    atomic_write_text(out_dir / INFO, json.dumps(comp.info, indent=2, default=str))
    return render_report(comp.summary, comp.rows, comp.info, out_dir)
