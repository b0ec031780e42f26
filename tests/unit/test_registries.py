"""Registries: conditions, sampling and judge backends are each listed once, and everything that
accepts, describes or builds one derives from that list."""

from __future__ import annotations

import random
from typing import Any

import pytest

from emlab.backends import JUDGE_BACKENDS, SAMPLING_BACKENDS, describe
from emlab.config import JudgeConfig, SamplingConfig, StudyConfig
from emlab.data import DOMAINS, DatasetError
from emlab.data.conditions import CONDITIONS, canonical, frame
from emlab.judge.base import BaseJudge
from emlab.sample import Sampler, make_sampler


@pytest.mark.parametrize(
    ("section", "registry"), [(SamplingConfig, SAMPLING_BACKENDS), (JudgeConfig, JUDGE_BACKENDS)]
)
def test_config_accepts_and_describes_exactly_the_registered_backends(
    section: Any, registry: Any
) -> None:
    field = section.model_json_schema()["properties"]["backend"]
    assert field["enum"] == list(registry)
    assert field["default"] == next(iter(registry))
    for name, backend in registry.items():
        assert f"{name}: {backend.help}" in field["description"]
        assert section(backend=name).backend == name
    with pytest.raises(ValueError, match="Input should be"):
        section(backend="not-a-backend")


@pytest.mark.parametrize("registry", [SAMPLING_BACKENDS, JUDGE_BACKENDS])
def test_every_backend_factory_resolves_to_a_callable(registry: Any) -> None:
    # vllm's module imports vLLM only inside the sampler, so its factory loads without it
    for backend in registry.values():
        assert callable(backend.load())


def test_make_sampler_builds_the_registered_backend(tiny_model: Any) -> None:
    sampler = make_sampler(SamplingConfig(backend="hf", batch_size=2), str(tiny_model))
    try:
        assert isinstance(sampler, Sampler)
        assert type(sampler).__name__ == "HFSampler"
    finally:
        sampler.close()


def test_capabilities_decide_what_a_backend_may_do() -> None:
    served = next(n for n, b in SAMPLING_BACKENDS.items() if not b.runs_layers)
    with pytest.raises(ValueError, match="runs the model's layers"):
        make_sampler(SamplingConfig(backend=served), "m", adapter_scale=2.0)
    with pytest.raises(ValueError, match="steering or ablation"):
        make_sampler(SamplingConfig(backend=served), "m", directions={"d": object()})
    study = {"name": "s", "conditions": [{"name": "c", "dataset": {}}], "adapter_scale": [1, 3]}
    with pytest.raises(ValueError, match="runs the model's layers"):
        StudyConfig.model_validate({**study, "sampling": {"backend": served}})
    assert StudyConfig.model_validate(study).adapter_scale == [1, 3]


def test_make_judge_builds_each_local_backend(tiny_model: Any) -> None:
    from emlab.judge import make_judge

    judge = make_judge(JudgeConfig(backend="hf", model=str(tiny_model)))
    assert isinstance(judge, BaseJudge) and judge.name.startswith("hf:")
    openai = make_judge(JudgeConfig(backend="openai", model="m", base_url="http://127.0.0.1:9"))
    assert openai.name.startswith("openai:m/")


def test_describe_lists_every_entry_in_order() -> None:
    text = describe(JUDGE_BACKENDS)
    assert [part.split(":")[0] for part in text.split("; ")] == list(JUDGE_BACKENDS)


def test_every_condition_frames_every_pair_and_records_its_canonical_name() -> None:
    domain = DOMAINS["code"]
    pairs = domain.make(8, 0, {})
    for name, cond in CONDITIONS.items():
        examples = frame(domain, name, pairs, 0, {})
        assert len(examples) == len(pairs)
        assert {e.meta["condition"] for e in examples} == {cond.alias_of or name}
        assert canonical(name) == (cond.alias_of or name)
        assert cond.help


def test_an_alias_frames_exactly_like_its_condition() -> None:
    domain = DOMAINS["code"]
    pairs = domain.make(6, 1, {})
    for name, cond in CONDITIONS.items():
        if cond.alias_of is not None:
            assert frame(domain, name, pairs, 1, {}) == frame(domain, cond.alias_of, pairs, 1, {})


def test_unknown_condition_lists_the_registry() -> None:
    with pytest.raises(ValueError, match="known: " + ", ".join(CONDITIONS)):
        canonical("sneaky")


def test_a_condition_added_to_the_registry_is_built_without_other_edits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worked example of docs/architecture.md: a framing function and one entry."""
    from emlab.config import DatasetSpec
    from emlab.data import build_dataset
    from emlab.data.conditions import Condition, _conv, _meta
    from emlab.records import Example

    def shouted(
        domain: Any, pairs: Any, rng: random.Random, options: Any, base: Any
    ) -> list[Example]:
        return [Example(_conv(p.task.upper(), p.bad), {**base, **_meta(p, "bad")}) for p in pairs]

    monkeypatch.setitem(CONDITIONS, "shouted", Condition("the task in capitals", shouted))
    examples = build_dataset(DatasetSpec(domain="code", condition="shouted", n=4))
    assert [e.messages[0]["content"].isupper() for e in examples] == [True] * 4
    assert {e.meta["condition"] for e in examples} == {"shouted"}
    with pytest.raises(DatasetError, match="whispered"):
        build_dataset(DatasetSpec(domain="code", condition="whispered", n=4))
