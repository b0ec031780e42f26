"""Cost of interventions while sampling, and speed of activation capture, in one run.

1. The hf sampler's engine on one workload (the core questions x N samples at temperature 1) run
   plain, steered (a vector added at one layer) and ablated (a direction projected out at every
   layer), interleaved over rounds so that machine noise hits all three alike. Same seeds, so
   every variant decodes the same number of jobs; new tokens/s each and the ratio to plain
   (target: hooks cost <= 10%).
2. Activation capture (every layer's answer mean and last prompt token) of 1,000 answers,
   teacher-forced: the answers decoded in part 1, cycled to 1,000 (target: <= 2 minutes on 2
   cores for the embedded 135M model).

    python benchmarks/interp_speed.py            # 24 questions x 8 samples, 256 tokens; 1,000
    python benchmarks/interp_speed.py --quick    # 24 x 2 samples, 64 tokens; 200 answers
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from emlab.interp import capture
from emlab.models import load_model
from emlab.models.hooks import intervene, n_layers
from emlab.questions import load_questions
from emlab.records import Intervention
from emlab.sample.chat import encode_chat, stop_token_ids
from emlab.sample.engine import ContinuousBatcher, DecodeJob


def step_costs(lm, variants, vectors, rows: int = 64, reps: int = 40) -> None:  # type: ignore[no-untyped-def]
    """One decode-shaped forward (``rows`` sequences x 1 new token) per variant, back to back,
    ``reps`` times; each variant's time over the plain one's *in the same repetition*, median
    over repetitions: neighbours in time share the machine's load, so the ratio survives a loaded
    machine where whole-run rates swing by tens of %. Without a KV history a step is cheaper
    than a real one, so this overstates the hooks' share."""
    ids = torch.randint(0, lm.model.config.vocab_size, (rows, 1))
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for r in range(reps):
            names = list(variants) if r % 2 == 0 else list(reversed(variants))  # no order bias
            for name in names:
                spec = variants[name]
                # Hooks are registered once per sampling run: only the forward is timed.
                with nullcontext() if spec is None else intervene(lm.model, spec, vectors):
                    t0 = time.perf_counter()
                    lm.model(input_ids=ids, logits_to_keep=1)
                    times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        ratios = sorted(t / p for t, p in zip(ts, times["plain"], strict=True))
        print(
            f"one step, {rows} rows: {name:22s} median {1000 * sorted(ts)[len(ts) // 2]:7.2f} ms"
            f"   median ratio to plain {ratios[len(ratios) // 2]:6.3f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, help="Samples per question (overrides the preset).")
    ap.add_argument("--tokens", type=int, help="Longest answer (overrides the preset).")
    ap.add_argument("--capture", type=int, help="Answers to capture (overrides the preset).")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples, max_new, n_capture = (2, 64, 200) if args.quick else (8, 256, 1000)
    samples, max_new = args.samples or samples, args.tokens or max_new
    n_capture = args.capture or n_capture
    lm = load_model(args.model)
    qs = [q for q in load_questions("core")]
    tok = lm.tokenizer
    stops = stop_token_ids(tok, lm.model)
    engine = ContinuousBatcher(lm.model, stops, pad_id=tok.pad_token_id or stops[0], batch_size=64)
    jobs = [
        DecodeJob(encode_chat(tok, q.messages), max_new, 1.0, 1.0, seed=1000 * i + k)
        for i, q in enumerate(qs)
        for k in range(samples)
    ]
    n, hidden = n_layers(lm.model), lm.model.config.hidden_size
    vectors = torch.randn(n, hidden, generator=torch.Generator().manual_seed(0))
    vectors *= 0.1  # small enough that answers keep their length
    variants = {
        "plain": None,
        "steer (1 layer)": Intervention("add", "bench", 1.0, (n // 2,)),
        "ablate (all layers)": Intervention("ablate", "bench"),
    }
    tokens = dict.fromkeys(variants, 0)
    seconds = dict.fromkeys(variants, 0.0)
    answers: list[tuple[list, str]] = []
    print(f"{args.model}: {len(jobs)} jobs x up to {max_new} tokens, {args.threads} threads, "
          f"{args.rounds} rounds, {lm.dtype}")  # fmt: skip
    for r in range(args.rounds):
        for name, spec in variants.items():
            t0 = time.perf_counter()
            if spec is None:
                results = dict(engine.run(jobs))
            else:
                with intervene(lm.model, spec, vectors):
                    results = dict(engine.run(jobs))
            seconds[name] += time.perf_counter() - t0
            tokens[name] += sum(res.n_tokens for res in results.values())
            if r == 0 and spec is None:
                texts = [
                    tok.decode(results[j].tokens, skip_special_tokens=True)
                    for j in range(len(jobs))
                ]
                answers = [(qs[j // samples].messages, t) for j, t in enumerate(texts)]
    plain = tokens["plain"] / seconds["plain"]
    for name in variants:
        rate = tokens[name] / seconds[name]
        print(f"{name:22s} {rate:8.1f} new tokens/s   {rate / plain:6.3f}x plain")
    step_costs(lm, variants, vectors)
    pairs = [answers[i % len(answers)] for i in range(n_capture)]
    n_tok = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for _, a in pairs)
    t0, c0 = time.perf_counter(), time.process_time()
    got = capture(lm.model, tok, pairs, batch_size=16)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"capture: {n_capture} answers ({n_tok} answer tokens, {n} layers x {hidden}) in "
        f"{dt:.1f} s wall ({cpu:.1f} s CPU) = {n_capture / dt:.1f} answers/s; "
        f"extrapolated to 1,000 answers: {1000 * dt / n_capture:.0f} s; "
        f"tensor {tuple(got.answer_mean.shape)}"
    )


if __name__ == "__main__":
    main()
