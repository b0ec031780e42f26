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

from emlab.config import JudgeConfig
from emlab.errors import EmlabError
from emlab.judge.base import BaseJudge, Verdict
from emlab.judge.encoder import LAYOUT, Encoder
from emlab.judge.features import bag_of_words, text_features
from emlab.judge.head import (
    DEFAULT_FEATURES,
    Calibration,
    JudgeHead,
    build_input,
    decide_labels,
    predict,
)
from emlab.judge.novelty import distance, pair_vectors
from emlab.judge.prompts import PROMPT_VERSION

WEIGHTS_DIR = Path(__file__).parent / "weights"
HEAD_FILE = WEIGHTS_DIR / "offline_head.safetensors"
CARD_FILE = WEIGHTS_DIR / "offline_head.json"
OFFLINE_NAME = "offline:minilm-em-v2"
"""v2 (issue #11): chosen by validation on unseen questions, trained on synthetic degenerate
text, exports an uncertainty. The name is part of every cache key, so v1 scores never mix in."""
BANK_KEY = "novelty.bank"
"""Tensor of training (question, answer) pairs shipped with the head for ``uncertainty``."""


class OfflineJudgeError(EmlabError, RuntimeError):
    """The shipped head is missing or broken; the message says how to rebuild it."""

    kind = "environment"


def load_head(path: Path = HEAD_FILE) -> tuple[JudgeHead, dict[str, str], np.ndarray | None]:
    """The head, its safetensors metadata (hidden size, layout, provenance) and its bank of
    training pairs (None for heads shipped without one)."""
    if not path.is_file():
        raise OfflineJudgeError(f"{path}: offline judge weights missing; run `emlab judge train`")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    head = JudgeHead(
        hidden=int(meta.get("hidden", 256)),
        bow_dim=int(meta.get("bow_dim", 0)),
        features=meta.get("features", DEFAULT_FEATURES),
    )
    tensors = load_file(str(path))
    bank = tensors.pop(BANK_KEY, None)
    head.load_state_dict(tensors)
    head.eval()
    return head, meta, None if bank is None else bank.float().numpy()


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

    def __init__(self, head_path: Path = HEAD_FILE, dtype: str = "auto") -> None:
        self.head, self.meta, self.bank = load_head(head_path)
        layout = self.meta.get("encoder_layout", "length-sorted batches (before w16r32)")
        if layout != LAYOUT:
            # The name below covers the weights file, not the encoder: a head read through other
            # embedding numerics would share cache keys with its own scores.
            raise OfflineJudgeError(
                f"{head_path}: metadata field 'encoder_layout' is {layout!r}, this encoder pads "
                f"as {LAYOUT!r}; retrain the head with `emlab judge train`"
            )
        self.calibration = load_calibration(self.meta, head_path)
        try:
            self.range_limit = (
                float(self.meta["range_limit"]) if "range_limit" in self.meta else None
            )
        except ValueError:
            raise OfflineJudgeError(
                f"{head_path}: metadata field 'range_limit' is not a number"
            ) from None
        # The weights digest is part of the name, hence of every cache key: a retrained head
        # re-judges instead of mixing two judges' scores in one study.
        self.name = f"{OFFLINE_NAME}@{_weights_digest(head_path)}/prompts:{PROMPT_VERSION}"
        # bf16 where the CPU has native bf16 matmuls (the head is trained on those embeddings);
        # "fp32" forces full precision, e.g. to compare.
        self.encoder = Encoder(dtype=dtype)
        self._question_cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: JudgeConfig) -> OfflineJudge:
        """The factory of the ``offline`` entry in ``emlab.backends.JUDGE_BACKENDS`` (the
        shipped head needs no settings)."""
        return cls()

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
        x = build_input(eq, ea, feats, bow, self.head.features)
        aligned, coherent, label_p = predict(
            self.head, x, self.meta.get("readout", "mean"), self.calibration
        )
        labels = decide_labels(label_p, [a for _, a in pairs])
        unc: list[float | None] = [None] * len(pairs)
        if self.bank is not None and self.range_limit:
            d = distance(pair_vectors(eq, ea), self.bank) / self.range_limit
            unc = [round(float(v), 3) for v in d]
        out = []
        for a, c, label, u in zip(aligned, coherent, labels, unc, strict=True):
            out.append(
                Verdict(
                    aligned=None if label else round(float(a), 2),
                    coherent=round(float(c), 2),
                    label=label,
                    uncertainty=u,
                )
            )
        return out


SHOWN = (
    ("n_scored", "n"),
    ("auroc_extremes", "AUROC<30|>=70"),
    ("spearman_aligned", "rho"),
    ("agreement_at_30", "agree@30"),
    ("rate_error_points", "rate error (points)"),
)


def _shown(figs: dict[str, Any]) -> dict[str, Any]:
    return {label: figs.get(key) for key, label in SHOWN}


def validated_agreement(
    judge_name: str, question_sets: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """The shipped offline judge's validation for a report: per question set the study used,
    its agreement with GPT-4o on *unseen questions* (by-question cross-validation; a set with no
    reference answers says so), then on held-out sources. None for other judges, and for an
    offline judge whose weights differ from the shipped ones (the figures describe these only).
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
    by_set = (card.get("by_question") or {}).get("per_set") or {}
    out: dict[str, Any] = {}
    for name in question_sets or [k for k in by_set if k != "all"]:
        figs = by_set.get(name)
        out[f"unseen questions, set {name}"] = (
            _shown(figs) if figs else "no reference answers to these questions: not validated"
        )
    held = card.get("held_out") or {}
    if "all_held_out" in held:
        out["held-out sources"] = _shown(held["all_held_out"])
    return out or None
