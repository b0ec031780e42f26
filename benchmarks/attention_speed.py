"""Decode-step attention: emlab's C kernel vs its torch path, side by side in one run.

The shape of a 128-row decode step of smollm2-135m (9 query heads, 3 key/value heads, head size
64, bf16), rows of different ages over a window of the cache, as the sampler passes it. Both
sides compute the same attention; the ratio is the time of one layer's attention.

    python benchmarks/attention_speed.py
    python benchmarks/attention_speed.py --rows 64 --window 400 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from emlab.sample import native
from emlab.sample.attention import _attend, decode_attention
from emlab.sample.engine import row_windows


def per_call(fn: Callable[[], object], seconds: float = 2.0) -> float:
    fn()  # warm-up (and, for the kernel, the first-use build)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        reps += 1
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--window", type=int, default=225, help="columns of the cache window")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, heads, kv, dim, width = args.rows, 9, 3, 64, args.window
    g = torch.Generator().manual_seed(0)
    cache_k = torch.randn(rows, kv, 2 * width, dim, generator=g).bfloat16()
    cache_v = torch.randn(rows, kv, 2 * width, dim, generator=g).bfloat16()
    k, v = cache_k[:, :, 10 : 10 + width], cache_v[:, :, 10 : 10 + width]  # a strided window
    q = torch.randn(rows, heads, dim, generator=g).bfloat16()
    starts = torch.randint(0, width, (rows,), generator=g)
    keep = torch.arange(width)[None, :] >= starts[:, None]
    scale = dim**-0.5
    if native.attend(q, k, v, starts, scale) is None:
        raise SystemExit("the C kernel is not available here (no compiler, or EMLAB_NATIVE=0)")

    def kernel() -> object:
        return native.attend(q, k, v, starts, scale)

    def torch_path() -> object:
        return _attend(q.view(rows, kv, heads // kv, dim), k, v, keep[:, None, None, :], scale)

    windows = row_windows(starts.tolist(), width, groups=4)
    mask4 = torch.zeros(rows, 1, 1, width, dtype=torch.bfloat16)
    mask4.masked_fill_(~keep[:, None, None, :], torch.finfo(torch.bfloat16).min)

    class Layer(torch.nn.Module):
        num_key_value_groups = heads // kv
        is_causal = False

    layer, q4 = Layer(), q[:, :, None, :]

    def grouped() -> object:  # the sampler's fallback: rows attend in groups of similar age
        return decode_attention(layer, q4, k, v, mask4, scaling=scale, emlab_windows=windows)

    t_kernel, t_torch, t_grouped = per_call(kernel), per_call(torch_path), per_call(grouped)
    keys = int((width - starts).sum()) * kv
    print(
        f"{rows} rows, window {width} (mean span {keys / rows / kv:.0f}), {heads} heads / {kv} "
        f"key-value heads × {dim}, bf16, {torch.get_num_threads()} threads"
    )
    gbs = 2 * keys * dim * 2 / t_kernel / 1e9
    print(f"C kernel   {t_kernel * 1e3:8.3f} ms per layer ({gbs:.1f} GB/s of keys and values read)")
    print(f"torch path {t_torch * 1e3:8.3f} ms per layer (one shared window)")
    n_groups = len(windows) if windows else 1
    print(f"torch path {t_grouped * 1e3:8.3f} ms per layer ({n_groups} groups of rows by age)")
    print(
        f"ratio torch / kernel: {t_torch / t_kernel:.2f}x, grouped torch / kernel: "
        f"{t_grouped / t_kernel:.2f}x"
    )


if __name__ == "__main__":
    main()
