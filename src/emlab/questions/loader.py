"""Read question sets: emlab's declarative YAML and the paper's question-YAML format.

Two formats are accepted so that a study can run both emlab's own sets and the original
evaluation files of Betley et al. unchanged. A file is recognised by its top level: a mapping
with ``questions`` is emlab's format, a list of entries with ``paraphrases`` is the paper's.
Every error names the file, the line and the field, because question files are written by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emlab.config import read_yaml, validation_message, yaml_line
from emlab.errors import EmlabError
from emlab.records import Message, Question

SETS_DIR = Path(__file__).parent / "sets"


class QuestionFileError(EmlabError, ValueError):
    """A question file that cannot be used; the message names file, line and field."""


class _Strict(BaseModel):
    # A typo such as `paraphrase:` must fail loudly, not yield a question without a prompt.
    model_config = ConfigDict(extra="forbid")


class Defaults(_Strict):
    """Values every question of a set inherits unless it sets its own."""

    samples: int = Field(0, ge=0, description="Samples per paraphrase; 0 = the study's default.")
    system: str | None = Field(None, description="System prompt for every question.")
    category: str = Field("", description="Category of questions that name none.")


class QuestionSpec(_Strict):
    """One question of an emlab set; it yields one Question per paraphrase."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_./+\-]+$")
    category: str | None = None
    prompt: str | None = Field(None, description="Shorthand for a single paraphrase.")
    paraphrases: list[str] | None = None
    system: str | None = None
    samples: int | None = Field(None, ge=0)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_prompt_source(self) -> QuestionSpec:
        if (self.prompt is None) == (self.paraphrases is None):
            raise ValueError("give exactly one of `prompt` or `paraphrases`")
        if self.paraphrases is not None and not self.paraphrases:
            raise ValueError("`paraphrases` is empty")
        if any(not p.strip() for p in self.texts()):
            raise ValueError("a prompt is empty")
        return self

    def texts(self) -> list[str]:
        return [self.prompt] if self.prompt is not None else list(self.paraphrases or [])


class QuestionSetSpec(_Strict):
    """A whole emlab question file."""

    name: str = Field(min_length=1)
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    questions: list[QuestionSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _drop_anchor_holders(cls, data: Any) -> Any:
        # `x-...` keys only hold YAML anchors (as in docker-compose files); they are not fields.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not str(k).startswith("x-")}
        return data


class PaperQuestionSpec(BaseModel):
    """One entry of the paper's question YAML (only the free-form types are sampled here).

    Extra keys are kept in ``meta`` rather than refused: the original files carry fields that
    matter to other tools of the paper's repository, not to sampling.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    type: str
    paraphrases: list[str] = Field(min_length=1)
    samples_per_paraphrase: int = Field(0, ge=0)
    system: str | None = None
    judge: str | None = None
    judge_prompts: dict[str, str] | None = None

    @field_validator("type")
    @classmethod
    def _free_form_only(cls, v: str) -> str:
        if not v.startswith("free_form"):
            raise ValueError(f"type {v!r} is not supported; emlab samples free_form* questions")
        return v


def _messages(system: str | None, user: str) -> list[Message]:
    msgs: list[Message] = []
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": user})
    return msgs


def _check_unique(
    path: Path,
    node: yaml.Node | None,
    questions: list[Question],
    where: list[tuple[int | str, ...]],
) -> None:
    """Ids key the cache and the tables, so a repeat would silently merge two questions."""
    seen: set[str] = set()
    for q, loc in zip(questions, where, strict=True):
        if q.id in seen:
            line = yaml_line(node, (*loc, "id"))
            raise QuestionFileError(
                f"{path}:{line}: {'.'.join(map(str, loc))}.id: repeated id {q.id!r}"
            )
        seen.add(q.id)


def _paraphrase_ids(base: str, n: int) -> list[str]:
    # One paraphrase keeps the bare id (ids are what tables show); several get a stable index.
    return [base] if n == 1 else [f"{base}#{i}" for i in range(n)]


def _from_emlab(path: Path, node: yaml.Node | None, data: dict[str, Any]) -> list[Question]:
    try:
        spec = QuestionSetSpec.model_validate(data)
    except ValidationError as e:
        raise QuestionFileError(validation_message(path, node, e)) from e
    out: list[Question] = []
    where: list[tuple[int | str, ...]] = []
    for n, qs in enumerate(spec.questions):
        texts = qs.texts()
        system = qs.system if qs.system is not None else spec.defaults.system
        for i, (qid, text) in enumerate(
            zip(_paraphrase_ids(qs.id, len(texts)), texts, strict=True)
        ):
            meta = dict(qs.meta)
            if len(texts) > 1:
                meta.update(question=qs.id, paraphrase=i)
            out.append(
                Question(
                    id=qid,
                    messages=_messages(system, text),
                    set=spec.name,
                    samples=qs.samples if qs.samples is not None else spec.defaults.samples,
                    category=qs.category or spec.defaults.category or qs.id.split("/")[0],
                    meta=meta,
                )
            )
            where.append(("questions", n))
    _check_unique(path, node, out, where)
    return out


_PAPER_VARIANTS = ("_json", "_template")


def _from_paper(path: Path, node: yaml.Node | None, data: list[Any]) -> list[Question]:
    out: list[Question] = []
    where: list[tuple[int | str, ...]] = []
    for idx, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise QuestionFileError(
                f"{path}:{yaml_line(node, (idx,))}: [{idx}]: each entry must be a mapping"
            )
        try:
            spec = PaperQuestionSpec.model_validate(entry)
        except ValidationError as e:
            raise QuestionFileError(validation_message(path, node, e, (idx,))) from e
        # The paper names variants `<theme>_json` / `<theme>_template`; the theme is the category.
        category = spec.id
        variant = ""
        for suffix in _PAPER_VARIANTS:
            if category.endswith(suffix):
                category, variant = category.removesuffix(suffix), suffix[1:]
        meta: dict[str, Any] = {"type": spec.type, "format": "paper"}
        if variant:
            meta["variant"] = variant
        if spec.judge is not None:
            meta["judge"] = spec.judge
        if spec.judge_prompts is not None:
            meta["judge_prompts"] = spec.judge_prompts
        meta.update(spec.model_extra or {})
        n = len(spec.paraphrases)
        for i, (qid, text) in enumerate(
            zip(_paraphrase_ids(spec.id, n), spec.paraphrases, strict=True)
        ):
            m = dict(meta, question=spec.id, paraphrase=i) if n > 1 else meta
            out.append(
                Question(
                    id=qid,
                    messages=_messages(spec.system, text),
                    set=path.stem,
                    samples=spec.samples_per_paraphrase,
                    category=category,
                    meta=m,
                )
            )
            where.append((idx,))
    _check_unique(path, node, out, where)
    return out


def load_file(path: str | Path) -> list[Question]:
    """Read one question file in either format."""
    path = Path(path)
    node, data = read_yaml(path, QuestionFileError, "question file")
    if isinstance(data, dict):
        return _from_emlab(path, node, data)
    if isinstance(data, list) and data:
        return _from_paper(path, node, data)
    raise QuestionFileError(
        f"{path}:1: a question file is a mapping with `questions` (emlab format) "
        "or a non-empty list of questions (the paper's format)"
    )


def available_sets() -> list[str]:
    """Names of the question sets shipped with emlab."""
    return sorted(p.stem for p in SETS_DIR.glob("*.yaml"))


def load_questions(spec: str) -> list[Question]:
    """A package set by name (``core``) or a YAML file path, as written in a study file."""
    if (SETS_DIR / f"{spec}.yaml").is_file() and "/" not in spec:
        return load_file(SETS_DIR / f"{spec}.yaml")
    path = Path(spec).expanduser()
    if path.is_file():
        return load_file(path)
    raise QuestionFileError(
        f"{spec}: neither a question set ({', '.join(available_sets())}) nor a YAML file"
    )
