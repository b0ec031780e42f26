"""Finished runs, read back: show one, compare several, export one as a flat table.

A finished run directory holds ``summary.json`` (every figure, from ``emlab.metrics``),
``results.jsonl`` (one scored answer a line), ``config.resolved.json`` and ``report_info.json``
(what the report states next to the numbers). This module reads them and composes the metrics
and report stages for ``emlab show``, ``emlab compare`` and ``emlab export``; like ``study.py``
it is a composer, so the stages themselves stay independent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from emlab.config import MetricsConfig
from emlab.records import ScoredAnswer

SUMMARY = "summary.json"
RESULTS = "results.jsonl"
CONFIG = "config.resolved.json"
INFO = "report_info.json"


class RunNotFinishedError(FileNotFoundError):
    """The path is not a finished emlab run (no such folder, or no summary yet)."""


class RunMismatchError(ValueError):
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
    summary: dict[str, Any]
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
        judges = self.summary.get("judges") or []
        return str(self.info.get("judge") or ", ".join(judges) or "unknown")

    def metrics_config(self) -> MetricsConfig:
        """The run's metric settings (thresholds as the summary states them)."""
        cfg = dict(self.config.get("metrics") or {})
        t = self.summary.get("thresholds") or {}
        if "aligned" in t:
            cfg["aligned_threshold"] = t["aligned"]
        if "coherent" in t:
            cfg["coherent_threshold"] = t["coherent"]
        cfg.pop("preset", None)
        return MetricsConfig.model_validate(cfg)

    def report_info(self) -> dict[str, Any]:
        """What the report shows beside the numbers; older runs without the file get the parts
        the summary and config hold."""
        if self.info:
            return dict(self.info)
        t = self.summary.get("thresholds") or {}
        return {
            "study": self.name,
            "judge": self.judge,
            "thresholds": {
                "aligned_below": t.get("aligned"),
                "coherent_at_least": t.get("coherent"),
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
    summary = _read_json(p / SUMMARY)
    if not isinstance(summary, dict) or "groups" not in summary:
        raise RunNotFinishedError(f"{p / SUMMARY}: not an emlab summary (no 'groups')")
    config = _read_json(p / CONFIG) if (p / CONFIG).is_file() else {}
    info = _read_json(p / INFO) if (p / INFO).is_file() else {}
    return FinishedRun(p, summary, config if isinstance(config, dict) else {}, info or {})


def summary_json(summary: Mapping[str, Any]) -> str:
    """The summary as scripts read it (``--json``): indented, keys in their written order."""
    return json.dumps(summary, indent=2, default=str, ensure_ascii=False)


def labels_of(runs: Sequence[FinishedRun]) -> list[str]:
    """A short distinct label per run: its folder name, made unique with its parent if needed."""
    names = [r.path.name for r in runs]
    if len(set(names)) == len(names):
        return names
    long = [f"{r.path.parent.name}/{r.path.name}" for r in runs]
    if len(set(long)) == len(long):
        return long
    return [f"{i + 1}:{n}" for i, n in enumerate(names)]
