"""Local sampling with transformers: continuous batching over the model's own forward.

This is where a study spends most of its compute (EM is a rate, so each question is sampled many
times at temperature 1); see ``engine.py`` for why it does not call ``model.generate``.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from emlab.config import SamplingConfig
from emlab.models import LoadedModel, load_model
from emlab.models.hooks import intervene
from emlab.records import Generation, GenerationRequest, Intervention, Message
from emlab.sample.chat import encode_chat, request_seed
from emlab.sample.engine import ContinuousBatcher, DecodeJob, DecodeResult
from emlab.sample.workers import WorkerPool, WorkerSpec, auto_processes, steer_payload


class HFSampler:
    """Sampler over a local transformers model (CPU or GPU), bf16 where the hardware has it.

    Determinism: each request's draws come from its own seed (see ``request_seed``), so the same
    request gives the same answer in any batch *up to floating-point differences between batch
    shapes*: on bf16 hardware a different batch can shift a logit by a rounding step and, rarely,
    flip a draw that falls on a boundary. In fp32 answers are stable across batch compositions in
    practice (the unit tests check greedy and seeded sampling).
    """

    def __init__(
        self,
        model_ref: str,
        adapter: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        dtype: str = "auto",
        loaded: LoadedModel | None = None,
        processes: int = 1,
        adapter_scale: float = 1.0,
        directions: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """``processes`` > 1 (CPU only): large runs decode in that many worker processes, each
        with an equal share of torch's threads (see ``workers.py``); 0 picks one per core within
        the memory (``auto_processes``). ``loaded`` must be the model that ``model_ref`` and
        ``adapter`` name, since workers load it again. ``adapter_scale`` multiplies the adapter's
        update (``emlab.models.scale_adapter``), in the workers too. ``directions``: the vectors
        ``[n_layers, hidden]`` that requests' interventions name, by their hash."""
        self.directions = dict(directions or {})
        self.lm = loaded or load_model(
            model_ref, adapter=adapter, device=device, dtype=dtype, adapter_scale=adapter_scale
        )
        self.tokenizer = self.lm.tokenizer
        self.engine = ContinuousBatcher.for_model(self.lm.model, self.tokenizer, batch_size)
        self.stop_ids = sorted(self.engine.stop_ids)
        self.max_positions = int(getattr(self.lm.model.config, "max_position_embeddings", 0) or 0)
        self.batch_size = batch_size
        cores = torch.get_num_threads()
        if processes == 0:
            size = sum(p.numel() * p.element_size() for p in self.lm.model.parameters())
            processes = auto_processes(size, cores)
        self.processes = processes if str(self.lm.device).startswith("cpu") else 1
        threads = max(1, cores // self.processes)
        self._spec = WorkerSpec(model_ref, adapter, batch_size, dtype, threads, adapter_scale)
        self._pool: WorkerPool | None = None

    @classmethod
    def from_config(
        cls,
        cfg: SamplingConfig,
        model_ref: str,
        adapter: str | None = None,
        adapter_scale: float = 1.0,
        directions: Mapping[str, torch.Tensor] | None = None,
    ) -> HFSampler:
        """The factory of the ``hf`` entry in ``emlab.backends.SAMPLING_BACKENDS``."""
        return cls(
            model_ref,
            adapter=adapter,
            batch_size=cfg.batch_size,
            dtype=cfg.dtype,
            processes=cfg.processes,
            adapter_scale=adapter_scale,
            directions=directions,
        )

    def job(self, messages: Sequence[Message], **kw: Any) -> DecodeJob:
        """A decode job for a chat; raises ValueError when it cannot fit the model's context."""
        prompt = encode_chat(self.tokenizer, messages)
        job = DecodeJob(prompt=prompt, **kw)
        if job.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {job.max_new_tokens}")
        if self.max_positions and len(prompt) + job.max_new_tokens > self.max_positions:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + max_new_tokens ({job.max_new_tokens}) exceeds "
                f"the model's context of {self.max_positions} positions"
            )
        return job

    def decode(self, tokens: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(tokens), skip_special_tokens=True))

    def decode_token(self, token: int) -> str:
        """One token's text, special tokens included (for logprob listings)."""
        return str(self.tokenizer.decode([token]))

    def _generation(self, req: GenerationRequest, res: DecodeResult) -> Generation:
        return req.answered(self.decode(res.tokens), res.n_tokens, res.finish_reason)

    def sample(self, requests: Sequence[GenerationRequest]) -> Iterator[Generation]:
        """Yield one Generation per request as each finishes; failures become error records."""
        groups: dict[Intervention | None, list[int]] = {}
        for i, req in enumerate(requests):
            if req.intervention is not None and req.intervention.direction not in self.directions:
                yield req.failed(f"no vectors given for direction {req.intervention.direction}")
                continue
            groups.setdefault(req.intervention, []).append(i)
        # One decode run per intervention: hooks act on the whole batch, so rows of different
        # interventions cannot share one.
        for spec, members in groups.items():
            yield from self._sample_group([requests[i] for i in members], spec)

    def _sample_group(
        self, requests: Sequence[GenerationRequest], spec: Intervention | None
    ) -> Iterator[Generation]:
        jobs: list[DecodeJob] = []
        owners: list[int] = []
        for i, req in enumerate(requests):
            try:
                jobs.append(
                    self.job(
                        req.question.messages,
                        max_new_tokens=req.params.max_new_tokens,
                        temperature=req.params.temperature,
                        top_p=req.params.top_p,
                        seed=request_seed(req),
                    )
                )
                owners.append(i)
            except Exception as e:
                yield req.failed(f"{type(e).__name__}: {e}")
        done: set[int] = set()
        try:
            for j, res in self._decode(jobs, spec):
                done.add(j)
                yield self._generation(requests[owners[j]], res)
        except Exception as e:
            # A failed forward (e.g. out of memory) loses the batch, never the records.
            err = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
            for j, owner in enumerate(owners):
                if j not in done:
                    yield requests[owner].failed(err)

    def _decode(
        self, jobs: Sequence[DecodeJob], spec: Intervention | None = None
    ) -> Iterator[tuple[int, DecodeResult]]:
        # Workers pay a start-up (a process and a model load each) that only runs of at least
        # a full batch per worker win back.
        if self.processes < 2 or len(jobs) < self.processes * self.batch_size:
            hooks = nullcontext() if spec is None else self._hooks(spec)
            with hooks:  # the engine calls the model's own layers, so their hooks fire
                yield from self.engine.run(jobs)
            return
        if self._pool is None or not self._pool.alive:
            self._pool = WorkerPool(self._spec, self.processes)
        steer = None if spec is None else steer_payload(spec, self.directions[spec.direction])
        yield from self._pool.run(jobs, steer)

    def _hooks(self, spec: Intervention) -> Any:
        return intervene(self.lm.model, spec, self.directions[spec.direction])

    def close(self) -> None:
        """Drop the model (and stop any workers) so that memory is freed before the next stage
        loads another."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self.engine.model = None
        self.lm.model = None
