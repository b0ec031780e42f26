"""A resumable on-disk cache of sentence embeddings, keyed by text hash.

Embedding tens of thousands of answers takes many minutes on a 2-core CPU; training the head
takes seconds. Caching per text lets the head be re-trained (other seeds, sizes, features) and an
interrupted embedding run be resumed without recomputing anything.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from emlab.judge.encoder import EMBED_DIM, LAYOUT, MAX_TOKENS, Encoder


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def default_cache_dir(dtype: str = "float32") -> Path:
    """Per truncation, dtype and padding layout: each changes the embeddings slightly, and a head
    must be trained on exactly what the encoder gives, so no two share a cache."""
    base = os.environ.get("EMLAB_JUDGE_CACHE") or "/tmp/emlab_judge_embcache"
    return Path(base) / f"minilm-l6-{MAX_TOKENS}-{dtype}-{LAYOUT}"


class EmbeddingCache:
    """Chunked ``.npz`` files of (keys, vectors); new texts are appended as a new chunk."""

    def __init__(self, directory: Path | None = None, dtype: str = "float32") -> None:
        self.dir = directory or default_cache_dir(dtype)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        for f in sorted(self.dir.glob("chunk_*.npz")):
            with np.load(f) as z:
                for k, v in zip(z["keys"], z["vectors"], strict=True):
                    self.vectors[str(k)] = v

    def embed(self, texts: list[str], encoder: Encoder, chunk: int = 1000) -> np.ndarray:
        """Vectors for ``texts`` (in order), computing and saving only the missing ones."""
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in self.vectors and k not in todo:
                todo[k] = t
        items = list(todo.items())
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            vecs = encoder.encode([t for _, t in part])
            n = len(list(self.dir.glob("chunk_*.npz")))
            tmp = self.dir / f".tmp_{os.getpid()}.npz"
            np.savez(tmp, keys=np.array([k for k, _ in part]), vectors=vecs)
            tmp.replace(self.dir / f"chunk_{n:05d}_{os.getpid()}.npz")
            for (k, _), v in zip(part, vecs, strict=True):
                self.vectors[k] = v
            print(f"embedded {start + len(part)}/{len(items)}", file=sys.stderr, flush=True)
        if not keys:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)
