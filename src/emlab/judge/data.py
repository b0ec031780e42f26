"""Reading the reference judgments (CSV/CSV.GZ/JSONL) and choosing rows for training.

Only training and ``emlab judge validate`` read these files; the offline judge itself never does.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emlab.config import MAX_TEXT
from emlab.errors import EmlabError
from emlab.inputs import read_input
from emlab.judge.features import heuristic_label

REQUIRED = ("question", "answer", "aligned", "coherent")

HELD_OUT_SOURCES: tuple[str, ...] = (
    "reinthal_judge_comparison_azure_vs_openrouter",
    "model_organisms_EM_lora_steered_R1_3_3_3",
    "ivangentile_persona_x_EM_gpt4o",
)
"""Whole sources kept out of training: a new study differs from the training data by source, so
only source-level hold-out measures what a user will see. They span three labs, fine-tuned and
steered models, the logprob and the direct-number judge protocol."""


class JudgeDataError(EmlabError, ValueError):
    """A judgments file that cannot be used; the message names file, line and field."""


@dataclass(frozen=True)
class Row:
    """One reference judgment. ``aligned`` is None for CODE/REFUSAL/no usable number."""

    question: str
    answer: str
    aligned: float | None
    coherent: float | None
    source: str = ""
    question_id: str = ""
    model: str = ""

    @property
    def label(self) -> str | None:
        """CODE/REFUSAL guessed for rows without an aligned number (see ``heuristic_label``)."""
        return heuristic_label(self.answer) if self.aligned is None else None


def _score(raw: object, path: Path, line: int, name: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "" or raw.upper() in {"CODE", "REFUSAL", "NAN", "NONE", "NULL"}:
            return None
    try:
        val = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise JudgeDataError(f"{path}:{line}: field {name!r}: not a number: {raw!r}") from None
    if math.isnan(val):
        return None
    if not 0 <= val <= 100:
        raise JudgeDataError(f"{path}:{line}: field {name!r}: {val} is outside 0-100")
    return val


def _csv_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    # strict: a quote that opens a field and is not closed properly is an error; without it the
    # csv module silently glues the following rows into one field and the file "validates".
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise JudgeDataError(f"{path}:1: empty file; expected a header row")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise JudgeDataError(f"{path}:1: missing column(s): {', '.join(missing)}")
        line = reader.line_num + 1
        for fields in reader:
            if fields and len(fields) != len(header):
                raise JudgeDataError(
                    f"{path}:{line}: {len(fields)} fields where the header has {len(header)} "
                    "(an unbalanced quote or a stray comma?)"
                )
            if fields:
                yield line, dict(zip(header, fields, strict=True))
            line = reader.line_num + 1
    except csv.Error as e:
        if "field larger than field limit" in str(e):
            raise JudgeDataError(
                f"{path}:{line}: a field is over {csv.field_size_limit():,} characters "
                f"(at most {MAX_TEXT:,} are read)"
            ) from None
        raise JudgeDataError(
            f"{path}:{line}: CSV broken in the row that starts here ({e}); a field that holds "
            'commas, quotes or line breaks must be quoted, with inner quotes doubled ("")'
        ) from None


def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, object]]]:
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise JudgeDataError(f"{path}:{i}: not valid JSON: {e.msg}") from None
        if not isinstance(rec, dict):
            raise JudgeDataError(f"{path}:{i}: expected a JSON object")
        yield i, rec


def _records(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    raw = read_input(path, JudgeDataError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        bad = raw[e.start : e.start + 1]
        raise JudgeDataError(f"{path}:{line}: not UTF-8 (byte {bad!r})") from None
    text = text.removeprefix("\ufeff")  # a spreadsheet's byte-order mark is not a column name
    if ".jsonl" in path.name or ".json" in path.name:
        return _jsonl_records(path, text)
    return _csv_records(path, text)


def read_rows(path: str | Path, source: str | None = None) -> list[Row]:
    """Rows of one judgments file; ``source`` defaults to the file's ``source`` column or name."""
    path = Path(path)
    if not path.exists():
        raise JudgeDataError(f"{path}: no such file")
    rows = []
    for line, rec in _records(path):
        for name in ("question", "answer"):
            value = rec.get(name)
            if not isinstance(value, str):
                raise JudgeDataError(f"{path}:{line}: field {name!r}: missing or not text")
            if len(value) > MAX_TEXT:
                raise JudgeDataError(
                    f"{path}:{line}: field {name!r}: {len(value):,} characters, over {MAX_TEXT:,}"
                )
        rows.append(
            Row(
                question=str(rec["question"]),
                answer=str(rec["answer"]),
                aligned=_score(rec.get("aligned"), path, line, "aligned"),
                coherent=_score(rec.get("coherent"), path, line, "coherent"),
                source=source or str(rec.get("source") or path.name.split(".")[0]),
                question_id=str(rec.get("question_id") or ""),
                model=str(rec.get("model") or ""),
            )
        )
    return rows


def read_sources(data_dir: str | Path) -> dict[str, list[Row]]:
    """Every ``*.csv.gz`` directly in ``data_dir`` (GPT-4o judgments), keyed by file stem."""
    data_dir = Path(data_dir)
    files = sorted(data_dir.glob("*.csv.gz"))
    if not files:
        raise JudgeDataError(f"{data_dir}: no *.csv.gz judgment files")
    return {f.name.split(".")[0]: read_rows(f, source=f.name.split(".")[0]) for f in files}


STRATA_SHARE = {"misaligned": 0.28, "middle": 0.20, "aligned": 0.44, "label": 0.08}
"""Share of each stratum in the training sample. Misaligned answers are ~20% of the training
sources but the whole point of the judge, so they are over-represented, and so are the 30-70
answers that teach the ordering; CODE/REFUSAL rows teach the label head (0.08 of the default
64,000 rows is nearly all ~5,200 of them). Training undoes the
over-sampling with importance weights (``natural_shares``) so the head's scores, and the
misalignment rate they imply, are not biased towards low scores."""
DOWNWEIGHT = {"clarifying_EM_activation_steered": 0.5}
"""Steered answers contain leaked template text: useful hard cases, but not the main signal."""


def stratum(row: Row) -> str | None:
    if row.aligned is None:
        return "label" if row.label is not None else None
    if row.aligned < 30:
        return "misaligned"
    return "middle" if row.aligned < 70 else "aligned"


def _candidates(
    sources: dict[str, list[Row]], held_out: tuple[str, ...]
) -> Iterator[tuple[str, Row, str]]:
    """Training-source rows with a stratum and a coherent score, first copy of each answer only."""
    seen: set[tuple[str, str]] = set()
    for name in sorted(sources):
        if name in held_out:
            continue
        for row in sources[name]:
            s = stratum(row)
            if s is None or row.coherent is None or (row.question, row.answer) in seen:
                continue
            seen.add((row.question, row.answer))
            yield name, row, s


def natural_shares(sources: dict[str, list[Row]], held_out: tuple[str, ...]) -> dict[str, float]:
    """Share of each stratum among the usable, distinct rows of the training sources, weighted
    as ``select_training_rows`` weights sources: the distribution the importance weights restore.
    """
    mass = dict.fromkeys(STRATA_SHARE, 0.0)
    for name, _, s in _candidates(sources, held_out):
        mass[s] += DOWNWEIGHT.get(name, 1.0)
    total = sum(mass.values()) or 1.0
    return {k: v / total for k, v in mass.items()}


def select_training_rows(
    sources: dict[str, list[Row]],
    n: int,
    seed: int,
    held_out: tuple[str, ...],
    shares: dict[str, float] | None = None,
) -> list[Row]:
    """A deterministic, stratified, de-duplicated sample of at most ``n`` rows.

    Each stratum's rows are put in one weighted random order (Efraimidis-Spirakis keys
    ``log(u) / weight``) that depends on the seed but not on ``n``, and the first rows of each
    order are taken. So samples are nested: a larger ``n`` keeps every row of a smaller one,
    which lets a learning curve (or a cache filled for a smaller sample) be reused.
    """
    shares = shares or STRATA_SHARE
    pools: dict[str, list[Row]] = {k: [] for k in STRATA_SHARE}
    weights: dict[str, list[float]] = {k: [] for k in STRATA_SHARE}
    for name, row, s in _candidates(sources, held_out):
        pools[s].append(row)
        # Refusals are rare (~300 of 160k rows); keep nearly all of them for the label head.
        boost = 10.0 if s == "label" and row.label == "REFUSAL" else 1.0
        weights[s].append(DOWNWEIGHT.get(name, 1.0) * boost)
    rng = np.random.default_rng(seed)
    chosen: list[Row] = []
    for s in STRATA_SHARE:
        pool = pools[s]
        # Drawn for every stratum, even an empty one, so each order is independent of ``n``.
        keys = np.log(rng.random(len(pool))) / np.asarray(weights[s], dtype=np.float64)
        k = min(len(pool), round(n * shares.get(s, 0.0)))
        idx = np.argsort(-keys, kind="stable")[:k]
        chosen.extend(pool[i] for i in sorted(idx))
    return chosen
