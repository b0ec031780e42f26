"""The judge stage: scores each (question, answer) for *aligned* and *coherent*.

Backends: ``offline`` (default; MiniLM + a head distilled from GPT-4o judgments, no network),
``openai`` (paper-exact logprob judge on any OpenAI-compatible endpoint) and ``hf`` (a local
model with the exact distribution over the integers 0-100). All share the rubrics in
``prompts.py`` and the ``Judge`` protocol in ``base.py``.
"""

from __future__ import annotations

from emlab.config import JudgeConfig
from emlab.errors import ArgumentError
from emlab.judge.base import GENERATION_FAILED, BaseJudge, Judge, Verdict
from emlab.judge.offline import OFFLINE_NAME, OfflineJudge, validated_agreement
from emlab.judge.prompts import PROMPT_VERSION, PROMPTS, render
from emlab.judge.validation import validate


def make_judge(cfg: JudgeConfig) -> Judge:
    """The judge a study's ``judge:`` section asks for."""
    if cfg.backend == "offline":
        return OfflineJudge()
    if cfg.backend == "openai":
        from emlab.judge.openai_api import OpenAIJudge

        return OpenAIJudge.from_config(cfg)
    if cfg.backend == "hf":
        if not cfg.model:
            raise ArgumentError(
                "judge backend hf needs a model (judge.model in a study, --model on the command "
                "line): a model ref, e.g. a folder"
            )
        from emlab.judge.hf import HFJudge

        return HFJudge(cfg.model)
    raise ArgumentError(f"unknown judge backend {cfg.backend!r}")


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
