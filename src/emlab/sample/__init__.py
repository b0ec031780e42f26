"""Drawing answers from models: one protocol, three backends.

``hf`` decodes locally with continuous batching, ``openai`` talks to any OpenAI-compatible server
(including ``emlab serve``), ``vllm`` is an optional extra for GPU clusters. Every backend yields a
Generation per request as soon as it is ready, so the caller can store it at once, and records
failures as Generations with ``error`` set instead of dropping them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from emlab.config import SamplingConfig
from emlab.records import Generation, GenerationRequest


@runtime_checkable
class Sampler(Protocol):
    def sample(self, requests: Sequence[GenerationRequest]) -> Iterator[Generation]:
        """One Generation per request, yielded as it finishes (any order)."""
        ...

    def close(self) -> None:
        """Free the model or connections."""
        ...


def make_sampler(
    cfg: SamplingConfig,
    model_ref: str,
    adapter: str | None = None,
    adapter_scale: float = 1.0,
    directions: Mapping[str, Any] | None = None,
) -> Sampler:
    """The sampler a study's ``sampling`` section asks for (backends import lazily).

    ``adapter_scale`` (amplified adapters) needs the adapter's weights in this process, and
    ``directions`` (hash -> ``[n_layers, hidden]`` tensor) serve requests that carry an
    intervention; only the hf backend takes either (it runs the model's layers itself). The
    study file's validation says so before any model work."""
    if adapter_scale != 1.0 and cfg.backend != "hf":
        raise ValueError(f"adapter_scale needs sampling.backend hf, not {cfg.backend}")
    if directions and cfg.backend != "hf":
        raise ValueError(
            f"sampling.backend {cfg.backend!r} cannot steer or ablate; interventions need `hf`"
        )
    if cfg.backend == "hf":
        from emlab.sample.hf import HFSampler

        return HFSampler(
            model_ref,
            adapter=adapter,
            batch_size=cfg.batch_size,
            dtype=cfg.dtype,
            processes=cfg.processes,
            adapter_scale=adapter_scale,
            directions=directions,
        )
    if cfg.backend == "openai":
        from emlab.sample.openai import OpenAISampler

        return OpenAISampler.from_config(cfg, model_ref, adapter=adapter)
    if cfg.backend == "vllm":
        from emlab.sample.vllm import VLLMSampler

        return VLLMSampler(model_ref, adapter=adapter, max_batch=cfg.batch_size)
    raise ValueError(f"unknown sampling backend {cfg.backend!r}")


__all__ = ["Sampler", "make_sampler"]
