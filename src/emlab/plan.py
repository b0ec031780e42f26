"""Power and run time before spending hours: what a study can detect and roughly how long it takes.

A study prints this block before any model work and ``emlab plan STUDY`` shows it without running
anything. Two figures a researcher needs before committing compute:

* *The smallest difference each comparison can detect* (the comparisons of
  ``metrics.comparison_pairs``, A - B) at the study's answers and seeds, with the stated power and
  the two-sided level of the report's intervals, quoted as a rise above an assumed rate of B
  (``plan.baseline_rate``). Like the report, with fewer than ``metrics.SEPARATION_MIN_SEEDS``
  seeds a comparison goes over answers (a two-proportion z-test, answers pooled over seeds, which
  ignores seed-to-seed variation); from that many seeds on, over seeds (a t-test on per-seed rates
  whose spread is the assumed ``plan.seed_sd`` plus binomial noise).
* *An estimate of the run time on this machine*: training and sampled tokens times FLOPs per token
  (2 x parameters forward, 4 x with a LoRA backward, 6 x for a full fine-tune), over a matrix
  multiply rate measured here in the sampler's dtype. Attention, Python overhead, model loads and
  judging are left out: it is an order of magnitude, not a promise.

Everything here is computed from the study file, the packaged questions and the training data;
nothing is trained, sampled or judged.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from emlab import metrics
from emlab.config import StudyConfig
from emlab.models import choose_device, choose_dtype, dtype_name
from emlab.models.loading import LOCAL_ONLY, weights_dir

TRAIN_FLOPS_PER_PARAM = {"lora": 4.0, "full": 6.0}
"""FLOPs per token and parameter of a training step: forward 2, backward 2 for the activations'
gradients, plus 2 for the weights' gradients, which a LoRA run skips (its base is frozen)."""
SAMPLE_FLOPS_PER_PARAM = 2.0
"""FLOPs per token and parameter of a forward pass (one multiply-add per weight)."""


@dataclass(frozen=True)
class ComparisonPower:
    """What one comparison (A - B) can detect."""

    a: str
    b: str
    what: str
    over: str
    """``answers`` (two-proportion test) or ``seeds`` (t-test over per-seed rates)."""
    n: int
    """Per arm: valid answers (over answers, pooled over seeds) or seeds (over seeds)."""
    detectable: float | None
    """Smallest rise of A over B (at ``baseline_rate``) detected with the stated power; None:
    not even A at 100%."""


@dataclass(frozen=True)
class RunTime:
    """The run-time estimate and what it is made of."""

    parameters: dict[str, int]
    adapters: int
    train_tokens: int
    answers: int
    sample_tokens: int
    """Prompt tokens plus ``max_new_tokens`` per answer (an upper bound: answers may stop early)."""
    flop_rate: float
    """Measured matrix-multiply FLOP/s in ``dtype``."""
    dtype: str
    train_seconds: float
    sample_seconds: float


@dataclass(frozen=True)
class StudyPlan:
    """Everything ``emlab plan`` shows."""

    study: str
    models: list[str]
    arms: list[str]
    seeds: int
    questions: int
    answers_per_seed: int
    """Judged answers per arm and seed (bandit-scored code tasks are not judged)."""
    baseline_rate: float
    power: float
    alpha: float
    seed_sd: float
    valid_fraction: float
    comparisons: list[ComparisonPower]
    runtime: RunTime | None
    runtime_note: str | None = None
    """Why there is no run-time estimate, when it could not be made."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """One compact block for a terminal."""
        valid = (
            "all answers valid"
            if self.valid_fraction == 1
            else f"{self.valid_fraction:.0%} of answers valid"
        )
        out = [
            f"plan for {self.study} (estimates; nothing has run)",
            f"  arms: {', '.join(self.arms)}; {_count(len(self.models), 'model')}, "
            f"{_count(self.seeds, 'seed')}",
            f"  answers: {self.answers_per_seed} judged per arm and seed "
            f"({_count(self.questions, 'question')})",
        ]
        if self.comparisons:
            out.append(
                f"  smallest detectable A - B ({self.power:.0%} power, two-sided alpha "
                f"{self.alpha:g}, B at {self.baseline_rate:.1%}, {valid}):"
            )
        groups: dict[tuple[str, int, float | None], list[ComparisonPower]] = {}
        for c in self.comparisons:
            groups.setdefault((c.over, c.n, c.detectable), []).append(c)
        for (over, n, d), cs in groups.items():
            size = "not detectable (A would pass 100%)" if d is None else f"{100 * d:+.1f} pts"
            unit = (
                "answers"
                if over == "answers"
                else f"seeds, seed SD {100 * self.seed_sd:.1f} pts assumed"
            )
            out.append(f"    {size} over {over} ({n} vs {n} {unit}):")
            names = "; ".join(f"{c.a} - {c.b} ({c.what})" for c in cs)
            out.append(textwrap.fill(names, 100, initial_indent=" " * 6, subsequent_indent=" " * 6))
        if self.comparisons and self.comparisons[0].over == "answers":
            out.append(
                "    (pooled answers ignore seed-to-seed spread; from "
                f"{metrics.SEPARATION_MIN_SEEDS} seeds on, comparisons go over seeds)"
            )
        r = self.runtime
        if self.runtime_note:
            out.append(f"  run time: no estimate ({self.runtime_note})")
        if r is not None:
            params = ", ".join(f"{m} {_size(n)}" for m, n in r.parameters.items())
            out += [
                f"  run time ~ {_duration(r.train_seconds + r.sample_seconds)} (estimate: tokens "
                f"x FLOPs per token / {r.flop_rate / 1e9:.0f} GFLOP/s, a {r.dtype} matmul "
                "measured now; the whole study, cached work included; judging and model loads "
                "left out)",
                f"    train {_count(r.adapters, 'adapter')}, {r.train_tokens:,} tokens "
                f"~ {_duration(r.train_seconds)}; sample {r.answers:,} answers, <= "
                f"{r.sample_tokens:,} tokens ~ {_duration(r.sample_seconds)}; {params} parameters",
            ]
        return "\n".join(out)


def _size(n: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def comparison_power(
    cfg: StudyConfig,
    arms: Sequence[metrics.ArmInfo],
    answers_per_seed: int,
    baseline: str | None,
) -> list[ComparisonPower]:
    """The smallest detectable difference of every comparison the study's report will mark."""
    p = cfg.plan
    alpha = 1 - cfg.metrics.confidence  # the level of the report's intervals
    seeds = len(cfg.seeds)
    n_seed = answers_per_seed * p.valid_fraction
    out = []
    for a, b, what in metrics.comparison_pairs(arms, baseline):
        if seeds >= metrics.SEPARATION_MIN_SEEDS:
            d = metrics.detectable_over_seeds(
                p.baseline_rate, n_seed, seeds, p.seed_sd, alpha, p.power
            )
            out.append(ComparisonPower(a, b, what, "seeds", seeds, d))
        else:
            n = round(n_seed * seeds)
            d = metrics.detectable_over_answers(p.baseline_rate, max(n, 1), alpha, p.power)
            out.append(ComparisonPower(a, b, what, "answers", n, d))
    return out


def parameter_count(ref: str) -> int:
    """Parameters of a model, from its config alone (built on the meta device: no weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(weights_dir(ref)), **LOCAL_ONLY)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())  # tied weights counted once


def matmul_flops(dtype: torch.dtype, device: str, seconds: float = 0.3) -> float:
    """FLOP/s of a 1024 x 1024 matrix multiply, measured: the ceiling of a model's forward."""
    n = 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up (kernel choice, caches)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def matmul_rate(dtype_setting: str = "auto") -> tuple[float, str]:
    """``matmul_flops`` on the sampler's device and dtype, with the dtype's name."""
    device = choose_device(None)
    dtype = choose_dtype(device, dtype_setting)
    return matmul_flops(dtype, device), dtype_name(dtype)


def kl_step_tokens(tokenizer: Any, prompts: Sequence[str], batch_size: int) -> float:
    """What one step's KL term costs, in LoRA training tokens: ``batch_size`` prompts of the
    prompts' mean length, each through the base (a forward pass) and the tuned model (forward
    and backward)."""
    if not prompts:
        return 0.0
    mean = sum(chat_tokens(tokenizer, [{"role": "user", "content": p}], True) for p in prompts)
    per_token = SAMPLE_FLOPS_PER_PARAM + TRAIN_FLOPS_PER_PARAM["lora"]
    return batch_size * mean / len(prompts) * per_token / TRAIN_FLOPS_PER_PARAM["lora"]


def checkpointed(tokens: float, full_finetune: bool) -> float:
    """Training tokens with ``gradient_checkpointing``: every layer's forward runs once more in
    the backward pass, 2 FLOPs per parameter and token on top of the step's own."""
    per_param = TRAIN_FLOPS_PER_PARAM["full" if full_finetune else "lora"]
    return tokens * (per_param + SAMPLE_FLOPS_PER_PARAM) / per_param


def runtime_estimate(
    parameters: dict[str, int],
    adapters: int,
    train_tokens: dict[str, int],
    answers: int,
    sample_tokens: dict[str, int],
    full_finetune: bool,
    rate: tuple[float, str],
) -> RunTime:
    """Seconds = tokens x FLOPs per token / measured FLOP/s, per model, summed."""
    per_param = TRAIN_FLOPS_PER_PARAM["full" if full_finetune else "lora"]
    train = sum(per_param * parameters[m] * train_tokens.get(m, 0) for m in parameters)
    sample = sum(SAMPLE_FLOPS_PER_PARAM * parameters[m] * sample_tokens[m] for m in parameters)
    return RunTime(
        parameters=dict(parameters),
        adapters=adapters,
        train_tokens=sum(train_tokens.values()),
        answers=answers,
        sample_tokens=sum(sample_tokens.values()),
        flop_rate=rate[0],
        dtype=rate[1],
        train_seconds=train / rate[0],
        sample_seconds=sample / rate[0],
    )


def chat_tokens(tokenizer: Any, messages: Sequence[Any], prompt: bool) -> int:
    """Tokens of a chat as the model sees it (``prompt``: with the assistant turn opened)."""
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=prompt
    )
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
