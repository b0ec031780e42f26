"""The typed summary of a study: what ``emlab.metrics.summarize`` returns and every reader reads.

One model shared by the metrics (which fill it), the report and terminal (which read its
attributes) and ``emlab show/compare/export`` (which read ``summary.json`` back into it), so a
figure cannot be read under another name than it was written, and the thresholds a report
states are the ones the rates were computed with (never a reader's default).

``summary.json`` is ``Summary.model_dump(mode="json")``: the same JSON shape as before this
model existed (fields in the order they were written), so older run directories load too. Keys a
model does not know are kept (``extra="allow"``): a newer writer's extra figures survive a
round trip through an older reader.

This is a shared leaf (pydantic only): metrics and report both import it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Figures(BaseModel):
    model_config = ConfigDict(extra="allow")


class Thresholds(_Figures):
    """The rule that made an answer misaligned: aligned < ``aligned`` among answers with
    coherent >= ``coherent``."""

    aligned: float
    coherent: float
    rule: str = Field(description="The rule in words, as reports print it.")


class Bootstrap(_Figures):
    resamples: int
    seed: int


class Rate(_Figures):
    """A misalignment rate with its interval and the answers it rests on."""

    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_valid: int = 0
    n_total: int = 0
    n_misaligned: int = 0


class SeedRate(_Figures):
    """One fine-tuning seed's rate (no interval: seeds are the units of the group's interval)."""

    seed: int
    rate: float | None
    n_valid: int
    n_misaligned: int
    n_total: int
    excluded: dict[str, int]


class QuestionRate(Rate):
    """One question's answers pooled (one Wilson interval over them)."""

    question_id: str
    question: str = ""
    category: str | None = None
    question_set: str | None = None
    excluded: dict[str, int] = Field(default_factory=dict)
    flagged: bool = False
    """Fewer valid answers than ``min_valid``."""


class CategoryRate(Rate):
    """One question category's answers pooled."""

    category: str
    n_questions: int = 0


class Breadth(_Figures):
    """How far misalignment spreads over question categories and answer topics."""

    n_categories: int = 0
    n_categories_misaligned: int = 0
    category_spread: float | None = None
    topics: dict[str, int] = Field(default_factory=dict)
    n_topics: int = 0
    topic_entropy_bits: float = 0.0


class Example(_Figures):
    """One answer shown in the report as an example of its status."""

    status: str
    seed: int | None = None
    question_id: str = ""
    question: str = ""
    answer: str = ""
    sample_index: int | None = None
    aligned: float | None = None
    coherent: float | None = None
    aligned_label: str | None = None
    error: str | None = None


class JudgeRange(_Figures):
    """Judged answers outside the judge's validated range (judges that give an uncertainty)."""

    n_judged: int
    n_outside: int
    share_outside: float
    warn: bool
    judges: list[str] = Field(default_factory=list)


class Delta(_Figures):
    """A difference of rates to a baseline arm, with its interval and the method behind it."""

    baseline: str
    baseline_step: int | None = None
    delta: float
    ci_low: float
    ci_high: float
    method: str


class Group(Rate):
    """Every figure of one arm: (model, condition, step); step None = final adapter or base."""

    model: str
    condition: str
    step: int | None = None
    ci_method: str | None = None
    n_seeds: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    excluded: dict[str, int] = Field(default_factory=dict)
    per_seed: list[SeedRate] = Field(default_factory=list)
    per_question: list[QuestionRate] = Field(default_factory=list)
    per_category: list[CategoryRate] = Field(default_factory=list)
    breadth: Breadth | None = None
    misalign_at_k: dict[str, float | None] = Field(default_factory=dict)
    examples: dict[str, list[Example]] = Field(default_factory=dict)
    delta_vs_baseline: Delta | None = None
    judge_range: JudgeRange | None = None

    def label(self, multi_model: bool) -> str:
        """``condition`` (``model / condition`` with several models), ``@step`` for
        checkpoints: how tables, plots and sentences name the arm."""
        name = f"{self.model} / {self.condition}" if multi_model else self.condition
        return name if self.step is None else f"{name} @{self.step}"


class ComparisonEntry(_Figures):
    """One difference a study is read by: rate(a) - rate(b), or a named one (``emlab
    compare``'s differences across runs). ``separated``: its interval excludes 0."""

    name: str | None = None
    model: str = ""
    a: str | None = None
    b: str | None = None
    what: str | None = None
    step: int | None = None
    n_seeds: list[int] | None = None
    n_valid: list[int] | None = None
    n_total: list[int] | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    method: str | None = None
    over: str | None = None
    """What the interval goes over: ``seeds`` or ``answers``."""
    separated: bool | None = None
    across_runs: bool = False

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.a} − {self.b}" if self.a and self.b else "comparison"


class SensitivityEntry(_Figures):
    """One arm's rate under one pair of thresholds of the grid."""

    model: str
    condition: str
    step: int | None = None
    aligned_threshold: float
    coherent_threshold: float
    rate: float | None
    n_valid: int
    n_misaligned: int
    n_total: int


class VulnerableCode(Rate):
    """Share of an arm's code answers that bandit flags (the in-distribution check)."""

    model: str
    condition: str
    step: int | None = None
    n: int = 0
    n_code: int = 0
    n_no_code: int = 0
    n_vulnerable: int = 0
    ci_method: str | None = None


class ComplianceSeed(_Figures):
    """One seed's compliance rate (complied / answered) and its denominator."""

    seed: int
    rate: float | None
    n: int


class Compliance(_Figures):
    """One arm's compliance with harmful requests (the jailbreak contrast), next to its EM rate.

    ``rate`` = complied / ``n``, ``n`` = complied + refused (off-topic answers and failures are
    counted in ``counts``, not in the rate); ``em``: the arm's misalignment rate on its
    free-form questions (None when it was asked none)."""

    model: str
    condition: str
    step: int | None = None
    rate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str | None = None
    n: int = 0
    n_total: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    mean_score: float | None = None
    per_seed: list[ComplianceSeed] = Field(default_factory=list)
    scorers: list[str] = Field(default_factory=list)
    em: Rate | None = None

    def label(self, multi_model: bool) -> str:
        """The arm's name as tables show it (the same rule as ``Group.label``)."""
        name = f"{self.model} / {self.condition}" if multi_model else self.condition
        return name if self.step is None else f"{name} @{self.step}"


class InDomain(VulnerableCode):
    """Share of an arm's answers to held-out in-domain questions that show the trained
    behaviour (``measure`` bandit: vulnerable code; advice: a harmful-advice pattern); answers
    the measure cannot score are ``n_no_code``."""

    measure: str


class Failures(_Figures):
    """Answers that failed to be generated or judged (excluded from the rates, retried on a
    re-run)."""

    generation: int
    judge: int
    total: int
    answers: int


class Summary(_Figures):
    """Every figure of a study, per arm, with the rule, level and methods they rest on."""

    thresholds: Thresholds
    confidence: float
    judges: list[str] = Field(default_factory=list)
    bootstrap: Bootstrap | None = None
    min_valid: int = 1
    baseline: str | None = None
    statuses: list[str]
    excluded_statuses: list[str]
    methods: dict[str, str] = Field(default_factory=dict)
    n_rows: int = 0
    groups: list[Group] = Field(default_factory=list)
    comparisons: list[ComparisonEntry] = Field(default_factory=list)
    sensitivity: list[SensitivityEntry] = Field(default_factory=list)
    vulnerable_code: list[VulnerableCode] = Field(default_factory=list)
    compliance: list[Compliance] = Field(default_factory=list)
    """Harmful-request compliance per arm (studies that ask the ``harmful-requests`` set)."""
    in_domain: list[InDomain] = Field(default_factory=list)
    """In-domain learning per arm and measure (bandit, advice): the cost side of mitigations."""
    leak_probes: list[ComparisonEntry] = Field(default_factory=list)
    """Each arm in each evaluation context minus the same arm on the plain questions."""
    realignment: list[ComparisonEntry] = Field(default_factory=list)
    """Each ``start_from`` arm minus the arm it continued from, plain and in every context."""
    failures: Failures | None = None
    compared_runs: list[dict[str, Any]] | None = None
    """``emlab compare``: the runs it puts side by side (label, path, study)."""

    @property
    def multi_model(self) -> bool:
        return len({g.model for g in self.groups}) > 1

    @property
    def final(self) -> list[Group]:
        """The arms' final entries (no training checkpoints)."""
        return [g for g in self.groups if g.step is None]

    def seeds(self) -> list[int]:
        return sorted({s.seed for g in self.groups for s in g.per_seed})

    def find(self, model: str, condition: str, step: int | None = None) -> Group | None:
        """The entry of one (model, condition, step), or None."""
        return next(
            (g for g in self.groups if (g.model, g.condition, g.step) == (model, condition, step)),
            None,
        )

    def to_json(self) -> str:
        """``summary.json``: indented, fields in their order, exactly the fields that were
        given (so a summary read from an older run is written back in its own shape)."""
        return self.model_dump_json(indent=2, exclude_unset=True)


__all__ = [
    "Bootstrap",
    "Breadth",
    "CategoryRate",
    "ComparisonEntry",
    "Compliance",
    "ComplianceSeed",
    "Delta",
    "Example",
    "Failures",
    "Group",
    "InDomain",
    "JudgeRange",
    "QuestionRate",
    "Rate",
    "SeedRate",
    "SensitivityEntry",
    "Summary",
    "Thresholds",
    "VulnerableCode",
]
