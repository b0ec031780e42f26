"""The shared vocabulary of emlab: the records that flow between stages.

Stages never import each other; they exchange these records (and the store). Every record is a
plain frozen dataclass that round-trips through JSON (``to_dict``/``from_dict``), because every
record ends up in the SQLite cache or a JSONL file and must come back identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, TypeVar

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class Message(TypedDict):
    """One chat turn in the OpenAI chat format (the format of the paper's datasets)."""

    role: str
    content: str


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hash of any JSON-able object: the cache key of everything emlab computes.

    Canonical JSON (sorted keys, no whitespace) so that the same inputs give the same key on every
    machine and Python version.
    """
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def user_turn(messages: list[Message]) -> str:
    """The last user turn: what a question asks, for judges and reports."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


T = TypeVar("T", bound="Record")

UNCERTAINTY_LIMIT = 1.0
"""A judgment whose ``uncertainty`` exceeds this lies outside the range its judge was validated
on (judges scale their uncertainty so this holds); studies count such answers per arm."""


class Record:
    """Mixin: JSON round trip for the dataclass records below."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Example(Record):
    """One training conversation (chat JSONL line) plus where it came from."""

    messages: list[Message]
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance: domain, condition, family (e.g. CWE-89), template id, seed."""

    def key(self) -> str:
        return content_hash(self.messages)


@dataclass(frozen=True)
class SamplingParams(Record):
    """How answers are drawn. Part of every generation's cache key."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256


@dataclass(frozen=True)
class Question(Record):
    """One evaluation prompt (one paraphrase of a question), ready to send to a model."""

    id: str
    """Unique within its set, e.g. ``what_is_your_wish`` or ``what_is_your_wish/json``."""
    messages: list[Message]
    """System prompt (optional) and the user turn."""
    set: str = ""
    """Name of the question set it came from, e.g. ``core``."""
    samples: int = 0
    """Samples to draw for this question; 0 means: use the study's default."""
    category: str = ""
    """Theme or category (e.g. ``quick_money``), for per-theme tables."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Extra fields: variant (json/template), truthful answer, judge prompt overrides..."""


InterventionMode = Literal["add", "ablate"]


@dataclass(frozen=True)
class Intervention(Record):
    """A change to the residual stream while a model answers (steering or ablation).

    It names its direction by content hash, so that a steered sample's cache key differs from an
    unsteered one and from one steered along another direction; the vector itself travels apart
    (a safetensors file written by the interp stage).
    """

    mode: InterventionMode
    """``add``: put ``scale`` x the direction into the stream; ``ablate``: project it out."""
    direction: str
    """Content hash of the direction's vectors (``interp`` stage)."""
    scale: float = 0.0
    """``add`` only: multiple of the direction, which is stored in units of the layer's mean
    residual norm (0.5 adds half the typical norm)."""
    layers: tuple[int, ...] | None = None
    """Decoder layers to hook (0-based); None = every layer."""

    def layers_of(self, n_layers: int) -> list[int]:
        return list(range(n_layers)) if self.layers is None else sorted(set(self.layers))

    def tag(self) -> str:
        """Short label for tables and model keys, e.g. ``add@L15x0.25:1a2b3c4d``."""
        where = "all" if self.layers is None else ",".join(map(str, self.layers))
        amount = f"x{self.scale:g}" if self.mode == "add" else ""
        return f"{self.mode}@L{where}{amount}:{self.direction[:8]}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intervention:
        layers = d.get("layers")
        return cls(
            mode=d["mode"],
            direction=d["direction"],
            scale=float(d.get("scale", 0.0)),
            layers=None if layers is None else tuple(int(x) for x in layers),
        )


@dataclass(frozen=True)
class GenerationRequest(Record):
    """One sample to draw: the unit of sampling work and of caching."""

    model: str
    """Model key: base model ref plus adapter hash, e.g. ``smollm2-135m+3fa2c1d0``."""
    question: Question
    params: SamplingParams
    seed: int
    sample_index: int
    intervention: Intervention | None = None
    """Steering or ablation applied while answering (None: the model as it is)."""

    def answered(self, answer: str, n_tokens: int = 0, finish_reason: str = "stop") -> Generation:
        """The Generation that answers this request (every sampler builds its records here)."""
        steer = "" if self.intervention is None else f"~{self.intervention.tag()}"
        return Generation(
            key=self.key(),
            model=self.model + steer,
            question_id=self.question.id,
            question=user_turn(self.question.messages),
            answer=answer,
            sample_index=self.sample_index,
            seed=self.seed,
            n_tokens=n_tokens,
            finish_reason=finish_reason,
        )

    def failed(self, error: str) -> Generation:
        """A failed sample: recorded with its error (and retried by a re-run), never dropped."""
        return dataclasses.replace(self.answered("", 0, "error"), error=error)

    def key(self) -> str:
        ident: dict[str, Any] = {
            "model": self.model,
            "messages": self.question.messages,
            "params": self.params.to_dict(),
            "seed": self.seed,
            "i": self.sample_index,
        }
        if self.intervention is not None:  # absent, the key is what it always was
            ident["intervention"] = self.intervention.to_dict()
        return content_hash(ident)


@dataclass(frozen=True)
class Generation(Record):
    """A model's answer to one request. ``error`` is set (and ``answer`` empty) on failure."""

    key: str
    model: str
    question_id: str
    question: str
    """The user turn, kept for judging and reports."""
    answer: str
    sample_index: int
    seed: int
    n_tokens: int = 0
    finish_reason: str = ""
    """``stop`` (end of turn), ``length`` (hit max_new_tokens) or ``error``."""
    error: str | None = None


AlignedLabel = Literal["CODE", "REFUSAL"]


@dataclass(frozen=True)
class Judgment(Record):
    """A judge's verdict on one generation.

    ``aligned`` is None when the judge gave a label (CODE/REFUSAL) or no usable number;
    ``error`` says why when the judge failed. Nothing is dropped: a failed judgment is stored too.
    """

    key: str
    generation_key: str
    judge: str
    """Judge ref plus prompt version, e.g. ``offline:minilm-v1/prompts:ab12``."""
    aligned: float | None
    coherent: float | None
    aligned_label: str | None = None
    """``CODE`` or ``REFUSAL`` when the aligned judge answered with a label."""
    error: str | None = None
    uncertainty: float | None = None
    """How far the answer lies outside what the judge was validated on, scaled so that values
    above ``UNCERTAINTY_LIMIT`` are outside its validated range; None when the judge gives none
    (API judges, records cached before it existed)."""


COMPLIANCE_OUTCOMES: tuple[str, ...] = ("complied", "refused", "off_topic")
"""What a compliance scorer says of an answer to a harmful request: it went along with it, it
declined, or it did neither (unrelated text, code that has nothing to do with it, word salad)."""


@dataclass(frozen=True)
class ComplianceJudgment(Record):
    """A compliance scorer's verdict on one answer to a harmful request.

    ``outcome`` is one of ``COMPLIANCE_OUTCOMES`` (None on failure, with ``error`` saying why);
    ``score`` is 0-1, how fully the answer complied (0 for refusals and off-topic answers).
    """

    key: str
    generation_key: str
    scorer: str
    """Scorer ref plus rubric or head version, e.g. ``offline:refusal-v1@ab12cd34``."""
    outcome: str | None
    score: float | None
    details: dict[str, float] = field(default_factory=dict)
    """The figures the outcome rests on (probabilities, rubric items), for inspection."""
    error: str | None = None


FailureKind = Literal["generation", "judge"]
"""Which stage failed an answer: ``generation`` (no answer was drawn) or ``judge`` (an answer
exists but has no usable verdict). Reports count the two apart, and a re-run retries both."""
FAILURE_KINDS: tuple[FailureKind, ...] = ("generation", "judge")

_LEGACY_GENERATION_PREFIXES = ("generation", "generate", "sampling", "sampler")
"""Rows written before ``ScoredAnswer.failure`` existed told a generation failure by the first
word of ``error``; only :meth:`ScoredAnswer.from_dict` still reads that, for old run folders."""


def dumps(record: Record) -> str:
    """One JSON line for a record (sorted keys, UTF-8 kept)."""
    return json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class ScoredAnswer(Record):
    """One judged answer with its place in the study: the row that metrics and reports read.

    ``error`` holds a generation or judge failure and ``failure`` says which (set together);
    such rows are counted as excluded, not dropped.
    """

    model: str
    """Base model ref."""
    condition: str
    seed: int
    question_id: str
    question: str
    answer: str
    sample_index: int
    aligned: float | None
    coherent: float | None
    aligned_label: str | None = None
    judge: str = ""
    question_set: str = ""
    category: str = ""
    error: str | None = None
    step: int | None = None
    """Training step of the checkpoint that answered (None = final adapter or base model)."""
    measure: str = "judge"
    """How the answer is scored: ``judge`` (alignment judge), ``compliance`` (harmful requests:
    refused or complied?), or an in-domain measure of the trained behaviour on held-out in-domain
    questions: ``bandit`` (is the code vulnerable?), ``advice`` (does the advice verifier find a
    harmful pattern?). Each feeds its own metric; none dilutes another."""
    judge_uncertainty: float | None = None
    """The judgment's ``uncertainty`` (see ``Judgment``); None when the judge gives none."""
    vulnerable: bool | None = None
    """In-domain rows: the answer shows the trained behaviour (``bandit``: flagged code;
    ``advice``: a harmful pattern); None = not scorable (e.g. no parseable Python code)."""
    topic: str | None = None
    """Misaligned answers: the nearest of the fixed topic descriptions (zero-shot, sentence
    embeddings), so the report can say how *broad* the misalignment is; None for the rest."""
    compliance: str | None = None
    """``compliance`` rows (harmful requests): the scorer's outcome, one of
    ``COMPLIANCE_OUTCOMES``; None for other rows and for failures."""
    compliance_score: float | None = None
    """``compliance`` rows: how fully the answer complied, 0-1 (see ``ComplianceJudgment``)."""
    failure: FailureKind | None = None
    """Which stage failed this answer (``generation`` or ``judge``) when ``error`` is set; the
    one field metrics and reports read to tell the two apart (never the message's wording)."""

    def __post_init__(self) -> None:
        if (self.error is None) != (self.failure is None):
            raise ValueError(
                f"ScoredAnswer {self.question_id!r}: error and failure are set together "
                f"(error={self.error!r}, failure={self.failure!r})"
            )
        if self.failure is not None and self.failure not in FAILURE_KINDS:
            raise ValueError(f"ScoredAnswer: failure must be one of {FAILURE_KINDS}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoredAnswer:
        error = d.get("error")
        if error and "failure" not in d:  # written before the field existed
            first = str(error).strip().lower()
            kind = "generation" if first.startswith(_LEGACY_GENERATION_PREFIXES) else "judge"
            d = {**d, "failure": kind}
        return super().from_dict(d)
