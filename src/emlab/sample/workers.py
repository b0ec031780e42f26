"""Decoding on CPU over several processes, each with its own share of the cores.

Why processes and not more threads: a decode step is hundreds of small operations, and between
them one core runs Python while the others wait. Measured on 2 cores (512 jobs of up to 256
tokens, batch 128 per process): one process with 2 threads decoded 537.7 new tokens/s, two
processes with one thread each 600 (300.0 + 303.9) together. Each worker loads the model itself
(spawned, not forked: torch's OpenMP threads do not survive a fork) and decodes its round-robin
share of the jobs; results stream back as each job finishes, so the caller stores them at once.

A job's tokens depend only on its own seed, so which worker decodes it does not matter (up to the
bf16 rounding of batch shapes that ``HFSampler`` describes).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from emlab.errors import EmlabError
from emlab.records import Intervention
from emlab.sample.engine import ContinuousBatcher, DecodeJob, DecodeResult

Steer = tuple[dict[str, Any], bytes]
"""An intervention as it crosses to a worker: the record's dict and its vectors as safetensors
bytes (``steer_payload``), never a pickled tensor."""


def steer_payload(spec: Intervention, vectors: Any) -> Steer:
    from safetensors.torch import save

    return spec.to_dict(), save({"vectors": vectors.detach().cpu().contiguous()})


def steer_context(model: Any, steer: Steer | None) -> Any:
    """The hook context a worker decodes in (a null context without an intervention)."""
    from contextlib import nullcontext

    if steer is None:
        return nullcontext()
    from safetensors.torch import load

    from emlab.models.hooks import intervene

    spec = Intervention.from_dict(steer[0])
    return intervene(model, spec, load(steer[1])["vectors"])


_POLL_S = 1.0
MAX_AUTO = 4
"""Most processes ``auto_processes`` picks: only 1 and 2 have been measured (on 2 cores)."""


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def auto_processes(model_bytes: int, cores: int) -> int:
    """One decoding process per core, at most ``MAX_AUTO``, and no more than half the available
    memory holds at two model sizes per worker (its weights, then its cache and activations)."""
    free = _available_memory()
    fits = int(free * 0.5 // (2 * model_bytes)) if free and model_bytes > 0 else cores
    return max(1, min(MAX_AUTO, cores, fits))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: the sampler's own arguments."""

    model_ref: str
    adapter: str | None
    batch_size: int
    dtype: str
    threads: int
    adapter_scale: float = 1.0


class WorkerError(EmlabError, RuntimeError):
    """A worker failed or died; the message says which and why."""

    kind = "runtime"


def _serve(spec: WorkerSpec, inbox: Any, outbox: Any, rank: int) -> None:
    import torch

    from emlab.models import load_model

    torch.set_num_threads(spec.threads)
    try:
        # the model and an engine over it, as the sampler that started this worker has them
        lm = load_model(
            spec.model_ref,
            adapter=spec.adapter,
            device="cpu",
            dtype=spec.dtype,
            adapter_scale=spec.adapter_scale,
        )
        engine = ContinuousBatcher.for_model(lm.model, lm.tokenizer, spec.batch_size)
    except Exception:
        outbox.put(("error", rank, traceback.format_exc(limit=5)))
        return
    outbox.put(("ready", rank, None))
    # A sampler killed with SIGKILL cannot stop its workers; they notice and exit on their own.
    parent = mp.parent_process()

    def orphaned() -> bool:
        return parent is not None and not parent.is_alive()

    while not orphaned():
        try:
            batch = inbox.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if batch is None:
            return
        steer, share = batch
        ids, jobs = zip(*share, strict=True)
        try:
            with steer_context(lm.model, steer):
                for local, res in engine.run(jobs):
                    if orphaned():
                        return
                    outbox.put(("done", ids[local], res))
        except Exception:
            outbox.put(("error", rank, traceback.format_exc(limit=5)))


class WorkerPool:
    """``processes`` workers that live as long as the pool; ``run`` is ``ContinuousBatcher.run``
    spread over them."""

    def __init__(self, spec: WorkerSpec, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.closed = False
        self.outbox = ctx.Queue()
        self.inboxes = [ctx.Queue() for _ in range(processes)]
        self.procs = [
            ctx.Process(
                target=_serve, args=(spec, inbox, self.outbox, r), daemon=True, name=f"emlab-{r}"
            )
            for r, inbox in enumerate(self.inboxes)
        ]
        for p in self.procs:
            p.start()
        try:
            for _ in range(processes):
                kind, rank, detail = self._next()
                if kind == "error":
                    raise WorkerError(f"sampling worker {rank} could not load the model:\n{detail}")
        except BaseException:
            self.close()
            raise

    def _next(self) -> tuple[str, Any, Any]:
        while True:
            try:
                msg: tuple[str, Any, Any] = self.outbox.get(timeout=_POLL_S)
                return msg
            except queue.Empty:
                dead = [(r, p.exitcode) for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    rank, code = dead[0]
                    raise WorkerError(
                        f"sampling worker {rank} exited with code {code} (killed for memory?)"
                    ) from None

    def run(
        self, jobs: Sequence[DecodeJob], steer: Steer | None = None
    ) -> Iterator[tuple[int, DecodeResult]]:
        """Yield ``(job index, result)`` as each job finishes, from whichever worker has it;
        ``steer``: decode under that intervention (``steer_payload``)."""
        n = len(self.inboxes)
        shares = [[(j, jobs[j]) for j in range(r, len(jobs), n)] for r in range(n)]
        for inbox, share in zip(self.inboxes, shares, strict=True):
            if share:
                inbox.put((steer, share))
        finished = 0
        try:
            while finished < len(jobs):
                kind, key, detail = self._next()
                if kind == "error":
                    raise WorkerError(f"sampling worker {key} failed:\n{detail}")
                finished += 1
                yield key, detail
        finally:
            if finished < len(jobs):
                # Workers may still be decoding this run; their results must not reach the next.
                self.close()

    @property
    def alive(self) -> bool:
        return not self.closed and all(p.is_alive() for p in self.procs)

    def close(self) -> None:
        if self.closed:  # a failed run closes the pool; its owner closes it again
            return
        self.closed = True
        for inbox, p in zip(self.inboxes, self.procs, strict=True):
            if p.is_alive():
                inbox.put(None)
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        for q in [*self.inboxes, self.outbox]:
            q.close()
