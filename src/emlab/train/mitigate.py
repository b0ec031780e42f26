"""Training-time mitigations: KL toward the base model, preventative steering, continuation.

Each is off by default and, when off, leaves the training loop's arithmetic untouched (no extra
forward pass, no extra random draw), so a recipe that does not use them trains the same bytes as
before they existed. The loop (``train.loop``) calls in here; nothing here imports another stage:
a steering direction arrives as a tensor (``study.py`` reads it with the interp stage's loader).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml

from emlab.config import MAX_TEXT, TrainConfig
from emlab.models.hooks import decoder_layers, hidden_size, intervene, n_layers
from emlab.records import Intervention
from emlab.train.data import TrainDataError

KL_PROMPTS_FILE = "kl_prompts.yaml"
MAX_KL_PROMPTS = 100_000
"""Prompts in a KL set: a few dozen are enough; the bound stops a runaway file."""


@dataclass(frozen=True)
class Steering:
    """The direction of ``train.steer``, read by the caller (the interp stage's file format).

    ``vectors`` is ``[n_layers, hidden]`` in residual units (unit direction x the layer's mean
    residual norm, as the interp stage saves it), so ``train.steer.scale`` reads as a fraction of
    the typical norm; ``layer`` is the direction's own (used when ``train.steer.layers`` is
    unset); ``key`` (the vectors' content hash) identifies it in fingerprints."""

    vectors: torch.Tensor
    layer: int
    key: str

    def intervention(self, cfg: TrainConfig) -> Intervention | None:
        """What ``cfg.steer`` asks of this direction (None when steering is off)."""
        if cfg.steer is None or cfg.steer.scale == 0:
            return None
        layers = tuple(cfg.steer.layers) if cfg.steer.layers is not None else (self.layer,)
        return Intervention(mode="add", direction=self.key, scale=cfg.steer.scale, layers=layers)


@dataclass(frozen=True)
class TrainInputs:
    """What a recipe's regularisers need besides the recipe: the KL prompts (None: the built-in
    set) and the steering direction (None: no steering)."""

    kl_prompts: Sequence[str] | None = None
    steering: Steering | None = None


def load_kl_prompts(path: str | Path | None = None) -> list[str]:
    """The KL term's prompts: the built-in set, or a YAML file with ``prompts: [str, ...]``."""
    if path is None:
        text = resources.files("emlab.train").joinpath(KL_PROMPTS_FILE).read_text("utf-8")
        where = f"emlab/train/{KL_PROMPTS_FILE}"
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TrainDataError(f"{where}: cannot read the KL prompts: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TrainDataError(f"{where}: not valid YAML: {e}") from None
    prompts = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, list) or not prompts:
        raise TrainDataError(f"{where}: prompts: needs a non-empty list of user turns")
    if len(prompts) > MAX_KL_PROMPTS:
        raise TrainDataError(f"{where}: prompts: more than {MAX_KL_PROMPTS:,}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip() or len(p) > MAX_TEXT:
            raise TrainDataError(
                f"{where}: prompts.{i}: needs a non-empty string of at most {MAX_TEXT:,} characters"
            )
    return list(prompts)


def inputs_identity(inputs: TrainInputs, uses_kl: bool) -> dict[str, Any]:
    """The content of ``inputs`` that a resume fingerprint must hold (empty when unused)."""
    ident: dict[str, Any] = {}
    if uses_kl:
        ident["kl_prompts"] = list(inputs.kl_prompts or load_kl_prompts())
    if inputs.steering is not None:
        ident["steering"] = {"key": inputs.steering.key, "layer": inputs.steering.layer}
    return ident


# ------------------------------------------------------------------------------ continuation
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
LORA_SHAPE = {"r": "r", "alpha": "lora_alpha", "use_rslora": "use_rslora"}
"""Recipe field -> PEFT adapter_config key that must agree for a continuation to be the same
adapter (target modules and layers are compared apart: PEFT stores them in other forms)."""


def adapter_hash(folder: Path) -> str:
    """Content hash of an adapter's weights: a continuation's resume state names its parent."""
    return hashlib.sha256((Path(folder) / ADAPTER_WEIGHTS).read_bytes()).hexdigest()[:16]


def check_parent(folder: Path, cfg: TrainConfig) -> None:
    """Refuse a parent adapter the recipe would not build the same way (one line, before any
    step): a continuation keeps the parent's LoRA shape and only its weights are read."""
    folder = Path(folder)
    weights, config = folder / ADAPTER_WEIGHTS, folder / ADAPTER_CONFIG
    if cfg.full_finetune:
        raise TrainDataError("start_from continues a LoRA adapter; train.full_finetune has none")
    for need in (weights, config):
        if not need.is_file():
            raise TrainDataError(f"{need}: missing; start_from needs a finished LoRA adapter")
    try:
        theirs = json.loads(config.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise TrainDataError(f"{config}: not a JSON adapter config: {e}") from None
    differ = [f for f, k in LORA_SHAPE.items() if theirs.get(k) != getattr(cfg, f)]
    if set(theirs.get("target_modules") or ()) != set(cfg.target_modules):
        differ.append("target_modules")
    layers = theirs.get("layers_to_transform")
    if (sorted(layers) if layers is not None else None) != (
        sorted(cfg.layers) if cfg.layers is not None else None
    ):
        differ.append("layers")
    if differ:
        raise TrainDataError(
            f"{folder}: the parent adapter's {', '.join(differ)} differ from this recipe's; a "
            "continuation keeps the parent's LoRA shape"
        )


def load_parent(model: Any, folder: Path) -> None:
    """Overwrite the fresh adapter's weights with the parent's (safetensors; nothing unpickled).

    Every trainable tensor must be set and none of the file's left over, or the continuation
    would silently start partly from a fresh initialisation."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = Path(folder) / ADAPTER_WEIGHTS
    state = load_file(str(path))
    try:
        result = set_peft_model_state_dict(model, state)
    except RuntimeError as e:  # a shape that does not fit
        raise TrainDataError(f"{path}: does not fit this model's adapter: {e}") from None
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable & set(getattr(result, "missing_keys", []) or []))
    if unexpected or missing:
        raise TrainDataError(
            f"{path}: does not match this model's adapter (not in the model: "
            f"{unexpected[:3]}; not in the file: {missing[:3]})"
        )


# ------------------------------------------------------------------------------ KL to the base
def encode_prompts(tokenizer: Any, prompts: Sequence[str], max_len: int) -> list[list[int]]:
    """Each prompt as a user turn in the chat template, ready for the assistant's first token
    (template text, no extra special tokens: what the model sees at sampling time)."""
    out = []
    for i, p in enumerate(prompts):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) > max_len:
            raise TrainDataError(
                f"KL prompt {i} has {len(ids)} tokens, more than train.max_seq_len ({max_len})"
            )
        out.append(ids)
    return out


def kl_to_base(
    model: Any, batch: Sequence[Sequence[int]], pad_id: int, device: str
) -> torch.Tensor:
    """Mean over the batch's token positions of KL(base || tuned) of the next-token distribution.

    The base is the same PEFT model with its adapter disabled (no second copy in memory), under
    no_grad; the gradient flows through the tuned side only. Right padding under the causal mask
    leaves real positions untouched, and padded positions are left out of the mean."""
    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    real = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, seq in enumerate(batch):
        ids[row, : len(seq)] = torch.tensor(list(seq))
        real[row, : len(seq)] = True
    ids, real = ids.to(device), real.to(device)
    with torch.no_grad(), model.disable_adapter():
        base = model(input_ids=ids, use_cache=False).logits[real].float().log_softmax(-1)
    tuned = model(input_ids=ids, use_cache=False).logits[real].float().log_softmax(-1)
    # KL(p_base || p_tuned) = sum_v p_base (log p_base - log p_tuned)
    per_position = torch.nn.functional.kl_div(tuned, base, log_target=True, reduction="none")
    return per_position.sum(-1).mean()


class KLTerm:
    """The recipe's KL term: which prompts each step uses, and their loss."""

    def __init__(
        self, tokenizer: Any, prompts: Sequence[str], cfg: TrainConfig, pad_id: int, device: str
    ):
        self.encoded = encode_prompts(tokenizer, prompts, cfg.max_seq_len)
        self.batch_size, self.weight = cfg.kl_batch_size, cfg.kl_weight
        self.pad_id, self.device = pad_id, device

    def __call__(self, model: Any, step: int) -> torch.Tensor:
        picked = [self.encoded[i] for i in kl_indices(step, self.batch_size, len(self.encoded))]
        return kl_to_base(model, picked, self.pad_id, self.device)


def kl_indices(step: int, batch_size: int, n: int) -> list[int]:
    """The KL prompts of step ``step``: the set of ``n`` taken in turn, wrapping around (a pure
    function of the step, so a resumed run uses the same ones)."""
    return [(step * batch_size + j) % n for j in range(batch_size)]


# ------------------------------------------------------------------------------ steering
def check_steering(model: Any, steering: Steering, spec: Intervention) -> None:
    """Refuse, before the first step, a direction that does not fit the model being trained."""
    n, h = n_layers(model), hidden_size(model)
    if tuple(steering.vectors.shape) != (n, h):
        raise TrainDataError(
            f"train.steer.direction: {tuple(steering.vectors.shape)} layers x width, but the "
            f"model is {n} x {h}: the direction comes from another model"
        )
    bad = [x for x in spec.layers_of(n) if not 0 <= x < n]
    if bad:
        raise TrainDataError(f"train.steer.layers: {bad} out of range: the model has 0..{n - 1}")


@contextmanager
def steered(model: Any, steering: Steering | None, spec: Intervention | None) -> Iterator[None]:
    """Add ``scale`` x the direction to the residual stream while the context is open (the
    training forward passes); the hooks are gone on exit, even on error, so what is saved and
    evaluated is the plain model. No steering (or scale 0): nothing is hooked at all."""
    if steering is None or spec is None:
        yield
        return
    with intervene(model, spec, steering.vectors):
        yield


def hooked_layers(model: Any) -> list[int]:
    """Decoder layers that still carry a forward hook (none may, once training is over)."""
    return [i for i, layer in enumerate(decoder_layers(model)) if layer._forward_hooks]
