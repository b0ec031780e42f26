"""Decode-step attention for grouped-query models, registered with transformers as ``emlab``.

Why: at a decode step each row has one query per head against a long window of cached keys.
transformers' SDPA path repeats every key and value head for its query heads (``repeat_kv``)
whenever a mask is given (ours always is), copying the whole window 3x (SmolLM2: 9 query heads,
3 key/value heads) at every layer and step, and then runs SDPA's slow masked path. Here the query
heads that share a key/value head are stacked as the rows of one small matrix product instead, so
each cached key and value is read once and nothing is copied; on this CPU the attention of a
128-row decode step ran ~20x faster than the repeated path (``benchmarks/sample_speed.py``
measures the sampler as a whole). Softmax is taken in fp32 for bf16 models.

Rows of a continuous batch have different ages, so a shared window is as long as the oldest row's
span. On CPU the engine passes ``emlab_starts``, each row's first column (its span runs to the
window's end), and the C kernel in ``native`` reads each row's own span once (7-9x faster than the
torch path at a 128-row step: ``benchmarks/attention_speed.py``). Elsewhere, or where the kernel
cannot be built, the engine may pass ``emlab_windows``: groups of rows of similar age, each with the
first column its rows need; each group then reads only its own window (the full mask still applies,
so the result does not depend on the grouping).

Any call with more than one query (prompt prefill) goes to transformers' SDPA unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from emlab.sample import native

NAME = "emlab"
WINDOWS_KW = "emlab_windows"
"""Forward keyword: a list of (row indices, first needed column of the window) per row group."""
STARTS_KW = "emlab_starts"
"""Forward keyword: each row's first column; the row attends to every column from there on (the
caller guarantees the mask says the same)."""


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention in transformers' interface: query ``[B, H, q, D]``, key/value ``[B, KV, T, D]``,
    additive or boolean mask broadcastable to ``[B, 1, q, T]``; returns ``[B, q, H, D]``."""
    rows, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len != 1 or heads % kv_heads or dropout > 0.0:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scale = dim**-0.5 if scaling is None else scaling
    starts = kwargs.get(STARTS_KW)
    if starts is not None:
        out = native.attend(query.squeeze(2), key, value, starts, scale)
        if out is not None:
            return out.unsqueeze(1), None
    # [B, KV, rep, D]: the query heads of one key/value head become rows of one product.
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    windows = kwargs.get(WINDOWS_KW)
    if not windows:
        return _attend(q, key, value, attention_mask, scale).reshape(rows, 1, heads, dim), None
    out = q.new_empty(q.shape)
    for idx, first in windows:
        # Slice before indexing: only the group's own window is gathered.
        mask = None if attention_mask is None else attention_mask[..., first:]
        if mask is not None and mask.shape[0] > 1:
            mask = mask[idx]
        out[idx] = _attend(q[idx], key[:, :, first:][idx], value[:, :, first:][idx], mask, scale)
    return out.reshape(rows, 1, heads, dim), None


def _attend(
    q: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scale: float,
) -> torch.Tensor:
    """q ``[B, KV, rep, D]`` against key/value ``[B, KV, T, D]``; returns ``[B, KV, rep, D]``."""
    # keys @ q^T rather than q @ keys^T: the cached window [T, D] is then a row-major matrix,
    # while its transpose made the product copy it first (measured: 1.2-1.4x faster).
    scores = torch.matmul(key, q.transpose(-1, -2)).float() * scale  # [B, KV, T, rep]
    if attention_mask is not None:
        mask = attention_mask.transpose(-1, -2)  # [B, 1, T, 1]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    probs = torch.softmax(scores, dim=-2).to(value.dtype)
    return torch.matmul(probs.transpose(-1, -2), value)


AttentionInterface.register(NAME, decode_attention)
