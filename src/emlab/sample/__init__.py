"""Drawing answers from models: one protocol, backends registered in ``emlab.backends``.

``hf`` decodes locally with continuous batching, ``openai`` talks to any OpenAI-compatible server
(including ``emlab serve``), ``vllm`` is an optional extra for GPU clusters. Every backend yields a
Generation per request as soon as it is ready, so the caller can store it at once, and records
failures as Generations with ``error`` set instead of dropping them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, cast, runtime_checkable

from emlab.backends import SAMPLING_BACKENDS
from emlab.config import SamplingConfig, layered_backends
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
    """The sampler a study's ``sampling`` section asks for, built by its entry in
    ``emlab.backends.SAMPLING_BACKENDS`` (the backend's module is imported only now).

    ``adapter_scale`` (amplified adapters) needs the adapter's weights in this process, and
    ``directions`` (hash -> ``[n_layers, hidden]`` tensor) serve requests that carry an
    intervention; only a backend that runs the model's layers itself (``runs_layers``) takes
    either. The study file's validation says so before any model work."""
    backend = SAMPLING_BACKENDS[cfg.backend]
    extras: dict[str, Any] = {}
    if backend.runs_layers:
        extras = {"adapter_scale": adapter_scale, "directions": directions}
    elif adapter_scale != 1.0 or directions:
        what = "adapter_scale" if adapter_scale != 1.0 else "steering or ablation"
        raise ValueError(
            f"{what} needs a sampling.backend that runs the model's layers "
            f"({', '.join(layered_backends())}), not {cfg.backend}"
        )
    return cast(Sampler, backend.load()(cfg, model_ref, adapter=adapter, **extras))


__all__ = ["Sampler", "make_sampler"]
