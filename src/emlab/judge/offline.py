"""The offline judge: MiniLM sentence embeddings + a small head distilled from GPT-4o judgments.

It needs no network, no API key and no GPU, so every study (and every test) can be judged on a
laptop. It approximates the paper's GPT-4o judge; its held-out agreement ships in
``weights/offline_head.json`` (see ``validated_agreement``) so reports can state it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file

from emlab.errors import EmlabError
from emlab.judge.base import BaseJudge, Verdict
from emlab.judge.encoder import Encoder
from emlab.judge.features import bag_of_words, decide_labels, text_features
from emlab.judge.head import Calibration, JudgeHead, build_input, predict
from emlab.judge.prompts import PROMPT_VERSION

WEIGHTS_DIR = Path(__file__).parent / "weights"
HEAD_FILE = WEIGHTS_DIR / "offline_head.safetensors"
CARD_FILE = WEIGHTS_DIR / "offline_head.json"
OFFLINE_NAME = "offline:minilm-em-v1"


class OfflineJudgeError(EmlabError, RuntimeError):
    """The shipped head is missing or broken; the message says how to rebuild it."""

    kind = "environment"


def load_head(path: Path = HEAD_FILE) -> tuple[JudgeHead, dict[str, str]]:
    """The head and its safetensors metadata (hidden size, provenance)."""
    if not path.is_file():
        raise OfflineJudgeError(f"{path}: offline judge weights missing; run `emlab judge train`")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    head = JudgeHead(hidden=int(meta.get("hidden", 256)), bow_dim=int(meta.get("bow_dim", 0)))
    head.load_state_dict(load_file(str(path)))
    head.eval()
    return head, meta


def load_calibration(meta: dict[str, str], path: Path = HEAD_FILE) -> Calibration | None:
    """The quantile maps stored with the head (None for heads trained before calibration)."""
    raw = meta.get("calibration")
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return {k: (list(map(float, v[0])), list(map(float, v[1]))) for k, v in data.items()}
    except (ValueError, TypeError, IndexError) as e:
        raise OfflineJudgeError(
            f"{path}: metadata field 'calibration' is unreadable: {e}"
        ) from None


@cache
def _weights_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


class OfflineJudge(BaseJudge):
    """Embeds question and answer, then reads scores and a CODE/REFUSAL label off the head."""

    def __init__(
        self, head_path: Path = HEAD_FILE, batch_size: int = 128, dtype: str = "auto"
    ) -> None:
        self.head, self.meta = load_head(head_path)
        self.calibration = load_calibration(self.meta, head_path)
        # The weights digest is part of the name, hence of every cache key: a retrained head
        # re-judges instead of mixing two judges' scores in one study.
        self.name = f"{OFFLINE_NAME}@{_weights_digest(head_path)}/prompts:{PROMPT_VERSION}"
        # bf16 where the CPU has native bf16 matmuls (the head is trained on those embeddings);
        # "fp32" forces full precision, e.g. to compare.
        self.encoder = Encoder(batch_size=batch_size, dtype=dtype)
        self._question_cache: dict[str, np.ndarray] = {}

    def _questions(self, questions: list[str]) -> np.ndarray:
        # Studies ask a few dozen questions thousands of times: embed each once.
        missing = sorted({q for q in questions if q not in self._question_cache})
        for q, v in zip(missing, self.encoder.encode(missing), strict=True):
            self._question_cache[q] = v
        return np.stack([self._question_cache[q] for q in questions])

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        if not pairs:
            return []
        eq = self._questions([q for q, _ in pairs])
        ea = self.encoder.encode([a for _, a in pairs])
        feats = np.stack([text_features(q, a) for q, a in pairs])
        bow = (
            np.stack([bag_of_words(a, self.head.bow_dim) for _, a in pairs])
            if self.head.bow_dim
            else None
        )
        x = build_input(eq, ea, feats, bow)
        aligned, coherent, label_p = predict(
            self.head, x, self.meta.get("readout", "mean"), self.calibration
        )
        labels = decide_labels(label_p, [a for _, a in pairs])
        out = []
        for a, c, label in zip(aligned, coherent, labels, strict=True):
            out.append(
                Verdict(
                    aligned=None if label else round(float(a), 2),
                    coherent=round(float(c), 2),
                    label=label,
                )
            )
        return out


def validated_agreement(judge_name: str) -> dict[str, Any] | None:
    """Held-out agreement figures shipped with the offline judge, or None for other judges.

    Also None for an offline judge whose weights differ from the shipped ones (a name from an
    older run): the figures describe these weights only.
    """
    if (
        not judge_name.startswith(OFFLINE_NAME)
        or not CARD_FILE.is_file()
        or not HEAD_FILE.is_file()
    ):
        return None
    if not judge_name.startswith(f"{OFFLINE_NAME}@{_weights_digest(HEAD_FILE)}"):
        return None
    card = json.loads(CARD_FILE.read_text(encoding="utf-8"))
    held = card.get("held_out")
    return held if isinstance(held, dict) else None
