"""Forward hooks on the residual stream (decoder-layer outputs) of HF and PEFT causal LMs.

Shared by the sampler (steering and ablation while decoding) and the interp stage (activation
capture), so it lives with the models rather than in either stage. Every hook is registered in a
context manager and removed on exit, even on error: the model is unchanged afterwards (the tests
check outputs are bit-identical).

The residual stream after decoder layer ``l`` is that layer's output; transformers 5 returns the
hidden states as a tensor, older versions a tuple whose first item is it. Both are handled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from emlab.records import Intervention

Edit = Callable[[int, torch.Tensor], torch.Tensor | None]
"""``(layer, hidden [batch, seq, hidden]) -> replacement or None`` (None: leave it as is)."""

_LAYER_PATHS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers")


def _base(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (hooks go on the same modules either way)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    """The decoder layers of a causal LM, in order (Llama-, GPT-2-, NeoX- and OPT-style)."""
    base = _base(model)
    for path in _LAYER_PATHS:
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList) and len(obj):
            return list(obj)
    raise ValueError(f"cannot find the decoder layers of {type(base).__name__}")


def n_layers(model: Any) -> int:
    return len(decoder_layers(model))


def hidden_size(model: Any) -> int:
    return int(_base(model).config.hidden_size)


@contextmanager
def residual_hooks(model: Any, layers: Sequence[int], edit: Edit) -> Iterator[None]:
    """Call ``edit`` on the residual stream after each of ``layers``; hooks removed on exit."""
    mods = decoder_layers(model)
    bad = [layer for layer in layers if not 0 <= layer < len(mods)]
    if bad:
        raise ValueError(
            f"layers {bad} out of range: the model has {len(mods)} (0..{len(mods) - 1})"
        )
    handles = []

    def make(layer: int) -> Callable[..., Any]:
        def hook(_mod: Any, _inp: Any, out: Any) -> Any:
            hidden = out[0] if isinstance(out, tuple) else out
            new = edit(layer, hidden)
            if new is None:
                return None
            return (new, *out[1:]) if isinstance(out, tuple) else new

        return hook

    try:
        for layer in sorted(set(layers)):
            handles.append(mods[layer].register_forward_hook(make(layer)))
        yield
    finally:
        for h in handles:
            h.remove()


def _add(v: torch.Tensor, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    step = scale * v

    def edit(h: torch.Tensor) -> torch.Tensor:
        return h + step

    return edit


def _ablate(v: torch.Tensor, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    # Projection in fp32: in bf16 the component left behind is a rounding step of |h|, which is
    # as large as what a direction's projection usually is.
    u = (v.float() / v.float().norm()).to(v.device)

    def edit(h: torch.Tensor) -> torch.Tensor:
        hf = h.float()
        return (hf - (hf @ u)[..., None] * u).to(h.dtype)

    return edit


EDITS: dict[str, Callable[[torch.Tensor, float], Callable[[torch.Tensor], torch.Tensor]]] = {
    "add": _add,
    "ablate": _ablate,
}
"""Intervention modes: ``add`` puts ``scale * v[layer]`` into the stream; ``ablate`` removes the
stream's component along ``v[layer]`` (scale unused)."""


@contextmanager
def intervene(model: Any, spec: Intervention, vectors: torch.Tensor) -> Iterator[None]:
    """Apply ``spec`` with per-layer vectors ``[n_layers, hidden]`` while the context is open.

    ``vectors[l]`` is the direction at layer ``l`` already in residual units (emlab's directions
    store the unit direction times the layer's mean residual norm, so ``scale`` reads as a
    fraction of the typical residual norm).
    """
    n, h = n_layers(model), hidden_size(model)
    if tuple(vectors.shape) != (n, h):
        raise ValueError(
            f"direction has shape {tuple(vectors.shape)}, the model needs ({n}, {h}): "
            "it comes from another model"
        )
    param = next(model.parameters())
    dtype = getattr(model, "dtype", None) or param.dtype
    make = EDITS[spec.mode]
    bad = [layer for layer in spec.layers_of(n) if not 0 <= layer < n]
    if bad:
        raise ValueError(f"layers {bad} out of range: the model has {n} decoder layers")
    per_layer = {
        layer: make(vectors[layer].to(device=param.device, dtype=dtype), spec.scale)
        for layer in spec.layers_of(n)
    }

    def edit(layer: int, hidden: torch.Tensor) -> torch.Tensor:
        return per_layer[layer](hidden)

    with residual_hooks(model, list(per_layer), edit):
        yield
