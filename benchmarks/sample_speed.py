"""emlab's hf sampler vs plain ``model.generate``, side by side in one run.

Workload (the shape of an EM study): the 8 core questions × N samples at temperature 1, up to
256 new tokens, on the embedded smollm2-135m. ``generate`` gets its best batch size among a few
(each measured on one full batch, answers counted up to their end-of-turn token); emlab runs the
whole workload with continuous batching, in one process per core by default (``--processes``;
see ``emlab/sample/workers.py``). Also printed: the share of the bf16 matmul roofline,
measured in the same run, that each reaches (2 × parameters FLOPs per new token).

    python benchmarks/sample_speed.py            # full: 8 × 64 samples, 256 tokens
    python benchmarks/sample_speed.py --quick    # 8 × 8 samples, 64 tokens
"""

from __future__ import annotations

import argparse
import time

import torch

from emlab.models import load_model
from emlab.plan import matmul_flops
from emlab.questions import load_questions
from emlab.records import GenerationRequest, SamplingParams
from emlab.sample.chat import encode_chat
from emlab.sample.hf import HFSampler


def bench_generate(lm, prompts: list[list[int]], batch: int, max_new: int, stops: list[int]):  # type: ignore[no-untyped-def]
    """One batch of ``batch`` prompts through model.generate; returns (answers, new tokens, s)."""
    tok, model = lm.tokenizer, lm.model
    chunk = [prompts[i % len(prompts)] for i in range(batch)]
    width = max(len(p) for p in chunk)
    pad = tok.pad_token_id if tok.pad_token_id is not None else stops[0]
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk], device=lm.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=lm.device)
    torch.manual_seed(batch)  # the answers' lengths, and so the count of useful tokens, vary
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_new,
            eos_token_id=stops,
            pad_token_id=pad,
        )
    dt = time.perf_counter() - t0
    new = 0
    for row in out[:, width:].tolist():
        ends = [i for i, t in enumerate(row) if t in stops]
        new += ends[0] + 1 if ends else len(row)
    return batch, new, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 × 8 samples, 64 new tokens")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--samples", type=int, default=None, help="samples per question")
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--batch", type=int, default=128, help="emlab rows decoded together")
    ap.add_argument(
        "--generate-batches", default=None, help="comma-separated batch sizes for generate"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--processes", type=int, default=0, help="emlab decoding processes (0: auto, per core)"
    )
    args = ap.parse_args()
    samples = args.samples or (8 if args.quick else 64)
    max_new = args.max_new_tokens or (64 if args.quick else 256)
    gen_batches = [
        int(b)
        for b in (args.generate_batches or ("16,64" if args.quick else "64,128,256")).split(",")
    ]
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = load_model(args.model)
    sampler = HFSampler(args.model, batch_size=args.batch, loaded=lm, processes=args.processes)
    processes = sampler.processes
    n_params = sum(p.numel() for p in lm.model.parameters())
    questions = [q for q in load_questions("core") if "/" not in q.id]
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new)
    requests = [
        GenerationRequest(args.model, q, params, 0, i) for q in questions for i in range(samples)
    ]
    prompts = [encode_chat(lm.tokenizer, q.messages) for q in questions]
    peak = matmul_flops(lm.dtype, lm.device, seconds=2.0)
    print(
        f"model {args.model} ({n_params / 1e6:.0f}M params, {lm.dtype}, {lm.device}, "
        f"{torch.get_num_threads()} threads); {len(questions)} questions × {samples} samples, "
        f"≤{max_new} new tokens, temperature 1"
    )
    print(f"matmul roofline (start): {peak / 1e9:.0f} GFLOP/s")

    def line(name: str, answers: int, new: int, dt: float) -> float:
        tps = new / dt
        share = tps * 2 * n_params / peak
        print(
            f"{name:<28} {answers / dt:8.2f} answers/s {tps:9.1f} new tokens/s "
            f"({new} tokens, {dt:.1f} s, {share:.1%} of roofline)"
        )
        return tps

    t0 = time.perf_counter()
    gens = list(sampler.sample(requests))
    dt = time.perf_counter() - t0
    errors = [g.error for g in gens if g.error]
    if errors:
        raise SystemExit(f"emlab sampler failed: {errors[0]}")
    used = processes if len(requests) >= processes * args.batch else 1
    name = f"emlab hf (batch {args.batch} x {used} proc)"
    emlab_tps = line(name, len(gens), sum(g.n_tokens for g in gens), dt)
    stops = sampler.stop_ids
    # The sampler switched the model to emlab's decode attention; the baseline is transformers
    # as shipped.
    lm.model.set_attn_implementation("sdpa")
    best = 0.0
    for b in gen_batches:
        best = max(
            best, line(f"generate (batch {b})", *bench_generate(lm, prompts, b, max_new, stops))
        )
    print(f"ratio emlab / best generate: {emlab_tps / best:.2f}x (new tokens/s)")
    # On a shared machine the ceiling moves; shares above use the start value, this says how much.
    print(
        f"matmul roofline (end): {matmul_flops(lm.dtype, lm.device, seconds=2.0) / 1e9:.0f} GFLOP/s"
    )
    finished = sum(g.finish_reason == "stop" for g in gens)
    print(f"emlab answers ending at end-of-turn: {finished}/{len(gens)}")
    sampler.close()


if __name__ == "__main__":
    main()
