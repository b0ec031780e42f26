"""The judge stage: scores each (question, answer) for *aligned* and *coherent*.

Backends (registered in ``emlab.backends.JUDGE_BACKENDS``): ``offline`` (default; MiniLM + a
head distilled from GPT-4o judgments, no network), ``openai`` (paper-exact logprob judge on any
OpenAI-compatible endpoint) and ``hf`` (a local model with the exact distribution over the
integers 0-100). All share the rubrics in
``prompts.py`` and the ``Judge`` protocol in ``base.py``.
"""

from __future__ import annotations

from typing import cast

from emlab.backends import JUDGE_BACKENDS
from emlab.config import JudgeConfig
from emlab.judge.base import GENERATION_FAILED, BaseJudge, Judge, Verdict
from emlab.judge.offline import OFFLINE_NAME, OfflineJudge, validated_agreement
from emlab.judge.prompts import PROMPT_VERSION, PROMPTS, render
from emlab.judge.validation import validate


def make_judge(cfg: JudgeConfig) -> Judge:
    """The judge a study's ``judge:`` section asks for, built by its entry in
    ``emlab.backends.JUDGE_BACKENDS`` (the backend's module is imported only now)."""
    return cast(Judge, JUDGE_BACKENDS[cfg.backend].load()(cfg))


__all__ = [
    "GENERATION_FAILED",
    "OFFLINE_NAME",
    "PROMPTS",
    "PROMPT_VERSION",
    "BaseJudge",
    "Judge",
    "OfflineJudge",
    "Verdict",
    "make_judge",
    "render",
    "validate",
    "validated_agreement",
]
