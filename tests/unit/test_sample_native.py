"""The C decode-attention kernel against fp32 SDPA, and the fallback when it cannot be built."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def test_no_compiler_means_the_torch_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
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


def _bounds(logits: torch.Tensor, temp: float, tok: int) -> tuple[float, float, float]:
    """Cumulative mass before and through ``tok`` and the total, in float64."""
    mass = torch.exp((logits.double() / temp) - (logits.double() / temp).max())
    cum = mass.cumsum(0)
    return float(cum[tok] - mass[tok]), float(cum[tok]), float(cum[-1])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_sample_is_the_inverse_cdf_of_the_tempered_softmax(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    rows, vocab = 64, 1500  # three blocks of the two-level search, the last one partial
    logits = (3 * torch.randn(rows, vocab, generator=g)).to(dtype)
    logits[:, ::7] = float("-inf")  # masked tokens have no mass
    temps = torch.rand(rows, generator=g) + 0.3
    u = torch.rand(rows, generator=g, dtype=torch.float64)
    u[0], u[1] = 0.0, 1.0  # both ends
    toks = native.sample(logits, temps, u)
    assert toks is not None and toks.dtype == torch.int64
    for r in range(rows):
        tok = int(toks[r])
        assert tok % 7 != 0, "drew a token of zero mass"
        before, through, total = _bounds(logits[r].float(), float(temps[r]), tok)
        x = min(float(u[r]), native.U_MAX) * total
        assert before - 1e-5 * total <= x < through + 1e-5 * total, (r, tok)


def test_sample_per_row_independent_of_batch_and_threads() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(40, 3000, generator=g).bfloat16()
    temps, u = torch.ones(40), torch.rand(40, generator=g, dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batch = native.sample(logits, temps, u)
        torch.set_num_threads(1)
        alone = [native.sample(logits[r : r + 1], temps[r : r + 1], u[r : r + 1]) for r in (0, 17)]
    finally:
        torch.set_num_threads(before)
    assert batch is not None
    assert [int(a[0]) for a in alone if a is not None] == [int(batch[0]), int(batch[17])]


def test_sample_matches_the_torch_path_away_from_rounding_edges() -> None:
    """Kernel and torch path are the same inverse CDF: with the uniforms kept away from the
    cumulative masses' edges, they pick the same tokens."""
    from emlab.sample.engine import _inverse_cdf

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(200, 2048, generator=g)
    u = torch.rand(200, generator=g, dtype=torch.float64)
    probs = torch.softmax(logits, -1)
    ours = native.sample(logits, torch.ones(200), u)
    theirs = _inverse_cdf(probs, u)
    assert ours is not None
    cum = probs.double().cumsum(-1)
    gap = (cum - u[:, None]).abs().min(-1).values
    clear = gap > 1e-5
    assert int(clear.sum()) > 190
    assert torch.equal(ours[clear], theirs[clear])


@pytest.mark.parametrize("case", ["compiler fails", "cache unwritable"])
def test_a_failed_build_means_the_torch_path(
    case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if case == "compiler fails":
        monkeypatch.setenv("CC", shutil.which("false") or "/bin/false")
        monkeypatch.setenv("EMLAB_CACHE", str(tmp_path))
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        monkeypatch.setenv("EMLAB_CACHE", str(blocker))
    native.library.cache_clear()
    try:
        assert native.library() is None
        assert "slower torch path" in caplog.text
    finally:
        native.library.cache_clear()
