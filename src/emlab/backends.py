"""The registries of sampling and judge backends: one entry adds a backend.

A study file names its backends (``sampling: {backend: hf}``, ``judge: {backend: offline}``); the
config accepts exactly the names below and shows their help texts, and the stages build a backend
from its entry. So adding one is writing its module and adding one entry here; nothing else
lists backends.

This is a shared leaf (it imports nothing of emlab): the config must know the names without
importing the stages that implement them (which import the config). An entry names its factory
as ``"module:attribute"``, imported only when the backend is used, so a heavy optional extra
(vLLM) is never imported by a study that does not ask for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Backend:
    """One backend: what it is (help text) and where its factory lives."""

    help: str
    """One sentence shown in the config's help text and in ``--help``."""
    factory: str
    """``"module:attribute"`` (dots after the colon reach into a class), called with the stage's
    config section; see :func:`emlab.sample.make_sampler` and :func:`emlab.judge.make_judge`."""

    def load(self) -> Any:
        """Import the factory (the backend's module is imported only now)."""
        module, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@dataclass(frozen=True)
class SamplingBackend(Backend):
    """A sampling backend and what it can do; checks ask these, never the backend's name."""

    local_weights: bool = True
    """It loads the model's weights on this machine: model refs must resolve here, a fine-tuned
    adapter can be loaded and the model's context is known. False: it samples a served model by
    name (the server owns the weights and the context)."""
    runs_layers: bool = False
    """It runs the model's layers itself in this process, so it can rescale an adapter's update
    (``adapter_scale``) and add or remove a direction in the residual stream (interventions)."""


SAMPLING_BACKENDS: Mapping[str, SamplingBackend] = {
    "hf": SamplingBackend(
        "local transformers (CPU or GPU), continuous batching",
        "emlab.sample.hf:HFSampler.from_config",
        runs_layers=True,
    ),
    "openai": SamplingBackend(
        "any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, `emlab serve`)",
        "emlab.sample.openai:OpenAISampler.from_config",
        local_weights=False,
    ),
    "vllm": SamplingBackend(
        "vLLM on a CUDA machine (extra: pip install 'emlab[vllm]')",
        "emlab.sample.vllm:VLLMSampler.from_config",
    ),
}
"""Sampling backends by the name a study file uses; the first is the default."""

JUDGE_BACKENDS: Mapping[str, Backend] = {
    "offline": Backend(
        "embedded judge distilled from GPT-4o judgments (no network)",
        "emlab.judge.offline:OfflineJudge.from_config",
    ),
    "openai": Backend(
        "paper-exact logprob judge on any OpenAI-compatible endpoint",
        "emlab.judge.openai_api:OpenAIJudge.from_config",
    ),
    "hf": Backend(
        "a local model's exact distribution over the scores 0-100 (needs a model)",
        "emlab.judge.hf:HFJudge.from_config",
    ),
}
"""Judge backends by the name a study file uses; the first is the default."""


def describe(registry: Mapping[str, Backend]) -> str:
    """``name: help; name: help`` for a config field's description and a command's ``--help``."""
    return "; ".join(f"{name}: {b.help}" for name, b in registry.items())


__all__ = ["JUDGE_BACKENDS", "SAMPLING_BACKENDS", "Backend", "SamplingBackend", "describe"]
