"""The C decode-attention kernel against fp32 SDPA, and the fallback when it cannot be built."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from emlab.sample import native
from emlab.sample.attention import decode_attention

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="no C compiler on this machine: the sampler runs the torch path (tested elsewhere)",
)


def _case(
    rows: int, heads: int, kv: int, dim: int, width: int, dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, a strided window of a larger key/value buffer (as the engine passes), starts."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, heads, dim, generator=g).to(dtype)
    big_k = torch.randn(rows, kv, 3 * width, dim, generator=g).to(dtype)
    big_v = torch.randn(rows, kv, 3 * width, dim, generator=g).to(dtype)
    starts = torch.randint(0, width, (rows,), generator=g)
    starts[0] = 0  # one row sees the whole window, one only the newest column
    starts[-1] = width - 1
    return q, big_k[:, :, 5 : 5 + width], big_v[:, :, 5 : 5 + width], starts


def _reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, starts: torch.Tensor, scale: float
) -> torch.Tensor:
    rows, heads, dim = q.shape
    kv, width = k.shape[1], k.shape[2]
    keep = torch.arange(width)[None, :] >= starts[:, None]
    qf = q.float().view(rows, kv, heads // kv, dim)
    out = F.scaled_dot_product_attention(
        qf, k.float(), v.float(), attn_mask=keep[:, None, None, :], scale=scale
    )
    return out.reshape(rows, heads, dim)


@pytest.mark.parametrize(
    ("heads", "kv", "dim"),
    [(9, 3, 64), (8, 8, 128), (14, 2, 64), (6, 2, 40)],  # SmolLM2, MHA, Qwen-like, odd size
)
def test_kernel_equals_fp32_attention(heads: int, kv: int, dim: int) -> None:
    q, k, v, starts = _case(7, heads, kv, dim, 37, torch.float32)
    out = native.attend(q, k, v, starts, 0.2)
    assert out is not None, "the kernel did not run"
    torch.testing.assert_close(out, _reference(q, k, v, starts, 0.2), rtol=2e-5, atol=2e-5)


def test_kernel_bf16_is_within_bf16_rounding_of_fp32() -> None:
    q, k, v, starts = _case(16, 9, 3, 64, 300, torch.bfloat16)
    out = native.attend(q, k, v, starts, 0.125)
    assert out is not None and out.dtype == torch.bfloat16
    ref = _reference(q, k, v, starts, 0.125)
    # One bf16 rounding of the output (2^-8 relative); the kernel keeps scores and sums in fp32.
    torch.testing.assert_close(out.float(), ref, rtol=2**-8, atol=1e-3)
    # torch's own bf16 path (scores rounded to bf16) is no closer to the fp32 result.
    ours = (out.float() - ref).abs().mean()
    theirs = (_reference(q, k, v, starts, 0.125).bfloat16().float() - ref).abs().mean()
    assert ours <= 2 * theirs + 1e-6


def test_kernel_result_does_not_depend_on_threads() -> None:
    q, k, v, starts = _case(33, 9, 3, 64, 90, torch.bfloat16, seed=3)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native.attend(q, k, v, starts, 0.125)
        torch.set_num_threads(2)
        two = native.attend(q, k, v, starts, 0.125)
    finally:
        torch.set_num_threads(before)
    assert one is not None and two is not None
    assert torch.equal(one, two)


def test_shapes_outside_the_kernel_fall_back() -> None:
    q, k, v, starts = _case(3, 34, 2, 16, 9, torch.float32)  # 17 query heads per group
    assert native.attend(q, k, v, starts, 0.25) is None
    half = _case(3, 4, 2, 16, 9, torch.float16)
    assert native.attend(*half, 0.25) is None


def test_decode_attention_uses_starts_and_agrees_with_the_mask_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    q, k, v, starts = _case(6, 6, 2, 16, 21, torch.float32, seed=1)
    keep = torch.arange(21)[None, :] >= starts[:, None]
    lowest = torch.finfo(torch.float32).min
    mask = torch.zeros(6, 1, 1, 21).masked_fill(~keep[:, None, None, :], lowest)

    class Attn(torch.nn.Module):
        num_key_value_groups = 3
        is_causal = False

    q4 = q[:, :, None, :]
    fast, _ = decode_attention(Attn(), q4, k, v, mask, scaling=0.3, emlab_starts=starts)
    monkeypatch.setenv("EMLAB_NATIVE", "0")
    slow, _ = decode_attention(Attn(), q4, k, v, mask, scaling=0.3, emlab_starts=starts)
    assert fast.shape == slow.shape == (6, 1, 6, 16)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


def test_no_compiler_means_the_torch_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("EMLAB_CACHE", str(tmp_path))
    native.library.cache_clear()
    try:
        assert native.library() is None
        assert not native.available(torch.device("cpu"), torch.float32)
        q, k, v, starts = _case(2, 2, 1, 8, 4, torch.float32)
        assert native.attend(q, k, v, starts, 0.5) is None
    finally:
        native.library.cache_clear()
