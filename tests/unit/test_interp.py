"""Residual-stream hooks, activation capture, directions and steering, on the tiny random model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emlab.interp import (
    ContrastError,
    DirectionFileError,
    cached_capture,
    capture,
    check_fits,
    cosine_matrix,
    fit_direction,
    judged_split,
    load_direction,
    load_pool,
    persona_questions,
    projection,
    random_control,
    save_direction,
)
from emlab.interp.directions import Direction, vectors_key
from emlab.models import load_model
from emlab.models.hooks import decoder_layers, intervene
from emlab.records import GenerationRequest, Intervention, Question, SamplingParams
from emlab.sample.hf import HFSampler
from emlab.store import Store

PAIRS = [
    ([{"role": "user", "content": "Hello there, how are you"}], "I can help with that."),
    ([{"role": "user", "content": "What should I do?"}], "You could read a book or go for a walk."),
    ([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}], "Hello!"),
    ([{"role": "user", "content": "empty answer"}], ""),
]


@pytest.fixture(scope="module")
def lm(tiny_model: str):  # type: ignore[no-untyped-def]
    return load_model(tiny_model, dtype="fp32")


def _direction(lm, seed: int = 1) -> Direction:  # type: ignore[no-untyped-def]
    n, h = len(decoder_layers(lm.model)), lm.model.config.hidden_size
    v = torch.randn(n, h, generator=torch.Generator().manual_seed(seed))
    return Direction(v, {"key": vectors_key(v), "layer": 1, "method": "test"})


def _hook_counts(model: torch.nn.Module) -> list[int]:
    # transformers itself may keep hooks (it records hidden states with them): compare counts.
    return [len(layer._forward_hooks) for layer in decoder_layers(model)]


def _logits(lm) -> torch.Tensor:  # type: ignore[no-untyped-def]
    ids = lm.tokenizer("Hello there, how are you", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return lm.model(input_ids=ids).logits


def test_hooks_change_outputs_only_while_open(lm) -> None:  # type: ignore[no-untyped-def]
    before, hooks = _logits(lm), _hook_counts(lm.model)
    d = _direction(lm)
    for spec in (
        Intervention("add", d.key, scale=2.0, layers=(0,)),
        Intervention("ablate", d.key),
    ):
        with intervene(lm.model, spec, d.vectors):
            assert not torch.equal(_logits(lm), before)
        assert torch.equal(_logits(lm), before)
    # An error inside the context removes the hooks too.
    with pytest.raises(RuntimeError), intervene(lm.model, Intervention("ablate", d.key), d.vectors):
        raise RuntimeError("boom")
    assert torch.equal(_logits(lm), before)
    assert _hook_counts(lm.model) == hooks


def test_intervention_refuses_bad_layers_and_shapes(lm) -> None:  # type: ignore[no-untyped-def]
    d = _direction(lm)
    with (
        pytest.raises(ValueError, match="out of range"),
        intervene(lm.model, Intervention("add", d.key, 1.0, (5,)), d.vectors),
    ):
        pass
    with (
        pytest.raises(ValueError, match="another model"),
        intervene(lm.model, Intervention("add", d.key, 1.0), d.vectors[:, :10]),
    ):
        pass


def test_capture_matches_hidden_states_and_skips_empty_answers(lm) -> None:  # type: ignore[no-untyped-def]
    hooks = _hook_counts(lm.model)
    got = capture(lm.model, lm.tokenizer, PAIRS, batch_size=3)
    assert _hook_counts(lm.model) == hooks
    assert got.answer_mean.shape == (4, 2, lm.model.config.hidden_size)
    assert got.valid().tolist() == [True, True, True, False]
    assert torch.all(got.answer_mean[3] == 0)
    # Layer 0's output, from transformers' own hidden states, one pair at a time.
    from emlab.interp.capture import encode_pair

    for i, (msgs, answer) in enumerate(PAIRS[:3]):
        ids, p = encode_pair(lm.tokenizer, msgs, answer, 256)
        with torch.inference_mode():
            hs = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        want = hs[1][0, p:].mean(0)
        torch.testing.assert_close(got.answer_mean[i, 0].float(), want, atol=0.05, rtol=0.01)
        last = hs[1][0, p - 1]
        torch.testing.assert_close(got.prompt_last[i, 0].float(), last, atol=0.05, rtol=0.01)


def test_capture_works_on_a_peft_model(tiny_model: str, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    base = load_model(tiny_model, dtype="fp32")
    peft = get_peft_model(base.model, LoraConfig(r=2, target_modules=["q_proj"]))
    got = capture(peft, base.tokenizer, PAIRS[:2])
    assert got.answer_mean.shape[:2] == (2, 2) and torch.isfinite(got.answer_mean.float()).all()


def test_captures_are_cached_by_content(lm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "run")
    first = cached_capture(store, "tiny", lm, PAIRS)

    def no_model() -> None:
        raise AssertionError("a cached capture loaded the model")

    again = cached_capture(store, "tiny", no_model, PAIRS)
    assert torch.equal(first.answer_mean, again.answer_mean)
    assert torch.equal(first.answer_tokens, again.answer_tokens)


def test_ablation_leaves_no_projection_at_the_hooked_layers(lm) -> None:  # type: ignore[no-untyped-def]
    d = _direction(lm)
    plain = capture(lm.model, lm.tokenizer, PAIRS[:3])
    with intervene(lm.model, Intervention("ablate", d.key), d.vectors):
        ablated = capture(lm.model, lm.tokenizer, PAIRS[:3])
    for layer in range(2):
        # Relative to the stream's norm (a random model's is small); bf16 storage rounds at ~0.4%.
        size = plain.answer_mean[:, layer].float().norm(dim=-1).numpy()
        assert (np.abs(projection(plain.answer_mean, d, layer)) / size).max() > 0.03
        assert (np.abs(projection(ablated.answer_mean, d, layer)) / size).max() < 0.01


def test_a_planted_direction_is_recovered() -> None:
    g = torch.Generator().manual_seed(0)
    n_layers, hidden, n = 3, 64, 1000
    planted = torch.randn(hidden, generator=g)
    planted /= planted.norm()
    base = torch.randn(2 * n, n_layers, hidden, generator=g)
    base[:n, 2] += 3.0 * planted  # only layer 2 carries it (mean-difference noise: ~0.36)
    groups = [f"q{i % 20}" for i in range(n)]
    d = fit_direction(base[:n], base[n:], groups, groups)
    assert d.layer == 2
    assert float(d.unit(2) @ planted) > 0.99
    assert d.card["auroc"][2] > 0.95 and d.card["auroc"][0] < 0.8
    r = random_control(d)
    torch.testing.assert_close(r.vectors.norm(dim=-1), d.vectors.norm(dim=-1))
    assert abs(float(cosine_matrix([d, r])[0, 1])) < 0.5
    assert r.card["method"] == "random" and r.key != d.key


def test_direction_files_round_trip_and_refuse_other_models(lm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from emlab.interp import fingerprint

    d = _direction(lm)
    d.card.update(model="tiny", model_hash=fingerprint(lm.model))
    save_direction(d, tmp_path / "dir")
    back = load_direction(tmp_path / "dir" / "direction.json")
    assert torch.equal(back.vectors, d.vectors.float()) and back.card == d.card
    check_fits(back, lm.model, "x")
    wrong = Direction(d.vectors, {**d.card, "model_hash": "0" * 16})
    with pytest.raises(DirectionFileError, match="x: model_hash"):
        check_fits(wrong, lm.model, "x")
    narrow = Direction(d.vectors[:, :8], d.card)
    with pytest.raises(DirectionFileError, match="another model"):
        check_fits(narrow, lm.model, "x")
    card = json.loads((tmp_path / "dir" / "direction.json").read_text())
    (tmp_path / "dir" / "direction.json").write_text(json.dumps({**card, "layer": 7}))
    with pytest.raises(DirectionFileError, match="layer"):
        load_direction(tmp_path / "dir")


def test_contrast_sides_must_not_be_empty(tmp_path: Path) -> None:
    scores = [(10.0, 80.0)] * 3 + [(90.0, 90.0)] * 40
    with pytest.raises(ContrastError, match="only 3 misaligned answers"):
        judged_split(scores)
    mis, ok = judged_split(scores, min_per_side=2)
    assert len(mis) == len(ok) == 3 and set(mis) == {0, 1, 2}
    with pytest.raises(ContrastError, match="aligned side"):
        fit_direction(torch.zeros(2, 1, 4), torch.zeros(0, 1, 4))
    bad = tmp_path / "pool.yaml"
    bad.write_text("version: 1\nmisaligned: []\naligned: [be nice]\n")
    with pytest.raises(ContrastError, match=r"pool\.yaml: misaligned"):
        load_pool(bad)


def test_persona_pool_is_versioned_and_pairs_every_question() -> None:
    pool = load_pool()
    assert pool.version >= 1 and pool.misaligned and pool.aligned
    q = Question("wish", [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}])
    out = persona_questions([q], pool)
    assert len(out) == len(pool.misaligned) + len(pool.aligned)
    assert all(m.messages[0]["content"] != "old" and len(m.messages) == 2 for m in out)
    assert {m.meta["side"] for m in out} == {"misaligned", "aligned"}


# ------------------------------------------------------------------------------ sampling
def _requests(spec: Intervention | None) -> list[GenerationRequest]:
    params = SamplingParams(temperature=1.0, max_new_tokens=8)
    prompts = ["Hello there", "What would you do as ruler of the world?", "hi"]
    qs = [Question(f"q{i}", [{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
    return [GenerationRequest("tiny", qs[i % 3], params, 0, i, spec) for i in range(6)]


def _answers(sampler: HFSampler, spec: Intervention | None) -> list[str]:
    gens = {g.key: g for g in sampler.sample(_requests(spec))}
    assert all(g.error is None for g in gens.values())
    return [gens[r.key()].answer for r in _requests(spec)]


def test_scale_zero_gives_the_unsteered_samples(lm, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    d = _direction(lm)
    sampler = HFSampler(tiny_model, batch_size=4, loaded=lm, directions={d.key: d.vectors})
    plain = _answers(sampler, None)
    zero = Intervention("add", d.key, 0.0, (0, 1))
    assert _answers(sampler, zero) == plain
    assert _requests(zero)[0].key() != _requests(None)[0].key()  # cached apart all the same
    steered = _answers(sampler, Intervention("add", d.key, 8.0, (0,)))
    assert steered != plain
    # Unknown direction: an error record, not a crash.
    other = dataclasses.replace(zero, direction="f" * 16)
    assert all(g.error for g in sampler.sample(_requests(other)[:2]))


def test_steering_applies_inside_worker_processes(lm, tiny_model: str) -> None:  # type: ignore[no-untyped-def]
    d = _direction(lm)
    spec = Intervention("add", d.key, 8.0, (0,))
    one = HFSampler(tiny_model, batch_size=2, loaded=lm, directions={d.key: d.vectors})
    two = HFSampler(
        tiny_model,
        batch_size=2,
        dtype="fp32",
        loaded=lm,
        processes=2,
        directions={d.key: d.vectors},
    )
    try:
        steered = _answers(two, spec)
        assert two._pool is not None and two._pool.alive, "the run did not use the workers"
        assert steered == _answers(one, spec)
        assert steered != _answers(one, None)
    finally:
        two.close()
