"""C kernels for the CPU decode step (``native.c``): built on first use, called via ctypes.

``attend``: a decode step's attention, each row over its own span of the cache. ``sample``: one
inverse-CDF draw per row straight from the model's logits.

Why ctypes and not a torch extension: the kernels need only a C compiler (no Python headers, no
ninja) and builds in a few seconds. Their OpenMP loops run on torch's own threads: ``-fopenmp``
links ``libgomp.so.1``, which resolves to the copy torch has already loaded. The library is
cached per source, flags and CPU under the emlab cache (``kernels/``), written atomically so that
parallel processes may build it at once.

Where there is no compiler, the build fails, the tensors are not on the CPU, or ``EMLAB_NATIVE=0``
is set, both return None and the caller uses the torch path (attention: the same results up to
rounding; sampling: the same distribution, though a draw at a rounding edge may differ).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path

import torch

from emlab.models.loading import cache_root

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("native.c")
# Reassociation lets the compiler vectorise the dot products; unlike -ffast-math these flags keep
# infinities and NaNs and link no start-up code that would change the process's float modes.
FLAGS = [
    "-O3",
    "-march=native",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fassociative-math",
    "-fopenmp",
    "-shared",
    "-fPIC",
]
_DTYPES = (torch.bfloat16, torch.float32)
_lock = threading.Lock()
U_MAX = 1.0 - 2.0**-20
"""Uniforms are capped just below 1 so that u x total stays below the total after rounding: the
searched position then always has mass, with no extra pass to check."""


def enabled() -> bool:
    return os.environ.get("EMLAB_NATIVE", "1") != "0"


def _cpu_id() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next((ln for ln in lines if ln.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor()


def _build(compiler: str, target: Path) -> str:
    """Compile to a temporary file, then move it into place; returns the error, or ""."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [compiler, *FLAGS, str(SOURCE), "-o", tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        os.unlink(tmp)
        return done.stderr[-2000:] or f"exit status {done.returncode}"
    os.replace(tmp, target)
    return ""


@cache
def library() -> ctypes.CDLL | None:
    """The built kernel library, or None (the reason is logged once)."""
    named = os.environ.get("CC")
    compiler = shutil.which(named) if named else shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning(
            "no C compiler found (%s): decoding runs on the slower torch path",
            f"CC={named}" if named else "cc, gcc",
        )
        return None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(), _cpu_id().encode()])
    ).hexdigest()[:16]
    target = cache_root() / "kernels" / f"native-{key}.so"
    try:
        error = "" if target.exists() else _build(compiler, target)
        lib = None if error else ctypes.CDLL(str(target))
    except OSError as exc:  # an unwritable cache, a library that does not load
        error, lib = str(exc), None
    if lib is None:
        log.warning(
            "building or loading %s with %s failed; decoding runs on the slower torch path:\n%s",
            SOURCE.name,
            compiler,
            error,
        )
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn = lib.emlab_decode_attention
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ptr, i64, i64, ptr, i64, i64, i64, ptr, i64, i64, i64, ptr, ptr]
    fn.argtypes += [i64, i64, i64, i64, i64, i64, i64, ctypes.c_float, ctypes.c_int]
    fn = lib.emlab_sample_rows
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ptr, i64, i64, i64, ptr, ptr, ptr, ctypes.c_int]
    return lib


def available(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``attend`` runs for tensors of this device and dtype (builds the kernel once)."""
    if not (enabled() and device.type == "cpu" and dtype in _DTYPES):
        return False
    with _lock:
        return library() is not None


def attend(
    q: torch.Tensor, key: torch.Tensor, value: torch.Tensor, starts: torch.Tensor, scale: float
) -> torch.Tensor | None:
    """Attention of q ``[B, H, D]`` over key/value ``[B, KV, T, D]``, row b over columns
    ``[starts[b], T)``; returns ``[B, H, D]``, or None where the kernel cannot run."""
    if not (key.dtype == value.dtype == q.dtype and key.device == value.device == q.device):
        return None
    if q.stride(-1) != 1 or key.stride(-1) != 1 or value.stride(-1) != 1:
        return None
    if not available(q.device, q.dtype):
        return None
    fn = library().emlab_decode_attention  # type: ignore[union-attr]
    bf16 = int(q.dtype == torch.bfloat16)
    rows, heads, dim = q.shape
    kv_heads, cols = key.shape[1], key.shape[2]
    starts = starts.to(torch.int64).contiguous()
    out = torch.empty_like(q, memory_format=torch.contiguous_format)

    code = fn(
        bf16, q.data_ptr(), q.stride(0), q.stride(1),
        key.data_ptr(), key.stride(0), key.stride(1), key.stride(2),
        value.data_ptr(), value.stride(0), value.stride(1), value.stride(2),
        starts.data_ptr(), out.data_ptr(), out.stride(0), out.stride(1),
        rows, heads, kv_heads, cols, dim, scale, torch.get_num_threads(),
    )  # fmt: skip
    if code:
        return None  # shapes outside the kernel's limits (head_dim > 256, > 16 heads per group)
    return out


def sample(logits: torch.Tensor, temps: torch.Tensor, u: torch.Tensor) -> torch.Tensor | None:
    """One token per row of ``logits`` ``[B, V]`` from softmax(logits / temps) by inverse CDF with
    the row's uniform ``u`` (temperatures > 0); None where the kernel cannot run."""
    if logits.stride(-1) != 1 or not available(logits.device, logits.dtype):
        return None
    fn = library().emlab_sample_rows  # type: ignore[union-attr]
    rows, vocab = logits.shape
    inv = (1.0 / temps.float()).contiguous()
    uu = u.to(torch.float64).clamp(max=U_MAX).contiguous()
    out = torch.empty(rows, dtype=torch.int64)
    code = fn(
        int(logits.dtype == torch.bfloat16), logits.data_ptr(), logits.stride(0), rows, vocab,
        inv.data_ptr(), uu.data_ptr(), out.data_ptr(), torch.get_num_threads(),
    )  # fmt: skip
    return None if code else out
