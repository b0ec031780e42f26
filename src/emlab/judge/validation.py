"""``validate``: score reference rows with a judge and measure agreement, overall and by group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emlab.judge.agreement import Paired, agreement
from emlab.judge.base import Judge
from emlab.judge.data import Row
from emlab.records import UNCERTAINTY_LIMIT, Generation, content_hash


def _as_row(r: Row | Mapping[str, Any], i: int) -> Row:
    if isinstance(r, Row):
        return r
    try:
        return Row(
            question=str(r["question"]),
            answer=str(r["answer"]),
            aligned=None if r.get("aligned") is None else float(r["aligned"]),
            coherent=None if r.get("coherent") is None else float(r["coherent"]),
            source=str(r.get("source") or ""),
            question_id=str(r.get("question_id") or ""),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"row {i}: needs question, answer, aligned, coherent ({e})") from None


def outside_share(judgments: Sequence[Any]) -> float | None:
    """Share of judgments whose uncertainty puts them outside the judge's validated range
    (None when the judge gives no uncertainty)."""
    u = [j.uncertainty for j in judgments if j.uncertainty is not None]
    return round(sum(v > UNCERTAINTY_LIMIT for v in u) / len(u), 4) if u else None


def validate(
    judge: Judge,
    rows: Sequence[Row | Mapping[str, Any]],
    batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Judge every row and compare with its reference scores.

    Returns ``overall``, ``per_source`` and ``per_question`` agreement dicts (see
    ``agreement.agreement``), plus the judge name and the number of judge errors.
    """
    data = [_as_row(r, i) for i, r in enumerate(rows)]
    gens = [
        Generation(
            key=content_hash({"question": r.question, "answer": r.answer, "i": i}),
            model=r.model,
            question_id=r.question_id,
            question=r.question,
            answer=r.answer,
            sample_index=0,
            seed=0,
        )
        for i, r in enumerate(data)
    ]
    judged = []
    for start in range(0, len(gens), batch_size):
        judged += judge.judge(gens[start : start + batch_size])
        if progress:
            progress(len(judged), len(gens))
    ok = [(r, j) for r, j in zip(data, judged, strict=True) if j.error is None]

    def group(pairs: list[tuple[Row, Any]]) -> dict[str, Any]:
        figs = agreement(
            Paired(
                ref_aligned=[r.aligned for r, _ in pairs],
                ref_coherent=[r.coherent for r, _ in pairs],
                aligned=[j.aligned for _, j in pairs],
                coherent=[j.coherent for _, j in pairs],
            )
        )
        figs["share_outside_range"] = outside_share([j for _, j in pairs])
        return figs

    by_source: dict[str, list[tuple[Row, Any]]] = defaultdict(list)
    by_question: dict[str, list[tuple[Row, Any]]] = defaultdict(list)
    for r, j in ok:
        by_source[r.source or "?"].append((r, j))
        by_question[r.question_id or content_hash(r.question, 8)].append((r, j))
    errors = [j.error for j in judged if j.error is not None]
    return {
        "judge": judge.name,
        "n_rows": len(data),
        "n_errors": len(errors),
        "first_error": errors[0] if errors else None,
        "overall": group(ok) if ok else None,
        "per_source": {k: group(v) for k, v in sorted(by_source.items())},
        "per_question": {k: group(v) for k, v in sorted(by_question.items())},
    }
