"""Activation capture: the residual stream of teacher-forced (prompt, answer) pairs.

For each pair and each decoder layer this keeps two vectors: the mean over the answer's tokens
(what a persona or misalignment direction is measured on, after Chen et al. 2025 and Soligo et al.
2025) and the last prompt token (the state just before the model starts answering). Means are
taken inside the hooks in fp32 and kept in bf16 on CPU: 1,000 answers of a 30-layer 576-wide
model are 2 x 35 MB.

The answer is fed exactly as the sampler saw it (chat template with the generation prompt, then
the answer's tokens), so an activation taken here is the one the model had while answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emlab.models.hooks import decoder_layers, hidden_size, residual_hooks
from emlab.records import Message, content_hash
from emlab.store import Store

CAPTURE_VERSION = 1
"""Bump when what a capture computes changes: cached captures are keyed by it."""

Pair = tuple[Sequence[Message], str]
"""A chat (system and user turns) and the assistant's answer to it."""


@dataclass
class Captured:
    """Per-pair, per-layer activations ``[n, n_layers, hidden]`` (bf16, CPU)."""

    answer_mean: torch.Tensor
    """Mean residual stream over the answer's tokens (zeros where the answer is empty)."""
    prompt_last: torch.Tensor
    """Residual stream at the last prompt token."""
    answer_tokens: torch.Tensor
    """``[n]`` answer tokens fed (after truncation); 0 = an empty answer."""

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "answer_mean": self.answer_mean,
            "prompt_last": self.prompt_last,
            "answer_tokens": self.answer_tokens,
        }

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> Captured:
        return cls(t["answer_mean"], t["prompt_last"], t["answer_tokens"])

    def valid(self) -> torch.Tensor:
        """Rows with at least one answer token (boolean mask)."""
        return self.answer_tokens > 0


def encode_pair(
    tokenizer: Any, messages: Sequence[Message], answer: str, max_answer_tokens: int
) -> tuple[list[int], int]:
    """Token ids of prompt + answer, and how many of them are the prompt."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    prompt = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    ans = list(tokenizer(answer, add_special_tokens=False)["input_ids"])[:max_answer_tokens]
    return prompt + ans, len(prompt)


@torch.inference_mode()
def capture(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[Pair],
    batch_size: int = 16,
    max_answer_tokens: int = 256,
    progress: bool = False,
) -> Captured:
    """Run every pair through ``model`` (HF or PEFT) once, teacher-forced, and keep the
    per-layer answer mean and last prompt token. Hooks are removed on return."""
    n_layers = len(decoder_layers(model))
    param = next(model.parameters())
    hidden = hidden_size(model)
    encoded = [encode_pair(tokenizer, m, a, max_answer_tokens) for m, a in pairs]
    out_mean = torch.zeros(len(pairs), n_layers, hidden, dtype=torch.bfloat16)
    out_last = torch.zeros(len(pairs), n_layers, hidden, dtype=torch.bfloat16)
    n_ans = torch.tensor([len(ids) - p for ids, p in encoded], dtype=torch.long)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Longest first, in batches of similar length: padding costs compute.
    order = sorted(range(len(pairs)), key=lambda i: -len(encoded[i][0]))
    batch: dict[str, torch.Tensor] = {}

    def keep(layer: int, h: torch.Tensor) -> None:
        hf = h.float()
        rows = batch["rows"]
        out_mean[rows, layer] = torch.einsum("bs,bsh->bh", batch["weights"], hf).to(torch.bfloat16)
        out_last[rows, layer] = hf[batch["arange"], batch["last"]].to(torch.bfloat16)

    from tqdm.auto import tqdm

    starts = range(0, len(order), batch_size)
    with residual_hooks(model, range(n_layers), keep):
        for start in tqdm(starts, desc="capture", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            width = max(len(encoded[i][0]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros(len(idx), width, dtype=torch.long)
            weights = torch.zeros(len(idx), width)
            last = torch.zeros(len(idx), dtype=torch.long)
            for r, i in enumerate(idx):
                toks, p = encoded[i]
                ids[r, : len(toks)] = torch.tensor(toks)
                mask[r, : len(toks)] = 1
                if len(toks) > p:
                    weights[r, p : len(toks)] = 1.0 / (len(toks) - p)
                last[r] = p - 1
            dev = param.device
            batch.update(
                rows=torch.tensor(idx),
                weights=weights.to(dev),
                last=last.to(dev),
                arange=torch.arange(len(idx), device=dev),
            )
            # logits_to_keep=1: the vocabulary projection of every position is a quarter of a
            # small model's compute and nothing here reads it.
            model(input_ids=ids.to(dev), attention_mask=mask.to(dev), logits_to_keep=1)
    return Captured(out_mean, out_last, n_ans)


def capture_key(model_key: str, pairs: Sequence[Pair], max_answer_tokens: int) -> str:
    """Content hash of what a capture depends on (model, texts, truncation, code version)."""
    return content_hash(
        {
            "capture": CAPTURE_VERSION,
            "model": model_key,
            "pairs": [[list(m), a] for m, a in pairs],
            "max_answer_tokens": max_answer_tokens,
        }
    )


def cached_capture(
    store: Store,
    model_key: str,
    lm: Any,
    pairs: Sequence[Pair],
    max_answer_tokens: int = 256,
    batch_size: int = 16,
    progress: bool = False,
) -> Captured:
    """``capture`` through the store: an artefact ``activations/<hash>`` (safetensors), computed
    once. ``lm`` is a ``LoadedModel`` or a zero-argument callable returning one (loaded only
    when the capture is not cached)."""
    from safetensors.torch import load_file, save_file

    key = capture_key(model_key, pairs, max_answer_tokens)
    path = store.artifact_dir("activations", key) / "acts.safetensors"
    if not store.has_artifact("activations", key):
        loaded = lm() if callable(lm) else lm
        got = capture(
            loaded.model, loaded.tokenizer, pairs, batch_size, max_answer_tokens, progress
        )

        def write(d: Path) -> None:
            save_file(got.tensors(), str(d / "acts.safetensors"), metadata={"model": model_key})

        store.write_artifact("activations", key, write)
        return got
    return Captured.from_tensors(load_file(str(path)))
