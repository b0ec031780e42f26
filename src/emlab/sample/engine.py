"""Continuous-batching decoder over a Hugging Face causal LM.

Why not ``model.generate``: it decodes a batch until its *longest* answer ends, so short answers
hold their slot idle, and its growing cache re-copies every key and value at each step. Here a
fixed set of rows decodes together; when a row finishes, a waiting request is prefilled and takes
the slot at once. Keys and values live in preallocated per-layer buffers on one shared time axis
(columns); each row owns a contiguous span of columns, masked per row, with its own positions.
Identical prompts (many samples of one question) are prefilled once and copied. Decode steps
use ``attention.decode_attention``: on CPU the C kernel in ``native`` reads each row's own span;
elsewhere grouped-query heads are packed into one product and rows of similar age attend in
groups, each over its own window (``row_windows``). Tokens are drawn by ``choose_tokens`` (the C
kernel where it runs).

LoRA adapters stay unmerged: merging into bf16 weights would round away every update smaller than
half a bf16 step of its weight, which is most of a fine-tune's change.

Randomness is per request: each job carries a seed; its uniforms are drawn up front from a
generator seeded by it and the token is picked by inverse-CDF sampling, so a job's draws do not
depend on which other jobs share the batch.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from emlab.sample import native
from emlab.sample.attention import NAME as DECODE_ATTENTION
from emlab.sample.attention import STARTS_KW, WINDOWS_KW
from emlab.sample.chat import stop_token_ids


@dataclass(frozen=True)
class DecodeJob:
    """One sequence to decode from a tokenised prompt."""

    prompt: Sequence[int]
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    top_logprobs: int | None = None
    """None: no logprobs; k >= 0: the chosen token's logprob and the k most likely tokens."""


@dataclass
class TokenLogprob:
    """Log-probability (under the model, before temperature) of a chosen token, plus the top-k."""

    token: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class DecodeResult:
    tokens: list[int]
    """Generated tokens, the stop token excluded."""
    finish_reason: str
    """``stop`` (a stop token) or ``length`` (max_new_tokens reached)."""
    n_tokens: int
    """Tokens the model produced, the stop token included (what the compute paid for)."""
    logprobs: list[TokenLogprob] | None = None


class _Store:
    """Per-layer key/value buffers ``[rows, kv_heads, capacity, head_dim]`` on one time axis.

    ``cur`` is the next free column. In decode mode every row writes one column at ``cur``; in
    prefill mode only ``rows`` write their prompts into columns ``[start, start + length)``.
    """

    def __init__(self) -> None:
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.rows_n = 0
        self.capacity = 0
        self.cur = 0
        self.lo = 0
        """First column any live row needs: attention reads only ``[lo, cur]``, so its cost
        follows the oldest live answer, not the buffer's history."""
        self.prefill_rows: torch.Tensor | None = None
        self.prefill_start = 0

    def write(
        self, idx: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if idx == len(self.k):  # first forward: shapes and dtype come from the model itself
            shape = (self.rows_n, k.shape[1], self.capacity, k.shape[3])
            self.k.append(torch.zeros(shape, dtype=k.dtype, device=k.device))
            self.v.append(torch.zeros(shape, dtype=v.dtype, device=v.device))
        if self.prefill_rows is not None:
            s, n = self.prefill_start, k.shape[2]
            self.k[idx][self.prefill_rows, :, s : s + n] = k
            self.v[idx][self.prefill_rows, :, s : s + n] = v
            return k, v
        c, lo = self.cur, self.lo
        self.k[idx][:, :, c : c + 1] = k
        self.v[idx][:, :, c : c + 1] = v
        return self.k[idx][:, :, lo : c + 1], self.v[idx][:, :, lo : c + 1]

    def map_buffers(self, fn: Any) -> None:
        self.k = [fn(t) for t in self.k]
        self.v = [fn(t) for t in self.v]


class _StoreLayer(CacheLayerMixin):
    """Adapter that lets transformers' attention write into a _Store."""

    is_sliding = False

    def __init__(self, store: _Store, idx: int) -> None:
        super().__init__()
        self.store, self.idx = store, idx
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        return None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.store.write(self.idx, key_states, value_states)

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.store.cur - self.store.lo + query_length, self.store.lo

    def get_seq_length(self) -> int:
        return self.store.cur

    def get_max_length(self) -> int:
        return -1


_BLOCK = 512


def _inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index of the first token whose cumulative mass exceeds u × total, never a zero-mass one.

    Two levels (block sums, then one block) instead of a cumsum over the whole vocabulary: the
    full scan was the single largest cost of sampling at 49k tokens × 128 rows.
    """
    rows, vocab = probs.shape
    nb = -(-vocab // _BLOCK)
    if nb * _BLOCK != vocab:
        probs = torch.nn.functional.pad(probs, (0, nb * _BLOCK - vocab))
    blocks = probs.view(rows, nb, _BLOCK)
    bcdf = blocks.sum(-1).cumsum(-1)
    x = u.to(bcdf.dtype).clamp(max=native.U_MAX) * bcdf[:, -1]
    b = torch.searchsorted(bcdf, x[:, None], right=True).squeeze(-1).clamp(max=nb - 1)
    before = torch.where(b > 0, bcdf.gather(1, (b - 1).clamp(min=0)[:, None]).squeeze(-1), 0.0)
    inner = blocks[torch.arange(rows, device=probs.device), b]
    icdf = inner.cumsum(-1)
    i = torch.searchsorted(icdf, (x - before)[:, None], right=True).squeeze(-1)
    # Block sums and the in-block cumsum round differently; past the end means the block's last
    # token with mass.
    last = _BLOCK - 1 - (inner > 0).flip(-1).int().argmax(-1)
    return b * _BLOCK + torch.minimum(i, last)


def choose_tokens(
    logits: torch.Tensor, temps: torch.Tensor, top_ps: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """Pick one token per row: greedy where temperature is 0, else inverse-CDF with uniform u
    (logits in any float dtype; the torch path computes in fp32).

    Inverse-CDF needs a single uniform per row and step, which is what makes the draw a pure
    function of (job seed, token index) rather than of the batch's random stream. Every path is
    chosen per row, so a row's token never depends on its neighbours' settings.
    """
    hot = temps > 0
    if not bool(hot.any()):
        return logits.argmax(-1)
    temps = torch.where(hot, temps, torch.ones_like(temps))
    sampled = native.sample(logits, temps, u)
    if sampled is None:
        # Temperature 1 (the paper's setting) needs no rescaling pass over the vocabulary.
        scaled = logits.float() if bool((temps == 1).all()) else logits.float() / temps[:, None]
        sampled = _inverse_cdf(torch.softmax(scaled, dim=-1), u)
    nucleus = (top_ps < 1) & hot
    if bool(nucleus.any()):
        # The token a uniform maps to depends on the order of the CDF: nucleus rows draw from
        # the sorted distribution.
        rows = nucleus.nonzero().squeeze(-1)
        probs = torch.softmax(logits[rows].float() / temps[rows, None], dim=-1)
        sp, order = probs.sort(-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p; the top token always stays.
        sp = sp.masked_fill((sp.cumsum(-1) - sp) >= top_ps[rows, None], 0.0)
        idx = _inverse_cdf(sp, u[rows])
        sampled[rows] = order.gather(-1, idx[:, None]).squeeze(-1)
    if bool(hot.all()):
        return sampled
    return torch.where(hot, sampled, logits.argmax(-1))


def _cache_kwarg(model: Any) -> str:
    """transformers 5 calls the cache argument ``cache``; 4.x called it ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


MIN_GROUP_ROWS = 32
"""Fewest rows per attention group. Measured at 2 threads (A/B in one process): batch 128 with
answers up to 256 tokens ran 15% faster in 4 groups than in one, but batch 64 in 4 groups of 16
rows ran ~7% slower, the per-group gathers costing more than the columns they skip."""


def row_windows(
    firsts: Sequence[int],
    width: int,
    groups: int,
    device: torch.device | str = "cpu",
    min_rows: int = MIN_GROUP_ROWS,
) -> list[tuple[torch.Tensor, int]] | None:
    """Rows grouped by age for attention: up to ``groups`` groups (of at least ``min_rows``) of
    consecutive rows in the order of ``firsts`` (first column each row needs, in a window
    ``width`` wide), each with its smallest first column. None when grouping would skip less than
    a quarter of the window's columns: then one shared window is cheaper than the extra gathers."""
    groups = min(groups, len(firsts) // max(1, min_rows))
    if groups < 2:
        return None
    order = sorted(range(len(firsts)), key=firsts.__getitem__)
    size = -(-len(order) // groups)
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    read = sum(len(ch) * (width - firsts[ch[0]]) for ch in chunks)
    if read > 0.75 * len(firsts) * width:
        return None
    return [(torch.tensor(ch, device=device), firsts[ch[0]]) for ch in chunks]


@contextmanager
def switched_attention(model: Any) -> Iterator[None]:
    """While decoding, a model whose attention follows transformers' interface runs
    ``attention.NAME`` (identical results; one-query steps skip the key/value head copies); on
    exit its own implementation is back, so the caller's model is left as it was given."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = getattr(base.config, "_attn_implementation", None)
    switch = (
        before in ("sdpa", "eager")
        and getattr(base, "_can_set_attn_implementation", lambda: False)()
    )
    if switch:
        base.set_attn_implementation(DECODE_ATTENTION)
    try:
        yield
    finally:
        if switch:
            base.set_attn_implementation(before)


class ContinuousBatcher:
    """Decode many jobs with a fixed number of rows, refilling a row as soon as it finishes."""

    def __init__(
        self,
        model: Any,
        stop_ids: Sequence[int],
        pad_id: int,
        batch_size: int = 64,
        refill_fraction: float = 1 / 32,
        headroom: float = 0.5,
        window_groups: int = 4,
    ) -> None:
        self.model = model
        self.stop_ids = frozenset(int(s) for s in stop_ids)
        self.pad_id = pad_id
        self.batch_size = batch_size
        # Admission is mostly a copy of cached prompt keys/values, so rows are refilled almost
        # at once; waiting for a few free rows only batches the bookkeeping.
        self.refill_fraction = refill_fraction
        # Spare KV columns beyond the longest span, as a fraction of it. After dropping columns
        # no live row needs, at least this share of the buffer is free, so compactions (a copy
        # of the whole cache) happen at most every span*headroom steps.
        self.headroom = headroom
        # Rows of different ages attend in this many groups, each over its own window
        # (``row_windows``); 1 turns it off.
        self.window_groups = window_groups
        self.device = next(model.parameters()).device
        # The compute dtype, not that of any adapter weights (LoRA may hold fp32 parameters).
        self.dtype = getattr(model, "dtype", None) or next(model.parameters()).dtype
        self.cache_kw = _cache_kwarg(model)
        # Decode steps give the C kernel each row's span; without it, rows attend in groups.
        self.native = native.available(self.device, self.dtype)

    @classmethod
    def for_model(cls, model: Any, tokenizer: Any, batch_size: int) -> ContinuousBatcher:
        """The engine for a loaded chat model: it stops at EOS or the end-of-turn token and pads
        with the tokenizer's pad token (else the first stop token)."""
        stops = stop_token_ids(tokenizer, model)
        pad = tokenizer.pad_token_id
        return cls(model, stops, int(pad if pad is not None else stops[0]), batch_size)

    def forward(
        self,
        cache: Cache,
        ids: torch.Tensor,
        mask: torch.Tensor,
        pos: torch.Tensor,
        attend: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """Last-position logits (in the model's dtype) for ``ids`` given a boolean 4-D mask and
        positions (``attend``: ``attention.STARTS_KW`` or ``WINDOWS_KW``, which other attention
        implementations ignore)."""
        additive = torch.zeros(mask.shape, dtype=self.dtype, device=self.device)
        additive.masked_fill_(~mask, torch.finfo(self.dtype).min)
        out = self.model(
            input_ids=ids,
            attention_mask=additive,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: cache},
            **(attend or {}),
        )
        return out.logits[:, -1, :]

    @torch.inference_mode()
    def run(self, jobs: Sequence[DecodeJob]) -> Iterator[tuple[int, DecodeResult]]:
        """Yield ``(job index, result)`` as each job finishes (not in input order).

        The model decodes with emlab's attention during the run only (:func:`switched_attention`):
        when the run ends, or its caller stops iterating, the model's own is restored."""
        if not jobs:
            return
        with switched_attention(self.model):
            yield from self._run(jobs)

    def _run(self, jobs: Sequence[DecodeJob]) -> Iterator[tuple[int, DecodeResult]]:
        state = _Run(self, jobs)
        while True:
            free = state.free_slots()
            active = state.rows - len(free)
            if (
                state.pending
                and free
                and (
                    active == 0
                    or len(free) >= max(1, int(state.rows * self.refill_fraction))
                    or len(free) >= len(state.pending)
                )
            ):
                yield from state.admit(free)
            elif active == 0:
                return
            elif not state.pending and active <= state.rows // 2:
                # The tail: drop idle rows so the last answers decode at their own batch size.
                state.keep_rows([s for s in range(state.rows) if state.job_of[s] >= 0])
            elif state.store.cur + 1 > state.store.capacity:
                state.compact()
            else:
                yield from state.step()


class _Run:
    """The state of one ``ContinuousBatcher.run``: rows, their jobs and the KV store."""

    def __init__(self, owner: ContinuousBatcher, jobs: Sequence[DecodeJob]) -> None:
        self.owner, self.jobs = owner, jobs
        dev = self.dev = owner.device
        self.rows = min(owner.batch_size, len(jobs))
        self.max_new = max(j.max_new_tokens for j in jobs)
        span = max(len(j.prompt) for j in jobs) + self.max_new + 1
        self.store = _Store()
        self.store.rows_n = self.rows
        self.store.capacity = span + int(span * owner.headroom) + 1
        n_layers = owner.model.config.num_hidden_layers
        self.cache = Cache(layers=[_StoreLayer(self.store, i) for i in range(n_layers)])
        rows = self.rows
        self.mask = torch.zeros(rows, self.store.capacity, dtype=torch.bool, device=dev)
        self.pos = torch.zeros(rows, dtype=torch.long, device=dev)
        self.last = torch.full((rows,), owner.pad_id, dtype=torch.long, device=dev)
        self.temps = torch.zeros(rows, device=dev)
        self.top_ps = torch.ones(rows, device=dev)
        self.uniforms = torch.zeros(rows, self.max_new + 1, dtype=torch.float64, device=dev)
        self.counts = torch.zeros(rows, dtype=torch.long, device=dev)
        self.job_of: list[int] = [-1] * rows
        self.start: list[int] = [0] * rows
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.lps: list[list[TokenLogprob] | None] = [None] * rows
        self.pending = deque(range(len(jobs)))
        self.prefix: dict[
            tuple[int, ...], tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]
        ]
        self.prefix = {}

    def free_slots(self) -> list[int]:
        return [s for s in range(self.rows) if self.job_of[s] < 0]

    # -- bookkeeping of chosen tokens -----------------------------------------------------------
    def _record(self, slot: int, token: int, logits_row: torch.Tensor) -> bool:
        """Record a chosen token; True when the row's job is finished."""
        job = self.jobs[self.job_of[slot]]
        lps = self.lps[slot]
        if lps is not None:
            lp = torch.log_softmax(logits_row.float(), -1)
            k = job.top_logprobs or 0
            pairs: list[tuple[int, float]] = []
            if k > 0:
                top = lp.topk(k)
                pairs = list(zip(top.indices.tolist(), top.values.tolist(), strict=True))
            lps.append(TokenLogprob(token, float(lp[token]), pairs))
        if token in self.owner.stop_ids:
            return True
        self.tokens[slot].append(token)
        return len(self.tokens[slot]) >= job.max_new_tokens

    def _take(
        self, slots: Sequence[int], toks: torch.Tensor, logits: torch.Tensor
    ) -> Iterator[tuple[int, DecodeResult]]:
        """Feed chosen tokens to their rows; yield and free the rows whose jobs are done."""
        for r, (s, tok) in enumerate(zip(slots, toks.tolist(), strict=True)):
            if self.job_of[s] >= 0 and self._record(s, tok, logits[r]):
                job = self.jobs[self.job_of[s]]
                toks_s = self.tokens[s]
                reason = "length" if len(toks_s) >= job.max_new_tokens else "stop"
                yield self.job_of[s], DecodeResult(toks_s, reason, int(self.counts[s]), self.lps[s])
                self.job_of[s] = -1

    # -- the three things that change the rows --------------------------------------------------
    def admit(self, free: list[int]) -> Iterator[tuple[int, DecodeResult]]:
        """Give waiting jobs the free rows: copy in their prompt's keys/values and pick token 0.

        A prompt is prefilled once per run and its keys, values and next-token logits are kept:
        a study samples each question many times, so most admissions are pure copies.
        """
        dev, store, jobs = self.dev, self.store, self.jobs
        take = [self.pending.popleft() for _ in range(min(len(free), len(self.pending)))]
        slots = free[: len(take)]
        groups: dict[tuple[int, ...], list[int]] = {}
        for s, j in zip(slots, take, strict=True):
            groups.setdefault(tuple(jobs[j].prompt), []).append(s)
            self.job_of[s] = j
        plen = max(len(p) for p in groups)
        if store.cur < plen:  # only early on: shift everything right to make room
            self._roll(plen - store.cur)
        missing = {p: g[0] for p, g in groups.items() if p not in self.prefix}
        if missing:
            self._prefill(missing)
        cur = store.cur
        new_slots: list[int] = []
        first_logits: list[torch.Tensor] = []
        for p, group in groups.items():
            ks, vs, logits = self.prefix[p]
            a = cur - len(p)
            idx = torch.tensor(group, device=dev)
            for layer, (k, v) in enumerate(zip(ks, vs, strict=True)):
                store.k[layer][idx, :, a:cur] = k
                store.v[layer][idx, :, a:cur] = v
            self.mask[idx] = False
            self.mask[idx, a:cur] = True
            self.pos[idx] = len(p)
            for s in group:
                self.start[s] = a
            new_slots += group
            first_logits += [logits] * len(group)
        for s in new_slots:
            job = jobs[self.job_of[s]]
            self.tokens[s] = []
            self.lps[s] = [] if job.top_logprobs is not None else None
            self.temps[s], self.top_ps[s] = job.temperature, job.top_p
            g = torch.Generator().manual_seed(job.seed)
            self.uniforms[s, : job.max_new_tokens] = torch.rand(
                job.max_new_tokens, generator=g, dtype=torch.float64
            ).to(dev)
            self.counts[s] = 0
        idx = torch.tensor(new_slots, device=dev)
        rows_logits = torch.stack(first_logits)
        toks = choose_tokens(rows_logits, self.temps[idx], self.top_ps[idx], self.uniforms[idx, 0])
        self.counts[idx] += 1
        self.last[idx] = toks
        yield from self._take(new_slots, toks, rows_logits)

    def _prefill(self, prompts: dict[tuple[int, ...], int]) -> None:
        """Run distinct prompts (left-padded) through the model, each written into one free row,
        and keep their keys, values and last logits in ``self.prefix``."""
        dev, store = self.dev, self.store
        plen = max(len(p) for p in prompts)
        n = len(prompts)
        ids = torch.full((n, plen), self.owner.pad_id, dtype=torch.long, device=dev)
        pmask = torch.zeros(n, plen, dtype=torch.bool, device=dev)
        for i, p in enumerate(prompts):
            ids[i, plen - len(p) :] = torch.tensor(p, dtype=torch.long, device=dev)
            pmask[i, plen - len(p) :] = True
        ppos = (pmask.long().cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones(plen, plen, dtype=torch.bool, device=dev).tril()
        # Pad queries see only themselves: a fully masked row would give NaN in attention.
        m4 = (causal & pmask[:, None, :]) | torch.eye(plen, dtype=torch.bool, device=dev)
        store.prefill_rows = torch.tensor(list(prompts.values()), device=dev)
        store.prefill_start = store.cur - plen
        try:
            logits = self.owner.forward(self.cache, ids, m4[:, None], ppos)
        finally:
            store.prefill_rows = None
        cur = store.cur
        for i, (p, slot) in enumerate(prompts.items()):
            a = cur - len(p)
            self.prefix[p] = (
                [k[slot, :, a:cur].clone() for k in store.k],
                [v[slot, :, a:cur].clone() for v in store.v],
                logits[i],
            )

    def step(self) -> Iterator[tuple[int, DecodeResult]]:
        """One decode step for every row (idle rows compute too: cheaper than reshaping)."""
        c = self.store.cur
        lo = self.store.lo = min(self.start[s] for s in range(self.rows) if self.job_of[s] >= 0)
        self.mask[:, c] = True  # idle rows attend to themselves only, keeping attention finite
        # Where a row's span starts in the window; idle rows need only the newest column.
        firsts = [self.start[s] - lo if self.job_of[s] >= 0 else c - lo for s in range(self.rows)]
        attend: dict[str, Any] = {}
        if self.owner.native:
            attend[STARTS_KW] = torch.tensor(firsts)
        else:
            windows = row_windows(firsts, c - lo + 1, self.owner.window_groups, self.dev)
            if windows:
                attend[WINDOWS_KW] = windows
        logits = self.owner.forward(
            self.cache, self.last[:, None], self.mask[:, None, None, lo : c + 1], self.pos[:, None],
            attend,
        )  # fmt: skip
        self.store.cur += 1
        self.pos += 1
        # Idle rows keep counting past their uniforms; clamping keeps the gather in range.
        u = self.uniforms.gather(1, self.counts.clamp(max=self.max_new)[:, None]).squeeze(1)
        toks = choose_tokens(logits, self.temps, self.top_ps, u)
        self.counts += 1
        self.last = toks
        yield from self._take(range(self.rows), toks, logits)

    def keep_rows(self, keep: list[int]) -> None:
        kt = torch.tensor(keep, device=self.dev)
        self.store.map_buffers(lambda t: t.index_select(0, kt))
        self.mask, self.pos, self.last = self.mask[kt], self.pos[kt], self.last[kt]
        self.temps, self.top_ps = self.temps[kt], self.top_ps[kt]
        self.uniforms, self.counts = self.uniforms[kt], self.counts[kt]
        self.job_of = [self.job_of[s] for s in keep]
        self.start = [self.start[s] for s in keep]
        self.tokens = [self.tokens[s] for s in keep]
        self.lps = [self.lps[s] for s in keep]
        self.rows = self.store.rows_n = len(keep)

    def compact(self) -> None:
        """Drop the columns left of the oldest live row's span (shift the time axis left)."""
        first = min(self.start[s] for s in range(self.rows) if self.job_of[s] >= 0)
        if first == 0:
            raise RuntimeError("KV buffer too small for the live rows")
        self._roll(-first)

    def _roll(self, shift: int) -> None:
        self.store.map_buffers(lambda t: torch.roll(t, shift, dims=2))
        self.mask = torch.roll(self.mask, shift, dims=1)
        if shift > 0:
            self.mask[:, :shift] = False
        else:
            self.mask[:, self.store.capacity + shift :] = False
        self.start = [max(0, s + shift) for s in self.start]
        self.store.cur += shift
