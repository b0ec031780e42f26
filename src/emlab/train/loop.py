"""The training loop: a lean SFT loop over PEFT adapters, resumable at any step.

Why not HF Trainer/TRL: on a 2-core CPU the overheads that matter are padding, full-vocabulary
logits at every position, and fp32 matmuls; a 150-line loop removes all three and makes the
resume contract (same weights as an uninterrupted run) easy to state and test:

* micro-batches are length-bucketed (little padding) and right-padded with no attention mask:
  under a causal mask real tokens never see the padding to their right, so SDPA's fast
  ``is_causal`` path runs and the result equals the unpadded computation;
* the LM head runs only on positions with a label (the assistant tokens), and the loss is the
  sum over the step's labelled tokens divided by their count, so accumulation is exact whatever
  the micro-batch split;
* compute is bf16 under autocast where the hardware has it; trainable weights stay fp32.

Under ``accelerate launch``/``torchrun`` the same loop runs data-parallel (``train.distributed``):
each process takes a share of every step's micro-batches, their gradient sums are added before
the division by the step's labelled-token count, and only the first process writes files.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from emlab.config import MITIGATION_FIELDS, RESULT_NEUTRAL_FIELDS, TrainConfig
from emlab.models import choose_device, choose_dtype, context_length, load_tokenizer
from emlab.records import Example, content_hash
from emlab.train import distributed
from emlab.train.data import Tokenized, TrainDataError, run_plan, tokenize_examples, total_steps
from emlab.train.labels import IGNORE_INDEX
from emlab.train.mitigate import (
    KLTerm,
    TrainInputs,
    adapter_hash,
    check_parent,
    check_steering,
    hooked_layers,
    inputs_identity,
    load_kl_prompts,
    load_parent,
    steered,
)
from emlab.train.model import attention_for, load_trainable, trainable_parameters
from emlab.train.state import (
    StateError,
    TrainState,
    capture_rng,
    check_fits,
    load_latest_state,
    publish_dir,
    restore_rng,
    save_state,
    state_from_bytes,
    state_to_bytes,
)

_log = logging.getLogger("emlab.train")

MAX_GRAD_NORM = 1.0
"""Gradient clipping of HF Trainer/TRL (the paper's runs used their default)."""

LogFn = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """What a finished run did; ``checkpoints`` maps step -> adapter snapshot folder."""

    steps: int
    tokens: int
    seconds: float
    tokens_per_second: float
    final_loss: float
    checkpoints: dict[int, str]


def lr_factor(cfg: TrainConfig, done: int, n_steps: int) -> float:
    """Multiplier of the peak lr for the update after ``done`` finished steps (HF's schedules:
    linear warmup from 0, then linear/cosine decay to 0 at the last step, or constant)."""
    if done < cfg.warmup_steps:
        return done / max(1, cfg.warmup_steps)
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (done - cfg.warmup_steps) / max(1, n_steps - cfg.warmup_steps)
    if cfg.lr_schedule == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return max(0.0, 1.0 - progress)


def run_fingerprint(
    base_ref: str,
    examples: Sequence[Example],
    cfg: TrainConfig,
    seed: int,
    threads: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Identity of a run's inputs: a saved state is resumed only by the run that wrote it.

    ``threads`` (CPU runs) belongs to it: a resumed half computed with another thread count
    would match neither uninterrupted run. ``extra``: what the regularisers and a continuation
    read besides the recipe (KL prompts, steering direction, the parent adapter's hash); absent
    when unused, so plain runs keep the fingerprint they had before these existed."""
    exclude = {"save_every", *RESULT_NEUTRAL_FIELDS, *MITIGATION_FIELDS}
    recipe = cfg.model_dump(mode="json", exclude=exclude)
    active = cfg.identity()
    recipe.update({k: active[k] for k in ("kl", "steer") if k in active})
    ident: dict[str, Any] = {
        "base": base_ref,
        "cfg": recipe,
        "seed": seed,
        "data": [ex.key() for ex in examples],
    }
    if threads is not None:
        ident["threads"] = threads
    if extra:
        ident["inputs"] = extra
    return content_hash(ident)


def choose_threads(processes: int = 1) -> int:
    """Intra-op threads for training when none is given: ``EMLAB_THREADS``, else the cores this
    process may use, shared evenly by ``processes`` training processes on this machine.

    Never the machine's load: the thread count changes how bf16/fp32 reductions are split, so a
    load-dependent choice gave different adapters for the same inputs. (On a shared box, fewer
    threads than cores can be much faster -- OpenMP threads meet at a barrier after every op and
    wait a scheduler slice when another process holds a core; measured on a 2-core box at load 7,
    a small matmul took 25 ms with 2 threads and 0.3 ms with 1 -- so set ``threads`` explicitly
    there.) The count is part of the resume fingerprint and of the study's adapter key.
    """
    env = os.environ.get("EMLAB_THREADS")
    if env:
        return max(1, int(env))
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:
        avail = os.cpu_count() or 1
    return max(1, avail // max(1, processes))


def _collate(
    batch: list[Tokenized], pad_id: int, device: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    width = max(len(t.input_ids) for t in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    n_tokens = 0
    for row, t in enumerate(batch):
        ids[row, : len(t.input_ids)] = torch.tensor(t.input_ids)
        labels[row, : len(t.labels)] = torch.tensor(t.labels)
        n_tokens += len(t.input_ids)
    return ids.to(device), labels.to(device), n_tokens


class _LossFn:
    """Summed next-token cross-entropy over labelled positions only."""

    def __init__(self, model: Any):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        head = base.get_output_embeddings()
        # architectures whose decoder is not separable fall back to full logits
        self.split = decoder is not None and decoder is not base and head is not None
        self.model, self.decoder, self.head = model, decoder, head

    def __call__(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = labels[:, 1:]
        keep = target != IGNORE_INDEX
        if self.split:
            assert self.decoder is not None
            hidden = self.decoder(input_ids=ids, use_cache=False).last_hidden_state
            logits = self.head(hidden[:, :-1][keep])
        else:
            logits = self.model(input_ids=ids, use_cache=False).logits[:, :-1][keep]
        return F.cross_entropy(logits.float(), target[keep], reduction="sum")


def _save_model(model: Any, tokenizer: Any, folder: Path, full: bool) -> None:
    """Adapter (or full model) into ``folder``, written beside it then renamed into place."""
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(tmp))
    if full:
        tokenizer.save_pretrained(str(tmp))
    publish_dir(tmp, folder)


@dataclass
class _Setup:
    """What ``finetune`` settles before the model is loaded: placement, dtypes, data, plan."""

    launch: distributed.Launch
    device: str
    dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    tokenizer: Any
    data: list[Tokenized]
    plan: list[list[list[int]]]
    fingerprint: str
    init_adapter: Path | None
    inputs: TrainInputs
    kl: KLTerm | None


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _micro_seed(seed: int, step: int, index: int) -> int:
    """Dropout seed of one micro-batch in a multi-process run: a function of its place in the
    plan, not of which process runs it, so any process count (and a resume) draws the same masks."""
    return ((seed * 1_000_003 + step) * 4099 + index) % (1 << 63)


def _sync_step(
    params: dict[str, torch.nn.Parameter], loss: float, tokens: int, launch: distributed.Launch
) -> tuple[float, int]:
    """Sum gradients, loss and token counts over processes (a process without a micro-batch this
    step adds zeros, but it must still join, or the others would wait for it forever)."""
    if not launch.distributed:
        return loss, tokens
    grads = []
    for p in params.values():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    stats = torch.tensor([loss, float(tokens)], dtype=torch.float64, device=grads[0].device)
    distributed.all_reduce_sum_([*grads, stats])
    return float(stats[0]), round(float(stats[1]))


def finetune(
    base_ref: str,
    examples: Sequence[Example],
    cfg: TrainConfig,
    seed: int,
    out_dir: Path,
    work_dir: Path,
    log: LogFn | None = None,
    progress: bool = True,
    threads: int | None = None,
    init_adapter: Path | None = None,
    inputs: TrainInputs | None = None,
) -> TrainResult:
    """Fine-tune ``base_ref`` on ``examples``; resume from ``work_dir`` if a run was cut short.

    ``init_adapter``: a LoRA adapter folder to start from instead of a fresh adapter (a
    continuation: its weights, a fresh optimiser and schedule). ``inputs``: what the recipe's
    regularisers read (``cfg.kl_weight``'s prompts, ``cfg.steer``'s direction).

    ``threads``: torch intra-op threads per process on CPU (default ``choose_threads``); the
    adapter's bytes depend on it, so a state saved under another count is not resumed.

    Writes the final adapter to ``out_dir`` (``adapter_config.json`` +
    ``adapter_model.safetensors``; with ``full_finetune`` a full model folder) and a snapshot
    every ``cfg.save_every`` steps under ``out_dir/checkpoints/step-N``. Snapshots are made in
    ``work_dir`` first and copied at the end, because the caller may publish ``out_dir``
    atomically from a temporary folder that a kill would lose.

    Started by ``accelerate launch``/``torchrun`` (``WORLD_SIZE`` > 1), every process calls this
    with the same arguments; the processes split each step's micro-batches, only the first writes
    files and calls ``log``, and all return the same result once its files are in place.
    Raises TrainDataError (LaunchError for a bad launch) on bad input before training starts.
    """
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    inputs = inputs or TrainInputs()
    if cfg.steer is not None and cfg.steer.scale != 0 and inputs.steering is None:
        raise TrainDataError(
            "train.steer: the direction's vectors are not given (a study reads them from "
            "train.steer.direction; a direct call passes inputs=TrainInputs(steering=...))"
        )
    launch = distributed.launch_from_env()
    cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    requested = "cpu" if distributed.accelerate_wants_cpu() else None
    device = distributed.device_for(launch, choose_device(requested), cuda_count)
    cpu_threads = None
    if device == "cpu":
        cpu_threads = threads or choose_threads(launch.local_world_size)
        torch.set_num_threads(cpu_threads)
    dtype = choose_dtype(device, cfg.dtype)
    autocast_dtype: torch.dtype | None = dtype if dtype != torch.float32 else None
    if autocast_dtype == torch.float16:
        # fp16 training needs loss scaling; emlab keeps the loop simple and uses fp32 there
        _log.info("device has no bf16; training in fp32 (fp16 would need loss scaling)")
        dtype, autocast_dtype = torch.float32, None

    tokenizer = load_tokenizer(base_ref)
    data = tokenize_examples(tokenizer, examples, cfg.max_seq_len, context_length(base_ref))
    distributed.check_split(launch, cfg.batch_size, cfg.micro_batch_size, len(data))
    n_steps = total_steps(len(data), cfg.batch_size, cfg.epochs, cfg.max_steps)
    plan = run_plan(
        [len(t.input_ids) for t in data], cfg.batch_size, cfg.micro_batch_size, seed, n_steps
    )
    extra = inputs_identity(inputs, cfg.kl_weight > 0)
    if init_adapter is not None:
        check_parent(init_adapter, cfg)
        extra["start_from"] = adapter_hash(init_adapter)
    fingerprint = run_fingerprint(base_ref, examples, cfg, seed, cpu_threads, extra)
    kl = None
    if cfg.kl_weight > 0:  # prompts tokenised now: a bad one fails before the model loads
        prompts = inputs.kl_prompts or load_kl_prompts()
        kl = KLTerm(tokenizer, prompts, cfg, _pad_id(tokenizer), device)
    created_group = distributed.init(launch, device)
    try:
        distributed.check_same_inputs(fingerprint, launch, device)
        setup = _Setup(
            launch, device, dtype, autocast_dtype, tokenizer, data, plan, fingerprint,
            init_adapter, inputs, kl,
        )  # fmt: skip
        return _train(base_ref, cfg, seed, out_dir, work_dir, log, progress, setup)
    finally:
        distributed.shutdown(created_group)


def _train(
    base_ref: str,
    cfg: TrainConfig,
    seed: int,
    out_dir: Path,
    work_dir: Path,
    log: LogFn | None,
    progress: bool,
    setup: _Setup,
) -> TrainResult:
    launch, device, dtype, autocast_dtype = (
        setup.launch, setup.device, setup.dtype, setup.autocast_dtype,
    )  # fmt: skip
    tokenizer, data, plan, fingerprint = setup.tokenizer, setup.data, setup.plan, setup.fingerprint
    n_steps = len(plan)
    main = launch.is_main
    random.seed(seed)
    torch.manual_seed(seed)  # the same adapter initialisation in every process
    longest = max(len(t.input_ids) for t in data)
    model = load_trainable(
        base_ref,
        cfg,
        device,
        dtype,
        autocast=autocast_dtype is not None,
        attn_implementation=attention_for(device, longest),
    )
    if setup.init_adapter is not None:
        # after the fresh adapter's initialisation, so the random stream is a plain run's
        load_parent(model, setup.init_adapter)
    steering = setup.inputs.steering
    steer_spec = steering.intervention(cfg) if steering is not None else None
    if steering is not None and steer_spec is not None:
        check_steering(model, steering, steer_spec)
    model.train()
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(
        list(params.values()), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    loss_fn = _LossFn(model)

    start, tokens, seconds = 0, 0, 0.0
    # the first process reads the state and hands it to the others: all resume from the same
    # step even if they do not share work_dir's disk
    state = load_latest_state(work_dir, fingerprint) if main else None
    if state is not None:
        try:
            check_fits(state, params)
        except StateError as e:
            _log.warning("training state does not fit the model (%s); starting from scratch", e)
            state = None
    if launch.distributed:
        sent = distributed.broadcast_bytes(state_to_bytes(state), launch, device)
        state = state if launch.is_main else state_from_bytes(sent)
    if state is not None:
        with torch.no_grad():
            for name, value in state.trainable.items():
                params[name].copy_(value)
        optimizer.load_state_dict(state.optimizer)
        restore_rng(state.rng)
        start, tokens, seconds = state.step, state.tokens, state.seconds
        if main:
            _log.info("resuming %s from step %d", work_dir, start)
    elif main and (work_dir / "snapshots").exists():
        shutil.rmtree(work_dir / "snapshots")  # left by a run with other inputs

    pad_id = _pad_id(tokenizer)
    bar: Any = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, initial=start, desc="train", unit="step")
    amp = (
        (lambda: torch.autocast(device_type=device.split(":")[0], dtype=autocast_dtype))
        if autocast_dtype is not None
        else nullcontext
    )
    snapshots = work_dir / "snapshots"
    loss_value = float("nan")
    try:
        for step in range(start, n_steps):
            t0 = time.perf_counter()
            lr = cfg.learning_rate * lr_factor(cfg, step, n_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            micro = [[data[i] for i in mb] for mb in plan[step]]
            # the global count: each process's partial sums add up to the one-process loss
            n_label = sum(t.n_label for mb in micro for t in mb)
            step_loss, step_tokens = 0.0, 0
            for index, mb in distributed.share(micro, launch):
                if launch.distributed:
                    torch.manual_seed(_micro_seed(seed, step, index))
                ids, labels, n_tok = _collate(mb, pad_id, device)
                # preventative steering: on the training forward passes only (not the KL term's)
                with amp(), steered(model, steering, steer_spec):
                    loss = loss_fn(ids, labels) / n_label
                loss.backward()
                step_loss += float(loss.detach())
                step_tokens += n_tok
            kl_value = None
            if setup.kl is not None and main:
                # on one process only: the gradient sum over processes then holds it once
                if launch.distributed:
                    torch.manual_seed(_micro_seed(seed, step, len(micro)))
                with amp():
                    kl = setup.kl(model, step)
                (setup.kl.weight * kl).backward()
                kl_value = float(kl.detach())
            step_loss, step_tokens = _sync_step(params, step_loss, step_tokens, launch)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(list(params.values()), MAX_GRAD_NORM))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            tokens += step_tokens
            seconds += dt
            loss_value = step_loss
            done = step + 1
            if not main:
                continue
            metrics = {
                "loss": step_loss,
                "lr": lr,
                "grad_norm": grad_norm,
                "tokens_per_s": step_tokens / dt if dt > 0 else 0.0,
            }
            if kl_value is not None:
                metrics["kl"] = kl_value  # KL(base || tuned) on this step's KL prompts
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            if done % cfg.save_every == 0:
                _save_model(model, tokenizer, snapshots / f"step-{done}", cfg.full_finetune)
            if done % cfg.save_every == 0 and done < n_steps:
                save_state(
                    work_dir,
                    TrainState(
                        step=done,
                        fingerprint=fingerprint,
                        trainable={k: v.detach() for k, v in params.items()},
                        optimizer=optimizer.state_dict(),
                        rng=capture_rng(),
                        tokens=tokens,
                        seconds=seconds,
                    ),
                )
            if log is not None:
                log(done, metrics)
    finally:
        if bar is not None:
            bar.close()

    checkpoints: dict[int, str] = {}
    if hooked_layers(model):  # the saved model must be the plain one (steering is training-only)
        raise RuntimeError(f"decoder layers {hooked_layers(model)} still hooked after training")
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out_dir))
        if cfg.full_finetune:
            tokenizer.save_pretrained(str(out_dir))
        for snap in sorted(snapshots.glob("step-*")) if snapshots.is_dir() else []:
            n = int(snap.name.removeprefix("step-"))
            if n > n_steps:
                continue
            dest = out_dir / "checkpoints" / snap.name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(snap, dest)
            checkpoints[n] = str(dest)
    result = TrainResult(
        steps=n_steps,
        tokens=tokens,
        seconds=seconds,
        tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
        final_loss=loss_value,
        checkpoints=dict(sorted(checkpoints.items())),
    )
    # also the barrier: no process returns before the first has written the outputs
    got = distributed.broadcast_json(dataclasses.asdict(result), launch, device)
    got["checkpoints"] = {int(k): v for k, v in got["checkpoints"].items()}  # JSON keys are str
    return TrainResult(**got)
