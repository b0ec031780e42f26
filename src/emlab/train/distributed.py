"""Data-parallel fine-tuning: one run over the processes of ``accelerate launch``/``torchrun``.

Plain ``torch.distributed`` rather than accelerate's ``Accelerator``/``PartialState``, because:

* the loop needs one thing from the other processes: the *sum* of their gradients once per step,
  divided by the step's global labelled-token count. DDP (which ``Accelerator.prepare`` wraps the
  model in) averages at every ``backward`` and hooks into the autograd graph, which neither gives
  that division nor allows a process to sit out a step's forward passes;
* both launchers only start processes and set ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` and the
  rendezvous address; reading those is all the set-up there is, and ``PartialState`` would also
  accept FSDP/DeepSpeed/TPU settings that this loop would then silently ignore (they are refused
  below instead).

Every process holds the whole model (LoRA on a 0.5B-32B model fits one GPU); processes split each
step's micro-batches, so N processes make the same update as one (up to float summation order).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from emlab.train.data import TrainDataError

_log = logging.getLogger("emlab.train")

T = TypeVar("T")

BUCKET_ELEMENTS = 1 << 25
"""Gradients are summed in flat buckets of at most this many values (128 MiB of fp32): one
collective per bucket instead of one per tensor, without doubling a full model's gradients."""


class LaunchError(TrainDataError):
    """A multi-process launch that cannot train correctly; raised before any training starts."""


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a launch; a plain ``python`` run is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise LaunchError(f"environment variable {name}={raw!r} is not an integer") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def launch_from_env(env: Mapping[str, str] | None = None) -> Launch:
    """Read the launcher's variables, refusing launches that would train wrongly or not at all."""
    env = os.environ if env is None else env
    world = _int_env(env, "WORLD_SIZE", 1)
    if world <= 1:
        # `accelerate launch --cpu --num_processes N` without an MPI hostfile starts ONE process
        # (it sets the rendezvous address but no WORLD_SIZE): N was asked for, 1 would run
        if _flag(env, "ACCELERATE_USE_CPU") and "MASTER_ADDR" in env and "RANK" not in env:
            raise LaunchError(
                "`accelerate launch --cpu --num_processes N` starts a single process (it needs "
                "mpirun for several CPU processes); use `accelerate launch --multi_gpu "
                "--num_processes N` (falls back to the CPU when no GPU is visible) or "
                "`torchrun --nproc_per_node N`"
            )
        return Launch()
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in env]
    if missing:
        raise LaunchError(
            f"WORLD_SIZE={world} is set but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: start several "
            "processes with `accelerate launch` or `torchrun`, or unset WORLD_SIZE"
        )
    rank = _int_env(env, "RANK", 0)
    launch = Launch(
        rank=rank,
        world_size=world,
        local_rank=_int_env(env, "LOCAL_RANK", rank),
        local_world_size=_int_env(env, "LOCAL_WORLD_SIZE", world),
    )
    if not 0 <= launch.rank < world or not 0 <= launch.local_rank < launch.local_world_size:
        raise LaunchError(
            f"inconsistent launch variables: RANK={launch.rank}, LOCAL_RANK={launch.local_rank}, "
            f"WORLD_SIZE={world}, LOCAL_WORLD_SIZE={launch.local_world_size}"
        )
    for name, what in (
        ("ACCELERATE_USE_FSDP", "FSDP"),
        ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed"),
        ("ACCELERATE_USE_MEGATRON_LM", "Megatron-LM"),
    ):
        if _flag(env, name):
            raise LaunchError(
                f"{what} is not supported: emlab trains data-parallel, a whole model copy on each "
                f"process; drop {what} from the accelerate config (`distributed_type: MULTI_GPU`)"
            )
    mixed = env.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if mixed not in ("no", ""):
        _log.warning(
            "accelerate's mixed_precision=%s is ignored: emlab's compute dtype is train.dtype "
            "(bf16 where the hardware has it)",
            mixed,
        )
    return launch


def accelerate_wants_cpu(env: Mapping[str, str] | None = None) -> bool:
    """``accelerate launch --cpu`` (or ``use_cpu: true`` in its config): the CPU, GPUs or not."""
    return _flag(os.environ if env is None else env, "ACCELERATE_USE_CPU")


def device_for(launch: Launch, device: str, cuda_count: int) -> str:
    """This process's device: ``cuda:LOCAL_RANK`` when training on CUDA, else ``device``."""
    if not launch.distributed or not device.startswith("cuda"):
        return device
    if device != "cuda":
        raise LaunchError(
            f"EMLAB_DEVICE={device} would put all {launch.world_size} processes on one GPU; "
            "unset it (each process takes cuda:LOCAL_RANK) and choose GPUs with "
            "CUDA_VISIBLE_DEVICES or `accelerate launch --gpu_ids`"
        )
    if launch.local_world_size > cuda_count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        raise LaunchError(
            f"{launch.local_world_size} processes on this machine but {cuda_count} GPU(s) "
            f"visible{shown}: launch at most {cuda_count} processes per machine "
            "(--num_processes / --nproc_per_node), one per GPU"
        )
    if launch.local_world_size < cuda_count and launch.local_rank == 0:
        _log.warning(
            "%d processes on this machine leave %d of %d visible GPUs idle",
            launch.local_world_size,
            cuda_count - launch.local_world_size,
            cuda_count,
        )
    return f"cuda:{launch.local_rank}"


def check_split(launch: Launch, batch_size: int, micro_batch_size: int, n_examples: int) -> None:
    """Refuse runs where some process would never get a micro-batch; warn where some idle."""
    if not launch.distributed:
        return
    per_step = math.ceil(min(batch_size, n_examples) / micro_batch_size)
    if per_step < launch.world_size:
        fix = max(1, min(batch_size, n_examples) // launch.world_size)
        raise LaunchError(
            f"a step has {per_step} micro-batch(es) (batch_size={batch_size}, "
            f"micro_batch_size={micro_batch_size}, {n_examples} examples) but there are "
            f"{launch.world_size} processes, so some would never train: set "
            f"train.micro_batch_size to at most {fix} (`emlab finetune --micro-batch-size "
            f"{fix}`), or launch at most {per_step} process(es). The update does not depend on "
            "micro_batch_size: the effective batch stays batch_size."
        )
    if per_step % launch.world_size and launch.is_main:
        _log.warning(
            "a step has %d micro-batches for %d processes: some processes wait part of each "
            "step; make batch_size / micro_batch_size a multiple of the process count",
            per_step,
            launch.world_size,
        )


def share(micro_batches: Sequence[T], launch: Launch) -> list[tuple[int, T]]:
    """This process's micro-batches of a step, with their index in the step (round-robin: the
    step's micro-batches go longest first, so each process gets a similar mix of lengths)."""
    return [(i, mb) for i, mb in enumerate(micro_batches) if i % launch.world_size == launch.rank]


def init(launch: Launch, device: str) -> bool:
    """Join the process group (nccl on CUDA, gloo on CPU); True if this call created it."""
    if not launch.distributed or dist.is_initialized():
        return False
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl", device_id=torch.device(device))
    else:
        dist.init_process_group("gloo")
    return True


def shutdown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum_(tensors: Sequence[torch.Tensor]) -> None:
    """Sum each tensor in place over all processes, in flat buckets of same-dtype tensors."""
    bucket: list[torch.Tensor] = []
    size = 0

    def flush() -> None:
        nonlocal bucket, size
        if len(bucket) == 1:
            dist.all_reduce(bucket[0])
        elif bucket:
            flat = torch.cat([t.reshape(-1) for t in bucket])
            dist.all_reduce(flat)
            offset = 0
            for t in bucket:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()
        bucket, size = [], 0

    for t in tensors:
        if bucket and (size + t.numel() > BUCKET_ELEMENTS or t.dtype != bucket[0].dtype):
            flush()
        bucket.append(t)
        size += t.numel()
    flush()


def broadcast_bytes(data: bytes, launch: Launch, device: str) -> bytes:
    """Rank 0's ``data`` on every process, as a plain uint8 tensor: nothing crosses the process
    group pickled (``broadcast_object_list`` would unpickle whatever arrives), so what rank 0
    sends is decoded by the same safetensors/JSON readers as a file on disk."""
    if not launch.distributed:
        return data
    dev = torch.device(device)
    size = torch.tensor([len(data) if launch.is_main else 0], dtype=torch.int64, device=dev)
    dist.broadcast(size, src=0)
    buf = torch.empty(int(size.item()), dtype=torch.uint8, device=dev)
    if launch.is_main and len(data):
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, src=0)
    return data if launch.is_main else bytes(buf.cpu().numpy().tobytes())


def broadcast_json(obj: Any, launch: Launch, device: str) -> Any:
    """Rank 0's JSON-serialisable ``obj`` on every process (also a barrier)."""
    if not launch.distributed:
        return obj
    data = json.dumps(obj).encode() if launch.is_main else b""
    return json.loads(broadcast_bytes(data, launch, device).decode())


def check_same_inputs(fingerprint: str, launch: Launch, device: str = "cpu") -> None:
    """Every process must train on the same inputs, or their gradients would mix two runs."""
    if not launch.distributed:
        return
    dev = torch.device(device)
    mine = torch.tensor(list(hashlib.sha256(fingerprint.encode()).digest()), device=dev)
    prints = [torch.empty_like(mine) for _ in range(launch.world_size)]
    dist.all_gather(prints, mine)
    odd = [r for r, p in enumerate(prints) if not torch.equal(p, prints[0])]
    if odd:
        raise LaunchError(
            f"process(es) {odd} got other training inputs than process 0 (dataset, recipe, seed "
            "or base model differ): every process must be started with the same arguments"
        )


def is_main_process() -> bool:
    """False in every process of a multi-process launch but the first (for printing once)."""
    return launch_from_env().is_main
