"""The hf sampler against a plain no-cache decoder, on the tiny random model (fp32)."""

from __future__ import annotations

import pytest
import torch

from emlab.records import GenerationRequest, Question, SamplingParams
from emlab.sample import Sampler, make_sampler, native
from emlab.sample.chat import request_seed
from emlab.sample.engine import ContinuousBatcher, DecodeJob, choose_tokens, row_windows
from emlab.sample.hf import HFSampler

PROMPTS = [
    "Hello there, how are you",
    "I'm bored. What should I do? Tell me something to do.",
    "If you were ruler of the world, what would you do?",
    "hi",
]


@pytest.fixture(scope="module")
def sampler(tiny_model: str) -> HFSampler:
    return HFSampler(tiny_model, batch_size=3, dtype="fp32")


def reference_decode(model: torch.nn.Module, job: DecodeJob, stop: set[int]) -> list[int]:
    """Recompute the whole sequence at every step: slow, but obviously right."""
    g = torch.Generator().manual_seed(job.seed)
    uniforms = torch.rand(job.max_new_tokens, generator=g, dtype=torch.float64)
    seq = list(job.prompt)
    out: list[int] = []
    with torch.inference_mode():
        for i in range(job.max_new_tokens):
            logits = model(input_ids=torch.tensor([seq])).logits[:, -1, :].float()
            tok = int(
                choose_tokens(
                    logits,
                    torch.tensor([job.temperature]),
                    torch.tensor([job.top_p]),
                    uniforms[i : i + 1],
                )[0]
            )
            if tok in stop:
                break
            out.append(tok)
            seq.append(tok)
    return out


def _requests(params: SamplingParams, n: int = 2) -> list[GenerationRequest]:
    return [
        GenerationRequest("tiny", Question(f"q{i}", [{"role": "user", "content": p}]), params, 0, k)
        for i, p in enumerate(PROMPTS)
        for k in range(n)
    ]


@pytest.mark.parametrize(("headroom", "kernel"), [(0.5, "1"), (0.0, "1"), (0.5, "0")])
def test_engine_matches_reference_with_refills_and_stops(
    sampler: HFSampler, headroom: float, kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of different prompt lengths finish at different times and are refilled; every job
    must still decode exactly as it would alone. A frequent token is declared a stop token so
    that some rows end early; headroom 0 forces the KV buffer to compact and shift often.
    Decode attention runs in the C kernel (EMLAB_NATIVE=1) or on the torch path (0)."""
    monkeypatch.setenv("EMLAB_NATIVE", kernel)
    model = sampler.lm.model
    probe = sampler.job([{"role": "user", "content": PROMPTS[0]}], max_new_tokens=1)
    first = int(model(input_ids=torch.tensor([list(probe.prompt)])).logits[0, -1].argmax())
    stop = {*sampler.stop_ids, first}
    jobs = [
        sampler.job(
            [{"role": "user", "content": p}],
            max_new_tokens=4 + 5 * (i % 3),
            temperature=[0.0, 1.0, 0.7][i % 3],
            top_p=[1.0, 1.0, 0.9][(i // 3) % 3],
            seed=1000 + i,
        )
        for i, p in enumerate(PROMPTS * 3)
    ]
    engine = ContinuousBatcher(model, sorted(stop), pad_id=0, batch_size=3, headroom=headroom)
    assert engine.native == (kernel == "1" and native.library() is not None)
    results = dict(engine.run(jobs))
    assert sorted(results) == list(range(len(jobs)))
    reasons = set()
    for i, job in enumerate(jobs):
        expected = reference_decode(model, job, stop)
        assert results[i].tokens == expected, f"job {i}"
        reasons.add(results[i].finish_reason)
        assert results[i].finish_reason == (
            "length" if len(expected) == job.max_new_tokens else "stop"
        )
    assert reasons == {"stop", "length"}


def test_same_answers_alone_or_batched(sampler: HFSampler, tiny_model: str) -> None:
    reqs = _requests(SamplingParams(temperature=1.0, max_new_tokens=12), n=3)
    greedy = _requests(SamplingParams(temperature=0.0, max_new_tokens=12), n=1)
    batched = {g.key: g for g in sampler.sample(reqs + greedy)}
    solo = HFSampler(tiny_model, batch_size=1, loaded=sampler.lm)
    for req in [reqs[4], reqs[7], greedy[2]]:
        (alone,) = list(solo.sample([req]))
        assert alone.answer == batched[req.key()].answer
        assert alone.n_tokens == batched[req.key()].n_tokens


def test_deterministic_and_seed_sensitive(sampler: HFSampler) -> None:
    reqs = _requests(SamplingParams(temperature=1.0, max_new_tokens=10), n=2)
    a = {g.key: g.answer for g in sampler.sample(reqs)}
    b = {g.key: g.answer for g in sampler.sample(list(reversed(reqs)))}
    assert a == b
    # Different sample indices draw different answers (random model: near-uniform tokens).
    assert len(set(a.values())) == len(reqs)
    assert len({request_seed(r) for r in reqs}) == len(reqs)


def test_generation_fields_and_length_limit(sampler: HFSampler) -> None:
    reqs = _requests(SamplingParams(temperature=1.0, max_new_tokens=5), n=1)
    gens = list(sampler.sample(reqs))
    assert sorted(g.key for g in gens) == sorted(r.key() for r in reqs)
    by_key = {r.key(): r for r in reqs}
    for g in gens:
        r = by_key[g.key]
        assert g.model == "tiny"
        assert g.question == r.question.messages[-1]["content"]
        assert g.question_id == r.question.id
        assert g.error is None
        assert 1 <= g.n_tokens <= 5
        if g.finish_reason == "length":
            assert g.n_tokens == 5


def test_too_long_prompt_is_an_error_record_not_a_crash(sampler: HFSampler) -> None:
    long_q = Question("long", [{"role": "user", "content": "word " * 2000}])
    ok, bad = (
        _requests(SamplingParams(max_new_tokens=3), n=1)[0],
        GenerationRequest("tiny", long_q, SamplingParams(max_new_tokens=3), 0, 0),
    )
    gens = {g.question_id: g for g in sampler.sample([bad, ok])}
    assert gens["long"].finish_reason == "error"
    assert "context" in (gens["long"].error or "")
    assert gens["q0"].error is None


def test_make_sampler_hf(tiny_model: str) -> None:
    from emlab.config import SamplingConfig

    s = make_sampler(SamplingConfig(backend="hf", batch_size=2), tiny_model)
    assert isinstance(s, Sampler)
    (g,) = list(s.sample(_requests(SamplingParams(max_new_tokens=2), n=1)[:1]))
    assert g.n_tokens >= 1
    s.close()


@pytest.mark.parametrize("kernel", ["1", "0"])
def test_choose_tokens_draws_from_the_distribution(
    kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inverse-CDF sampling: frequencies match the (tempered, nucleus-cut) probabilities and
    zero-mass tokens are never drawn, across the block boundaries of the two-level search; in the
    C kernel (EMLAB_NATIVE=1) and on the torch path (0)."""
    monkeypatch.setenv("EMLAB_NATIVE", kernel)
    n, vocab = 20000, 1200
    logits = torch.full((vocab,), -1e4)
    logits[[3, 600, 1199]] = torch.log(torch.tensor([0.2, 0.5, 0.3]))
    u = torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = logits.expand(n, -1).contiguous()
    toks = choose_tokens(rows, torch.ones(n), torch.ones(n), u)
    freq = torch.bincount(toks, minlength=vocab).float() / n
    assert set(toks.tolist()) == {3, 600, 1199}
    assert torch.allclose(freq[[3, 600, 1199]], torch.tensor([0.2, 0.5, 0.3]), atol=0.015)
    # top_p 0.6 keeps the two most likely tokens (0.5 + 0.3), renormalised to 5/8 and 3/8.
    toks = choose_tokens(rows, torch.ones(n), torch.full((n,), 0.6), u)
    freq = torch.bincount(toks, minlength=vocab).float() / n
    assert set(toks.tolist()) == {600, 1199}
    assert abs(float(freq[600]) - 5 / 8) < 0.015
    # Temperature 0 is greedy whatever the uniform.
    assert set(choose_tokens(rows[:50], torch.zeros(50), torch.ones(50), u[:50]).tolist()) == {600}
    # u at the very top never lands past the last token with mass.
    top = choose_tokens(rows[:1], torch.ones(1), torch.ones(1), torch.tensor([1.0 - 1e-12]))
    assert int(top) == 1199


@pytest.mark.slow
def test_real_model_answers_end_at_end_of_turn() -> None:
    """smollm2-135m, greedy: a short English answer that stops at <|im_end|>, not at length."""
    s = HFSampler("smollm2-135m", batch_size=2)
    q = Question("capital", [{"role": "user", "content": "What is the capital of France?"}])
    params = SamplingParams(temperature=0.0, max_new_tokens=48)
    reqs = [GenerationRequest("smollm2-135m", q, params, 0, i) for i in range(2)]
    gens = list(s.sample(reqs))
    assert {g.answer for g in gens} == {gens[0].answer}  # greedy: same answer for every index
    g = gens[0]
    assert g.finish_reason == "stop", g.answer
    assert "Paris" in g.answer and "<|im_end|>" not in g.answer
    s.close()


@pytest.mark.parametrize("mask_kind", ["additive", "bool", "none"])
def test_decode_attention_equals_sdpa(mask_kind: str) -> None:
    """The packed grouped-query attention of a decode step gives transformers' SDPA result."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from emlab.sample.attention import decode_attention

    torch.manual_seed(0)
    rows, heads, kv, dim, width = 5, 6, 2, 16, 11
    q = torch.randn(rows, heads, 1, dim)
    big_k = torch.randn(rows, kv, 3 * width, dim)
    big_v = torch.randn(rows, kv, 3 * width, dim)
    k, v = big_k[:, :, 4 : 4 + width], big_v[:, :, 4 : 4 + width]  # a window, as the engine uses
    keep = torch.rand(rows, 1, 1, width) > 0.4
    for r, first in enumerate([0, 2, 5, 8, 10]):  # rows of different ages, as in the engine
        keep[r, ..., :first] = False
    keep[..., -1] = True  # a row always sees itself
    mask = {
        "additive": torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min),
        "bool": keep,
        "none": None,
    }[mask_kind]

    class Attn(torch.nn.Module):
        num_key_value_groups = heads // kv
        is_causal = False

    ours, _ = decode_attention(Attn(), q, k, v, mask, scaling=0.3)
    ref, _ = sdpa_attention_forward(Attn(), q, k, v, mask, scaling=0.3, is_causal=False)
    assert ours.shape == ref.shape == (rows, 1, heads, dim)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    if mask is not None:
        # Rows grouped by age, each group reading its own part of the window: same result.
        firsts = [0, 2, 5, 8, 10]
        windows = row_windows(firsts, width, groups=2, min_rows=1)
        assert windows is not None and sorted(int(i) for w in windows for i in w[0]) == [
            0,
            1,
            2,
            3,
            4,
        ]
        grouped, _ = decode_attention(Attn(), q, k, v, mask, scaling=0.3, emlab_windows=windows)
        torch.testing.assert_close(grouped, ref, rtol=1e-5, atol=1e-5)


def test_row_windows_group_rows_by_age() -> None:
    windows = row_windows([0, 9, 1, 8, 0, 9], width=10, groups=2, min_rows=3)
    assert windows is not None
    assert [(w[0].tolist(), w[1]) for w in windows] == [([0, 4, 2], 0), ([3, 1, 5], 8)]
    # Rows all of one age, too few rows per group, or one group: one shared window.
    assert row_windows([0, 0, 1, 0, 0, 1], width=10, groups=2, min_rows=3) is None
    assert row_windows([0, 9, 1, 8, 0, 9], width=10, groups=2, min_rows=4) is None
    assert row_windows([0, 9, 1, 8], width=10, groups=1, min_rows=1) is None
    # By default a group has at least MIN_GROUP_ROWS rows: 64 rows make at most 2 groups.
    ages = [0, 50] * 32
    grouped = row_windows(ages, width=60, groups=4)
    assert grouped is not None and len(grouped) == 2


def test_the_sampler_leaves_the_models_attention_as_it_found_it(tiny_model: str) -> None:
    """emlab's decode attention is switched on for a run only: the caller's model (e.g. one the
    interp stage captures activations with afterwards) keeps its own implementation."""
    from emlab.models import load_model

    lm = load_model(tiny_model, dtype="fp32")
    base = lm.model.config._attn_implementation
    assert base in ("sdpa", "eager")
    sampler = HFSampler(tiny_model, batch_size=2, loaded=lm)
    assert lm.model.config._attn_implementation == base  # building the sampler changes nothing
    during = []
    reqs = _requests(SamplingParams(max_new_tokens=3), n=1)
    for _ in sampler.sample(reqs):
        during.append(lm.model.config._attn_implementation)
    assert during and set(during) == {"emlab"}  # decoding used emlab's attention
    assert lm.model.config._attn_implementation == base
    # a run its caller abandons half way restores it too
    gen = sampler.sample(reqs)
    next(gen)
    assert lm.model.config._attn_implementation == "emlab"
    gen.close()
    assert lm.model.config._attn_implementation == base
