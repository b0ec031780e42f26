"""Merge an adapter into its base model: a plain model folder any tool (vLLM, llama.cpp) loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from emlab.models import load_model


def export_merged(base_ref: str, adapter_dir: Path, out_dir: Path) -> Path:
    """Write base + adapter merged, as safetensors plus tokenizer, to ``out_dir``; return it.

    The merge runs in fp32 so that small adapter deltas are not rounded into the base weights
    twice; the folder is written beside ``out_dir`` and renamed, so a kill leaves no half model.
    """
    out_dir = Path(out_dir)
    loaded = load_model(base_ref, adapter=Path(adapter_dir), device="cpu", dtype="fp32", merge=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(str(tmp), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(tmp))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir
