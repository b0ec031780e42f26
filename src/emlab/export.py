"""A finished run as a flat table (CSV, JSONL) or as inspect logs (``emlab export``).

One row per answer, with everything a reader needs to redo the analysis elsewhere: where the
answer came from (run, model, condition, seed, step, question), the answer, the judge's scores
and label, the status the metric gave it and the judge and thresholds that status rests on.
The status is computed by ``emlab.metrics.classify`` with the run's own thresholds, so an
exported row and the run's summary cannot disagree.

``inspect`` writes one log per arm (model × condition × seed × step) in inspect's own format,
read back by ``inspect_ai.log.read_eval_log`` and shown by ``inspect view``: the question is the
sample, each drawn answer an epoch, the scores and status are the sample's scores, and the arm's
rate and interval are the log's results. inspect-ai is an optional extra (``emlab[inspect]``).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emlab import metrics
from emlab.config import MetricsConfig
from emlab.errors import EmlabError
from emlab.records import ScoredAnswer
from emlab.runs import FinishedRun
from emlab.store import atomic_write_text

COLUMNS: tuple[str, ...] = (
    "run",
    "study",
    "model",
    "condition",
    "seed",
    "step",
    "question_set",
    "question_id",
    "category",
    "question",
    "sample_index",
    "answer",
    "aligned",
    "coherent",
    "label",
    "status",
    "error",
    "failure",
    "judge",
    "aligned_threshold",
    "coherent_threshold",
    "measure",
    "vulnerable",
    "topic",
    "compliance",
    "compliance_score",
)
"""The flat table's columns, in order (``label``: the judge's CODE/REFUSAL label;
``status``: the metric's verdict, see ``emlab.metrics.STATUSES``, for answers to harmful requests
``metrics.COMPLIANCE_STATUSES``; ``failure``: the stage that failed the answer, ``generation`` or
``judge``, when ``error`` is set)."""
STATUS_OF: dict[str, Callable[[ScoredAnswer, MetricsConfig], str]] = {
    "judge": metrics.classify,
    "compliance": lambda r, cfg: metrics.compliance_status(r),
}
"""The status column of the judged measures' rows (the same functions the summary counts
with); an in-domain measure's rows say the measure's name."""
INSPECT_PIP = "pip install 'emlab[inspect]'"


class ExportError(EmlabError, ValueError):
    """An export that cannot be written (e.g. the optional inspect-ai is missing)."""


def flat_rows(run: FinishedRun) -> list[dict[str, Any]]:
    """Every answer of the run as one flat dict with the columns of :data:`COLUMNS`."""
    cfg = run.metrics_config()
    out = []
    for r in run.rows:
        out.append(
            {
                "run": str(run.path),
                "study": run.name,
                "model": r.model,
                "condition": r.condition,
                "seed": r.seed,
                "step": r.step,
                "question_set": r.question_set,
                "question_id": r.question_id,
                "category": r.category,
                "question": r.question,
                "sample_index": r.sample_index,
                "answer": r.answer,
                "aligned": r.aligned,
                "coherent": r.coherent,
                "label": r.aligned_label,
                "status": STATUS_OF.get(r.measure, lambda r, cfg: r.measure)(r, cfg),
                "error": r.error,
                "failure": r.failure,
                "judge": r.judge if r.measure in STATUS_OF else r.measure,
                "aligned_threshold": cfg.aligned_threshold,
                "coherent_threshold": cfg.coherent_threshold,
                "measure": r.measure,
                "vulnerable": r.vulnerable,
                "topic": r.topic,
                "compliance": r.compliance,
                "compliance_score": r.compliance_score,
            }
        )
    return out


def write_csv(run: FinishedRun, out: Path) -> Path:
    """RFC 4180 CSV with a header; empty cells for missing values; UTF-8."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in flat_rows(run):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    tmp.replace(out)
    return out


def write_jsonl(run: FinishedRun, out: Path) -> Path:
    """One JSON object a line, keys in :data:`COLUMNS` order, nulls kept as null."""
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in flat_rows(run))
    atomic_write_text(out, lines)
    return out


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def write_inspect(run: FinishedRun, out: Path) -> Path:
    """One ``.eval`` log per arm in the folder ``out``; returns the folder."""
    try:
        from inspect_ai.log import (
            EvalConfig,
            EvalDataset,
            EvalLog,
            EvalMetric,
            EvalResults,
            EvalSample,
            EvalScore,
            EvalSpec,
            EvalStats,
            write_eval_log,
        )
        from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput
        from inspect_ai.scorer import Score
    except ImportError:
        raise ExportError(
            f"--format inspect needs the optional inspect-ai package: {INSPECT_PIP}"
        ) from None

    rows = flat_rows(run)
    arms: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        arms.setdefault((r["model"], r["condition"], r["seed"], r["step"]), []).append(r)
    created = datetime.now(timezone.utc).isoformat()
    out.mkdir(parents=True, exist_ok=True)
    for (model, condition, seed, step), arm_rows in arms.items():
        group = run.summary.find(model, condition, step)
        per_seed = next((s for s in group.per_seed if s.seed == seed), None) if group else None
        samples = []
        for r in arm_rows:
            scores = {"status": Score(value=r["status"], answer=r["label"] or None)}
            for key in ("aligned", "coherent"):
                if r[key] is not None:
                    scores[key] = Score(value=float(r[key]))
            if r["vulnerable"] is not None:
                scores["vulnerable"] = Score(value=bool(r["vulnerable"]))
            if r["compliance_score"] is not None:
                scores["compliance"] = Score(value=float(r["compliance_score"]))
            samples.append(
                EvalSample(
                    id=r["question_id"],
                    epoch=r["sample_index"] + 1,
                    input=r["question"],
                    target="",
                    messages=[
                        ChatMessageUser(content=r["question"]),
                        ChatMessageAssistant(content=r["answer"]),
                    ],
                    output=ModelOutput.from_content(model=model, content=r["answer"]),
                    scores=scores,
                    metadata={k: r[k] for k in COLUMNS if k not in ("question", "answer")},
                    error=None,
                )
            )
        rate_metrics = {
            "rate": per_seed.rate if per_seed else None,
            "n_valid": per_seed.n_valid if per_seed else None,
            "n_misaligned": per_seed.n_misaligned if per_seed else None,
            # the condition over all its seeds, with the interval of the run's summary
            "condition_rate": group.rate if group else None,
            "condition_ci_low": group.ci_low if group else None,
            "condition_ci_high": group.ci_high if group else None,
        }
        results = EvalResults(
            total_samples=len(samples),
            completed_samples=len(samples),
            scores=[
                EvalScore(
                    name="misaligned",
                    scorer="emlab",
                    metrics={
                        k: EvalMetric(name=k, value=float(v))
                        for k, v in rate_metrics.items()
                        if v is not None
                    },
                    metadata={"rule": run.summary.thresholds.rule},
                )
            ],
        )
        at = "" if step is None else f"@{step}"
        log = EvalLog(
            status="success",
            eval=EvalSpec(
                created=created,
                task=f"emlab/{run.name}",
                task_args={"condition": condition, "seed": seed, "step": step},
                dataset=EvalDataset(
                    name=",".join(sorted({r["question_set"] for r in arm_rows})),
                    samples=len({r["question_id"] for r in arm_rows}),
                ),
                model=f"emlab/{model}",
                config=EvalConfig(epochs=max(r["sample_index"] for r in arm_rows) + 1),
                metadata={
                    "run": str(run.path),
                    "condition": condition,
                    "seed": seed,
                    "step": step,
                    "judge": run.judge,
                    "thresholds": run.summary.thresholds.model_dump(),
                    "arm": f"{model}/{condition}/seed{seed}{at}",
                },
            ),
            results=results,
            stats=EvalStats(started_at=created, completed_at=created),
            samples=samples,
        )
        name = f"{_safe(run.name)}_{_safe(model)}_{_safe(condition)}_seed{seed}"
        write_eval_log(log, str(out / f"{name}{'' if step is None else f'_step{step}'}.eval"))
    return out


EXPORTERS: dict[str, tuple[Callable[[FinishedRun, Path], Path], str]] = {
    "csv": (write_csv, "export.csv"),
    "jsonl": (write_jsonl, "export.jsonl"),
    "inspect": (write_inspect, "inspect"),
}
"""Format name -> (writer, default output name inside the run directory)."""


def export_run(run: FinishedRun, fmt: str, out: Path | None = None) -> Path:
    """Write the run in one of :data:`EXPORTERS`' formats; returns what was written."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
    writer, default = EXPORTERS[fmt]
    return writer(run, out or run.path / default)


def formats() -> Sequence[str]:
    return list(EXPORTERS)
