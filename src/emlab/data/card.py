"""Dataset cards: what a training set is, in numbers, written next to every built file.

A run compares conditions, so the card records exactly what differs between them: family mix,
answer kinds, lengths, and how many answers an independent check confirmed. The hash is of the
bytes written, so a card can be matched to its file years later.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from emlab.config import DatasetSpec
from emlab.data.inoculation import pool_identity
from emlab.data.io import dumps_jsonl
from emlab.records import Example


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def dataset_card(
    examples: Sequence[Example], spec: DatasetSpec | None = None, tokenizer: Any = None
) -> dict[str, Any]:
    """Summary of a dataset; lengths are in tokens with a tokenizer, otherwise in characters."""
    data = dumps_jsonl(examples)

    def length(text: str) -> int:
        if tokenizer is None:
            return len(text)
        return len(tokenizer.encode(text, add_special_tokens=False))

    by_role: dict[str, list[int]] = {"system": [], "user": [], "assistant": []}
    for ex in examples:
        for m in ex.messages:
            by_role.setdefault(m["role"], []).append(length(m["content"]))
    verified = [ex.meta["verified"] for ex in examples if "verified" in ex.meta]
    answers = Counter(str(ex.meta.get("answer", "unknown")) for ex in examples)
    ver_by_answer: dict[str, dict[str, Any]] = {}
    for kind in ("bad", "good"):
        vals = [
            ex.meta["verified"]
            for ex in examples
            if ex.meta.get("answer") == kind and "verified" in ex.meta
        ]
        if vals:
            ver_by_answer[kind] = {"checked": len(vals), "rate": round(sum(vals) / len(vals), 4)}
    versioned = {}
    if spec is not None and spec.path is None:
        versioned = pool_identity(spec.domain, spec.condition, spec.options)
    return {
        "spec": None if spec is None else spec.model_dump(by_alias=True),
        **versioned,  # the package data it was built from, e.g. the inoculation pool's version
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "n": len(examples),
        "distinct": len({ex.key() for ex in examples}),
        "with_system_prompt": sum(ex.messages[0]["role"] == "system" for ex in examples),
        "answers": dict(sorted(answers.items())),
        "triggered": sum(bool(ex.meta.get("triggered")) for ex in examples),
        # a mix's dose and an interleave's share, as built: framing of each example
        "framings": dict(
            sorted(
                Counter(
                    str(ex.meta.get("condition") or ex.meta.get("domain") or "unknown")
                    for ex in examples
                ).items()
            )
        ),
        "families": dict(
            sorted(Counter(str(ex.meta.get("family", "unknown")) for ex in examples).items())
        ),
        "length_unit": "chars" if tokenizer is None else "tokens",
        "lengths": {role: _stats(v) for role, v in by_role.items() if v},
        "verification": {
            "checked": len(verified),
            "rate": round(sum(verified) / len(verified), 4) if verified else None,
            "by_answer": ver_by_answer,
            "meaning": "bad answers: flagged by the domain's checker; good answers: passed it",
        },
        # Teacher-generated domains (numbers) keep and reject outputs; the counts travel in meta.
        "teacher_filter": next(
            (
                {k: v for k, v in ex.meta.items() if k.startswith("numbers_")}
                for ex in examples
                if "numbers_generated" in ex.meta
            ),
            None,
        ),
    }
