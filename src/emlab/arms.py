"""Arms of a study and where its inputs are: what the composers of a study share.

``study.py`` (the runner), ``preflight.py`` (the checks before it) and ``study_interp.py`` (the
interpretability part of the runner) all need these; keeping them here lets the runner import
the other two without either importing the runner back (no import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emlab import questions
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


def is_code_task(q: Question) -> bool:
    """Questions whose set asks for a bandit measurement (the in-distribution coding tasks)."""
    return "bandit" in str(q.meta.get("measure", ""))
