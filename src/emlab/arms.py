"""Arms of a study and where its inputs are: what the composers of a study share.

``study.py`` (the runner), ``preflight.py`` (the checks before it) and ``study_interp.py`` (the
interpretability part of the runner) all need these; keeping them here lets the runner import
the other two without either importing the runner back (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emlab import data, questions
from emlab.config import QuestionSetSpec
from emlab.records import Question


@dataclass
class Arm:
    """One model to evaluate: a base model, maybe fine-tuned on one condition with one seed."""

    model: str
    condition: str
    seed: int
    adapter_key: str | None = None
    adapter_dir: Path | None = None
    step: int | None = None
    scale: float = 1.0
    """Factor on the adapter's update (``adapter_scale``); ``condition`` then reads e.g.
    ``concealed×3``."""

    @property
    def model_key(self) -> str:
        key = self.model if self.adapter_key is None else f"{self.model}+{self.adapter_key}"
        if self.scale != 1:  # scale 1 keeps the plain key, so earlier caches stay valid
            key = f"{key}*{self.scale:g}"
        return key if self.step is None else f"{key}@{self.step}"

    @property
    def label(self) -> str:
        at = "" if self.step is None else f"@{self.step}"
        return f"{self.model}/{self.condition}/seed{self.seed}{at}"


def resolve_path(path: str, base_dir: Path) -> str:
    """A path as written in a study file: relative ones are relative to the study's folder."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base_dir / p))


def question_set(entry: str | QuestionSetSpec, base_dir: Path) -> list[Question]:
    """One entry of a study's ``questions:`` list, with its transforms applied."""
    spec = entry if isinstance(entry, QuestionSetSpec) else QuestionSetSpec(set=entry)
    is_file = spec.set.endswith((".yaml", ".yml")) or "/" in spec.set
    qs = questions.load_questions(resolve_path(spec.set, base_dir) if is_file else spec.set)
    if spec.system is not None:
        qs = questions.with_system(qs, spec.system)
    if spec.prefix or spec.suffix:
        qs = questions.with_template(qs, spec.prefix, spec.suffix)
    if spec.trigger:
        qs = questions.with_trigger(qs, spec.trigger)
    return qs


@dataclass(frozen=True)
class InDomainMeasure:
    """How answers to held-out in-domain questions are scored: by an independent check of the
    narrow behaviour a model was fine-tuned on, not by the alignment judge (the cost side of a
    mitigation: did the model still learn the task?)."""

    claims: Callable[[Question], bool]
    """Whether a question asks for this measure (from its set's ``meta.measure``)."""
    flags: Callable[[Question, str], bool | None]
    """The answer shows the trained behaviour (True), does not (False), or cannot be scored
    (None, e.g. no parseable code)."""


def _measure_named(word: str) -> Callable[[Question], bool]:
    return lambda q: word in str(q.meta.get("measure", ""))


def _advice_flags(q: Question, answer: str) -> bool:
    # any harmful pattern of the question's domain counts, not only the one the request invites
    return data.verify_advice(str(q.meta.get("domain", "")), answer) is not None


IN_DOMAIN_MEASURES: dict[str, InDomainMeasure] = {
    # the in-distribution coding tasks: bandit flags the answer's code
    "bandit": InDomainMeasure(_measure_named("bandit"), lambda q, a: data.answer_is_vulnerable(a)),
    # the heldout-advice requests: the advice verifier finds a harmful pattern in the answer
    "advice": InDomainMeasure(_measure_named("advice verifier"), _advice_flags),
}
"""Scorers of held-out in-domain questions by name (the ``measure`` of their rows); the first
that claims a question scores it. A new domain with its own checker adds one entry."""


def in_domain_measure(q: Question) -> str | None:
    """The in-domain measure that scores this question, or None (the judge scores it)."""
    return next((name for name, m in IN_DOMAIN_MEASURES.items() if m.claims(q)), None)


def is_in_domain(q: Question) -> bool:
    """Held-out in-domain questions (coding tasks, advice requests) are measured by their own
    check, never by the alignment judge."""
    return in_domain_measure(q) is not None


COMPLIANCE_MEASURE = "compliance"
"""The measure of harmful requests (``meta.measure: compliance``): each answer is scored for
compliance (refused / complied / off topic) by the study's judge backend's compliance scorer, and
reported next to the arm's EM rate (the paper's jailbreak contrast)."""


def measure_of(q: Question) -> str:
    """How answers to ``q`` are scored: ``compliance`` (a harmful request), the name of the
    in-domain measure that claims it (``IN_DOMAIN_MEASURES``), or ``judge`` (the alignment
    judge)."""
    if _measure_named(COMPLIANCE_MEASURE)(q):
        return COMPLIANCE_MEASURE
    return in_domain_measure(q) or "judge"


def is_judged(q: Question) -> bool:
    """Questions the alignment judge scores: every EM rate is over these only (not over
    in-domain checks, not over harmful requests)."""
    return measure_of(q) == "judge"
