"""Build the trainable model from a recipe, refusing recipes the model cannot honour.

PEFT silently accepts some mistakes (a rank larger than the layer just wastes parameters; a typo
in a module name may match nothing or only part of the model). Each is checked here, against the
loaded model, before any step runs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from emlab.config import TrainConfig
from emlab.models.loading import LOCAL_ONLY, weights_dir
from emlab.train.data import TrainDataError


def _linear_shapes(model: nn.Module) -> dict[str, list[tuple[str, int, int]]]:
    """Leaf name -> [(full name, in_features, out_features)] of every linear layer."""
    shapes: dict[str, list[tuple[str, int, int]]] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            shapes.setdefault(name.rsplit(".", 1)[-1], []).append(
                (name, mod.in_features, mod.out_features)
            )
    return shapes


def _num_layers(model: nn.Module) -> int | None:
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    return n if isinstance(n, int) else None


def validate_recipe(model: nn.Module, cfg: TrainConfig) -> None:
    """Raise TrainDataError for target modules, layers or ranks the model does not have."""
    if cfg.full_finetune:
        return
    shapes = _linear_shapes(model)
    missing = [t for t in cfg.target_modules if t not in shapes]
    if missing:
        raise TrainDataError(
            f"train.target_modules: {', '.join(missing)} not in the model; available linear "
            f"modules: {', '.join(sorted(shapes))}"
        )
    n_layers = _num_layers(model)
    if cfg.layers is not None:
        if not cfg.layers:
            raise TrainDataError("train.layers: empty list; omit it to adapt every layer")
        bad = [i for i in cfg.layers if n_layers is not None and not 0 <= i < n_layers]
        if bad:
            raise TrainDataError(
                f"train.layers: {bad} out of range; the model has layers 0..{(n_layers or 0) - 1}"
            )
    for t in cfg.target_modules:
        for name, fan_in, fan_out in shapes[t]:
            if cfg.r > min(fan_in, fan_out):
                raise TrainDataError(
                    f"train.r={cfg.r} is larger than layer {name} ({fan_in}->{fan_out}) allows "
                    f"(at most {min(fan_in, fan_out)})"
                )


EAGER_MAX_LEN = 512
"""On CPU, eager attention beats SDPA's flash kernel by ~8% at ~250 tokens (measured on
SmolLM2-135M, bf16), but stores B·H·L² probabilities per layer, so it is used only up to here."""


def attention_for(device: str, longest: int) -> str:
    return "eager" if device == "cpu" and longest <= EAGER_MAX_LEN else "sdpa"


def load_trainable(
    base_ref: str,
    cfg: TrainConfig,
    device: str,
    dtype: torch.dtype,
    autocast: bool = False,
    attn_implementation: str = "sdpa",
) -> Any:
    """The base model with a fresh adapter (or all weights trainable for full fine-tuning).

    LoRA: frozen base weights in the compute dtype (half the memory and the fast bf16 kernels),
    adapter weights in fp32 so that lr-1e-5 updates are not rounded away; autocast runs their
    matmuls in bf16. Full fine-tuning keeps fp32 master weights for the same reason.
    Call ``torch.manual_seed`` first: the adapter's initialisation draws from it.
    """
    from transformers import AutoModelForCausalLM

    load_dtype = torch.float32 if cfg.full_finetune else dtype
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(weights_dir(base_ref)),
        dtype=load_dtype,
        attn_implementation=attn_implementation,
        use_safetensors=True,  # never the pickled *.bin fallback (weights_dir refuses those)
        **LOCAL_ONLY,
    )
    model.config.use_cache = False
    validate_recipe(model, cfg)
    if cfg.full_finetune:
        model.requires_grad_(True)
        return _checkpointing(model, cfg).to(device)
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,  # type: ignore[arg-type]  # PEFT takes any number
        lora_dropout=cfg.dropout,
        use_rslora=cfg.use_rslora,
        target_modules=list(cfg.target_modules),
        layers_to_transform=list(cfg.layers) if cfg.layers is not None else None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora, autocast_adapter_dtype=True)
    if autocast:
        from peft.tuners.tuners_utils import BaseTunerLayer

        # PEFT casts each adapter input up to the adapter's fp32 and autocast casts it back:
        # two copies of every activation per adapted layer, for nothing (~10% of a step on CPU)
        for mod in peft_model.modules():
            if isinstance(mod, BaseTunerLayer):
                setattr(mod, "cast_input_dtype_enabled", False)  # noqa: B010
    n_adapted = sum(1 for n, _ in peft_model.named_modules() if n.endswith("lora_A"))
    if n_adapted == 0:
        raise TrainDataError(
            "train.target_modules/layers: the recipe adapts no layer of this model "
            "(do the layer indices exist under a `layers` module?)"
        )
    return _checkpointing(peft_model, cfg).to(device)


def _checkpointing(model: Any, cfg: TrainConfig) -> Any:
    """Turn on ``cfg.gradient_checkpointing``. Non-reentrant: it recomputes under the same
    autocast state, and gradients reach the layers above a frozen embedding without hooks."""
    if cfg.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return model


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def model_context(model: nn.Module) -> int | None:
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return n if isinstance(n, int) else None
