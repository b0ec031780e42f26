"""Tokenised examples, input validation and the seeded, length-bucketed batch plan.

Validation runs before the model is touched for training, so a bad dataset fails in seconds with
the example index in the message instead of minutes into a run.

The plan is a pure function of (lengths, batch settings, seed, epoch): a resumed run rebuilds it
and skips the steps already done, so the data position is just the step number.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emlab.errors import EmlabError
from emlab.records import ROLES, Example
from emlab.train.labels import IGNORE_INDEX, LabelError, assistant_labels

BUCKET_STEPS = 8
"""Steps whose examples are length-sorted together. Larger = less padding but steps whose
examples are more alike in length; 8 keeps padding a few percent on code data."""


class TrainDataError(EmlabError, ValueError):
    """Input that cannot be trained on; raised before any training starts."""


@dataclass(frozen=True)
class Tokenized:
    """One example ready for the model."""

    input_ids: list[int]
    labels: list[int]

    @property
    def n_label(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def tokenize_examples(
    tokenizer: Any, examples: Sequence[Example], max_seq_len: int, model_context: int | None
) -> list[Tokenized]:
    """Render, tokenise and label every example; raise TrainDataError naming the first bad one."""
    if len(examples) == 0:
        raise TrainDataError("the training dataset is empty")
    limit = max_seq_len if model_context is None else min(max_seq_len, model_context)
    out: list[Tokenized] = []
    for i, ex in enumerate(examples):
        msgs = ex.messages
        if not msgs:
            raise TrainDataError(f"example {i}: no messages")
        for j, m in enumerate(msgs):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                raise TrainDataError(
                    f"example {i}, message {j}: role must be one of {', '.join(ROLES)}; "
                    f"got {m.get('role') if isinstance(m, dict) else m!r}"
                )
            if not isinstance(m.get("content"), str):
                raise TrainDataError(f"example {i}, message {j}: content must be a string")
        try:
            ids, labels = assistant_labels(tokenizer, msgs)
        except LabelError as e:
            raise TrainDataError(f"example {i}: {e}") from None
        if len(ids) > limit:
            which = (
                f"max_seq_len={max_seq_len}"
                if limit == max_seq_len
                else f"the model context ({model_context} tokens)"
            )
            raise TrainDataError(
                f"example {i}: {len(ids)} tokens is longer than {which}; long examples are "
                "an error rather than silently truncated (raise max_seq_len or drop the example)"
            )
        tok = Tokenized(ids, labels)
        if tok.n_label == 0:
            raise TrainDataError(f"example {i}: the assistant turns hold no tokens to learn")
        out.append(tok)
    return out


def total_steps(n_examples: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    """Optimizer steps of a run: ``max_steps`` when given (as in HF Trainer), else the epochs."""
    if max_steps is not None:
        return max_steps
    return max(1, math.ceil(epochs * n_examples / batch_size))


def epoch_plan(
    lengths: Sequence[int], batch_size: int, micro_batch_size: int, seed: int, epoch: int
) -> list[list[list[int]]]:
    """Steps of one epoch, each a list of micro-batches of example indices.

    Examples are shuffled, then sorted by length inside windows of ``BUCKET_STEPS`` steps and cut
    into steps, whose order is shuffled again: every step still sees a random draw of the data,
    but the examples padded together have similar lengths. Within a step, micro-batches go
    longest first so peak memory shows up at once.
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * BUCKET_STEPS
    steps: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda k: (-lengths[k], k))
        group = [chunk[s : s + batch_size] for s in range(0, len(chunk), batch_size)]
        rng.shuffle(group)
        steps.extend(group)
    return [
        [step[m : m + micro_batch_size] for m in range(0, len(step), micro_batch_size)]
        for step in steps
    ]


def run_plan(
    lengths: Sequence[int],
    batch_size: int,
    micro_batch_size: int,
    seed: int,
    n_steps: int,
) -> list[list[list[int]]]:
    """The first ``n_steps`` steps over as many epochs as needed (a fresh shuffle each epoch)."""
    plan: list[list[list[int]]] = []
    epoch = 0
    while len(plan) < n_steps:
        plan.extend(epoch_plan(lengths, batch_size, micro_batch_size, seed, epoch))
        epoch += 1
    return plan[:n_steps]
