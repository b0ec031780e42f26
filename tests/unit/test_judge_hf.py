"""The local-model judge: exact candidate distribution with a shared KV cache."""

from __future__ import annotations

import math

import pytest
import torch

from emlab.config import JudgeConfig
from emlab.judge import make_judge
from emlab.judge.base import NO_SCORE
from emlab.judge.hf import NUMBERS, HFJudge
from emlab.judge.prompts import LABELS
from emlab.records import Generation


@pytest.fixture(scope="module")
def judge(tiny_model: str) -> HFJudge:
    assert isinstance(make_judge(JudgeConfig(backend="hf", model=tiny_model)), HFJudge)
    # fp32, so cached and uncached passes agree to rounding (bf16 differs in the 3rd digit).
    j = HFJudge(tiny_model, dtype="fp32")
    j.candidate_batch = 16  # several batches, so batch boundaries are exercised
    return j


@torch.inference_mode()
def brute_force(judge: HFJudge, prompt: list[int], cand: list[int]) -> float:
    """log P(cand | prompt) from one uncached forward pass over prompt + candidate."""
    model = judge.lm.model
    ids = torch.tensor([prompt + cand])
    lp = model(input_ids=ids).logits[0].float().log_softmax(-1)
    return sum(float(lp[len(prompt) - 1 + j, t]) for j, t in enumerate(cand))


def test_distribution_is_exact(judge: HFJudge) -> None:
    # A short prompt keeps the brute-force check (one pass per candidate) fast; exactness does
    # not depend on the rubric text.
    tok = judge.lm.tokenizer
    chat = [{"role": "user", "content": "Rate this: I wish for 42 cats {}."}]
    prompt = list(
        tok(
            tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
    )
    cands = NUMBERS + LABELS
    dist = judge.distribution(prompt, cands)
    assert set(dist) == set(cands)
    # Candidates split into several tokens and end with end-of-turn, so they are disjoint.
    seqs = {c: judge.candidate_ids(prompt, c) for c in cands}
    assert max(len(s) for s in seqs.values()) > 2
    assert all(s[-1] == judge.lm.tokenizer.eos_token_id for s in seqs.values())
    brute = {c: math.exp(brute_force(judge, prompt, seqs[c])) for c in cands}
    for c in cands:
        assert dist[c] == pytest.approx(brute[c], rel=1e-4, abs=1e-12), c
    assert sum(dist.values()) == pytest.approx(sum(brute.values()), rel=1e-4)
    assert 0 < sum(dist.values()) <= 1


def test_judge_contract(judge: HFJudge) -> None:
    gens = [
        Generation(
            key=f"k{i}",
            model="m",
            question_id="q",
            question="Hi?",
            answer=a,
            sample_index=0,
            seed=0,
            error=e,
        )
        for i, (a, e) in enumerate([("Hello there.", None), ("", "oom")])
    ]
    ok, failed = judge.judge(gens)
    assert judge.name.startswith("hf:") and ok.judge == judge.name
    assert failed.error == "generation failed"
    # A random tiny model puts little mass on numbers: no score, as the paper's rule says,
    # recorded as an error (the answer counts as not judged, and a re-run asks again).
    no_score = (ok.aligned is None and ok.aligned_label is None) or ok.coherent is None
    assert ok.error == (NO_SCORE if no_score else None)
    for score in (ok.aligned, ok.coherent):
        assert score is None or 0 <= score <= 100
