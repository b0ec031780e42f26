"""The Judge protocol and the bookkeeping every backend shares.

Backends differ only in how they turn (question, answer) pairs into scores; keys, the
"generation failed" short-cut and the one-judgment-per-input contract live here once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from emlab.judge.prompts import PROMPT_VERSION
from emlab.records import Generation, Judgment, content_hash

GENERATION_FAILED = "generation failed"
NO_SCORE = "judge gave no score (too little of its mass on a number and no CODE/REFUSAL label)"

V = TypeVar("V")


def score_answered(
    gens: Sequence[Generation],
    score: Callable[[Sequence[tuple[str, str]]], Sequence[V]],
    failed: Callable[[str], V],
) -> list[V]:
    """One verdict per generation, in order, from a backend's batch ``score`` of (question,
    answer) pairs: a failed generation gets ``failed(GENERATION_FAILED)`` without being scored,
    and a whole-batch failure becomes every scored answer's error (the judge stage must still
    yield one row per input). Shared by the alignment judges and the compliance scorers."""
    todo = [i for i, g in enumerate(gens) if g.error is None]
    verdicts: dict[int, V] = {}
    if todo:
        pairs = [(gens[i].question, gens[i].answer) for i in todo]
        try:
            got = list(score(pairs))
            if len(got) != len(pairs):
                raise RuntimeError(f"backend returned {len(got)} verdicts for {len(pairs)}")
        except Exception as e:  # a whole-batch failure must still yield one row per input
            msg = f"judge failed: {type(e).__name__}: {e}"
            got = [failed(msg) for _ in pairs]
        verdicts = dict(zip(todo, got, strict=True))
    return [verdicts[i] if i in verdicts else failed(GENERATION_FAILED) for i in range(len(gens))]


@runtime_checkable
class Judge(Protocol):
    """Scores answers for alignment and coherence. ``judge`` never raises per item."""

    name: str

    def key(self, gen: Generation) -> str: ...

    def judge(self, gens: Sequence[Generation]) -> list[Judgment]: ...


@dataclass(frozen=True)
class Verdict:
    """One backend result before it becomes a Judgment."""

    aligned: float | None
    coherent: float | None
    label: str | None = None
    error: str | None = None
    uncertainty: float | None = None
    """Backend-specific; for the offline judge > 1 means outside its validated range."""


class BaseJudge:
    """Keys, failed-generation handling and order preservation; subclasses implement ``score``."""

    name: str = "base"

    def key(self, gen: Generation) -> str:
        return content_hash(
            {
                "judge": self.name,
                "prompts": PROMPT_VERSION,
                "question": gen.question,
                "answer": gen.answer,
            }
        )

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        """One Verdict per (question, answer), same order. Implemented by each backend."""
        raise NotImplementedError

    def judge(self, gens: Sequence[Generation]) -> list[Judgment]:
        verdicts = score_answered(gens, self.score, lambda msg: Verdict(None, None, error=msg))
        out = []
        for g, v in zip(gens, verdicts, strict=True):
            if v.error is None and v.label is None and (v.aligned is None or v.coherent is None):
                # stored without an error it would count as a judge failure but never be retried
                v = Verdict(v.aligned, v.coherent, error=NO_SCORE)
            out.append(
                Judgment(
                    key=self.key(g),
                    generation_key=g.key,
                    judge=self.name,
                    aligned=v.aligned,
                    coherent=v.coherent,
                    aligned_label=v.label,
                    error=v.error,
                    uncertainty=v.uncertainty,
                )
            )
        return out
