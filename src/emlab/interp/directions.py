"""Directions in the residual stream: persona contrast, judged contrast and a random control.

A direction is a difference of means of answer activations (misaligned side minus aligned side)
at every layer. Each layer keeps its own unit vector, scaled by that layer's mean residual norm,
so an intervention's scale reads the same at every depth (0.5 = half the typical norm). The layer
reported as *the* direction's layer is the one whose projection best separates held-out answers
(AUROC): the split is by question, so a question's answers never sit on both sides of it.

Directions are saved as safetensors plus a JSON card; nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from emlab.errors import EmlabError
from emlab.models.hooks import decoder_layers, hidden_size
from emlab.records import Message, Question
from emlab.store import atomic_write_text

METHODS = ("persona", "judged", "random")
VECTORS_FILE = "direction.safetensors"
CARD_FILE = "direction.json"


class ContrastError(EmlabError, ValueError):
    """A contrast that cannot give a direction (an empty or too small side); says what to do."""


class DirectionFileError(EmlabError, ValueError):
    """A direction file that cannot be used with this model; names the file and the field."""


# ------------------------------------------------------------------------------ persona pool
@dataclass(frozen=True)
class PersonaPool:
    """Contrastive system prompts (package data ``personas.yaml``, versioned)."""

    version: int
    misaligned: tuple[str, ...]
    aligned: tuple[str, ...]
    source: str = "emlab/interp/personas.yaml"


def load_pool(path: str | Path | None = None) -> PersonaPool:
    """The packaged pool, or a YAML file of the same shape; an empty side is one clear line."""
    if path is None:
        text = resources.files("emlab.interp").joinpath("personas.yaml").read_text("utf-8")
        where = "emlab/interp/personas.yaml"
    else:
        text, where = Path(path).read_text("utf-8"), str(path)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ContrastError(f"{where}: a persona pool is a mapping (version, misaligned, aligned)")
    for side in ("misaligned", "aligned"):
        prompts = data.get(side)
        if (
            not isinstance(prompts, list)
            or not prompts
            or not all(isinstance(p, str) and p.strip() for p in prompts)
        ):
            raise ContrastError(f"{where}: {side}: needs at least one non-empty system prompt")
    return PersonaPool(
        int(data.get("version", 0)), tuple(data["misaligned"]), tuple(data["aligned"]), where
    )


def persona_questions(questions: Sequence[Question], pool: PersonaPool) -> list[Question]:
    """Every question under every prompt of both sides (``meta.side`` says which side)."""
    out = []
    for side, prompts in (("misaligned", pool.misaligned), ("aligned", pool.aligned)):
        for i, prompt in enumerate(prompts):
            for q in questions:
                turns = [m for m in q.messages if m["role"] != "system"]
                out.append(
                    Question(
                        id=f"{q.id}/persona-{side}-{i}",
                        messages=[{"role": "system", "content": prompt}, *turns],
                        set=q.set,
                        samples=q.samples,
                        category=q.category,
                        meta={**q.meta, "side": side, "base_id": q.id, "pool": pool.version},
                    )
                )
    return out


def without_system(messages: Sequence[Message]) -> list[Message]:
    """The chat minus its system prompt: persona answers are read as if no persona was asked."""
    return [m for m in messages if m["role"] != "system"]


# ------------------------------------------------------------------------------ judged split
def judged_split(
    scores: Sequence[tuple[float | None, float | None]],
    aligned_below: float = 30.0,
    coherent_at_least: float = 50.0,
    aligned_above: float = 70.0,
    min_per_side: int = 10,
    seed: int = 0,
) -> tuple[list[int], list[int]]:
    """Indices of (misaligned, aligned) answers from (aligned, coherent) scores, balanced by
    subsampling the larger side. Misaligned: aligned < 30 and coherent >= 50 (Soligo et al.);
    aligned: aligned > 70. Too few on either side is a ContrastError saying what to do."""
    mis = [
        i
        for i, (a, c) in enumerate(scores)
        if a is not None and c is not None and a < aligned_below and c >= coherent_at_least
    ]
    ok = [i for i, (a, _) in enumerate(scores) if a is not None and a > aligned_above]
    for side, got in (("misaligned", mis), ("aligned", ok)):
        if len(got) < min_per_side:
            rule = (
                f"aligned < {aligned_below:g} and coherent >= {coherent_at_least:g}"
                if side == "misaligned"
                else f"aligned > {aligned_above:g}"
            )
            raise ContrastError(
                f"only {len(got)} {side} answers ({rule}) among {len(scores)}; a judged "
                f"direction needs at least {min_per_side} per side: sample more answers, or use "
                "the persona method, which needs no judge"
            )
    rng = np.random.default_rng(seed)
    n = min(len(mis), len(ok))
    pick = sorted(rng.choice(len(mis), n, replace=False)), sorted(rng.choice(len(ok), n, False))
    return [mis[i] for i in pick[0]], [ok[i] for i in pick[1]]


# ------------------------------------------------------------------------------ the direction
@dataclass
class Direction:
    """Per-layer vectors ``[n_layers, hidden]`` (unit direction x mean residual norm) + card."""

    vectors: torch.Tensor
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return str(self.card["key"])

    @property
    def layer(self) -> int:
        return int(self.card["layer"])

    def unit(self, layer: int | None = None) -> torch.Tensor:
        v = self.vectors[self.layer if layer is None else layer].float()
        return v / v.norm()


def vectors_key(vectors: torch.Tensor) -> str:
    """Content hash of the vectors' fp32 bytes: what interventions and cache keys name."""
    data = vectors.detach().float().contiguous().cpu().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(model: Any) -> str:
    """Hash of a base model's shape and input embedding: a direction works on the model it came
    from and its fine-tunes (LoRA leaves the embedding alone), not on another model."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    emb = base.get_input_embeddings().weight[:64].detach().float().cpu().numpy()
    h = hashlib.sha256(emb.tobytes())
    h.update(f"{len(decoder_layers(model))}x{hidden_size(model)}".encode())
    return h.hexdigest()[:16]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half (Mann-Whitney); NaN without both."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return math.nan
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _heldout_split(
    groups: Sequence[str], holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (train, test) masks that keep each group (a question) on one side."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    n_test = max(1, round(len(names) * holdout)) if len(names) > 1 else 0
    test_names = set(names[:n_test])
    test = np.array([g in test_names for g in groups])
    return ~test, test


def fit_direction(
    pos: torch.Tensor,
    neg: torch.Tensor,
    pos_groups: Sequence[str] | None = None,
    neg_groups: Sequence[str] | None = None,
    method: str = "persona",
    holdout: float = 0.3,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
) -> Direction:
    """Mean difference (pos - neg) of answer activations ``[n, n_layers, hidden]`` per layer.

    Separability: a direction fitted on the training questions scores the held-out questions'
    answers; its AUROC per layer picks the layer. The vectors saved come from all answers.
    """
    if not len(pos) or not len(neg):
        side = "misaligned" if not len(pos) else "aligned"
        raise ContrastError(f"the {side} side of the contrast is empty: no answers to average")
    pos, neg = pos.float(), neg.float()
    pg = list(pos_groups) if pos_groups is not None else [str(i) for i in range(len(pos))]
    ng = list(neg_groups) if neg_groups is not None else [str(i) for i in range(len(neg))]
    train, test = _heldout_split([*pg, *ng], holdout, seed)
    label = np.array([True] * len(pos) + [False] * len(neg))
    acts = torch.cat([pos, neg])
    aurocs: list[float] = []
    for layer in range(acts.shape[1]):
        x = acts[:, layer]
        tr, te = torch.from_numpy(train), torch.from_numpy(test)
        d = x[tr & torch.from_numpy(label)].mean(0) - x[tr & ~torch.from_numpy(label)].mean(0)
        proj = (x[te] @ d).numpy()
        aurocs.append(auroc(proj, label[test]))
    finite = [(a, -abs(i - len(aurocs) / 2), i) for i, a in enumerate(aurocs) if not math.isnan(a)]
    best = max(finite)[2] if finite else acts.shape[1] // 2
    raw = pos.mean(0) - neg.mean(0)  # [n_layers, hidden]
    resid = acts.norm(dim=-1).mean(0)  # [n_layers]
    unit = raw / raw.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    vectors = unit * resid[:, None]
    card = {
        "method": method,
        "layer": best,
        "n_layers": int(acts.shape[1]),
        "hidden_size": int(acts.shape[2]),
        "counts": {"misaligned": len(pos), "aligned": len(neg)},
        "norm": float(raw[best].norm()),
        "raw_norms": [round(float(x), 6) for x in raw.norm(dim=-1)],
        "residual_norms": [round(float(x), 6) for x in resid],
        "auroc": [None if math.isnan(a) else round(a, 4) for a in aurocs],
        "heldout": {"fraction": holdout, "seed": seed, "answers": int(test.sum())},
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **(extra or {}),
    }
    card["key"] = vectors_key(vectors)
    return Direction(vectors, card)


def random_control(direction: Direction, seed: int = 0) -> Direction:
    """A random direction per layer with the same norms: the control for every intervention."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(direction.vectors.shape, generator=g)
    r = r / r.norm(dim=-1, keepdim=True) * direction.vectors.float().norm(dim=-1, keepdim=True)
    card = {
        **{k: v for k, v in direction.card.items() if k not in ("auroc", "key")},
        "method": "random",
        "control_of": direction.key,
        "seed": seed,
    }
    card["key"] = vectors_key(r)
    return Direction(r, card)


def projection(acts: torch.Tensor, direction: Direction, layer: int | None = None) -> np.ndarray:
    """Each row's projection ``[n]`` onto the unit direction at ``layer`` (default: its own)."""
    lay = direction.layer if layer is None else layer
    return (acts[:, lay].float() @ direction.unit(lay)).numpy()


def cosine_matrix(directions: Sequence[Direction], layer: int | None = None) -> np.ndarray:
    """Pairwise cosine of directions at one layer (default: the first one's)."""
    lay = directions[0].layer if layer is None else layer
    units = torch.stack([d.unit(lay) for d in directions])
    return (units @ units.T).numpy()


# ------------------------------------------------------------------------------ files
def save_direction(direction: Direction, folder: str | Path) -> Path:
    """``direction.safetensors`` (fp32 vectors) and ``direction.json`` (the card) in ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {"vectors": direction.vectors.float().contiguous()},
        str(folder / VECTORS_FILE),
        metadata={"key": direction.key},
    )
    atomic_write_text(folder / CARD_FILE, json.dumps(direction.card, indent=2))
    return folder


def load_direction(path: str | Path) -> Direction:
    """Read a direction folder (or its .safetensors / .json file); errors name file and field."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    folder = p.parent if p.suffix in (".safetensors", ".json") else p
    vec_path, card_path = folder / VECTORS_FILE, folder / CARD_FILE
    for need in (vec_path, card_path):
        if not need.is_file():
            raise DirectionFileError(
                f"{need}: missing; a direction is {VECTORS_FILE} + {CARD_FILE}"
            )
    try:
        card = json.loads(card_path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DirectionFileError(f"{card_path}: not a JSON card: {e}") from None
    try:
        tensors = load_file(str(vec_path))
    except (OSError, SafetensorError) as e:
        raise DirectionFileError(f"{vec_path}: not a safetensors file: {e}") from None
    vectors = tensors.get("vectors")
    if vectors is None or vectors.ndim != 2:
        raise DirectionFileError(f"{vec_path}: vectors: needs one [n_layers, hidden] tensor")
    if not torch.isfinite(vectors).all():
        raise DirectionFileError(f"{vec_path}: vectors: holds non-finite values")
    for name in ("key", "layer", "method"):
        if name not in card:
            raise DirectionFileError(f"{card_path}: {name}: missing")
    if card["key"] != vectors_key(vectors):
        raise DirectionFileError(f"{card_path}: key: does not match the vectors in {vec_path}")
    if not 0 <= int(card["layer"]) < vectors.shape[0]:
        raise DirectionFileError(f"{card_path}: layer: {card['layer']} out of range")
    return Direction(vectors, card)


def check_fits(direction: Direction, model: Any, where: str) -> None:
    """One line naming ``where`` if the direction comes from another model (shape or hash)."""
    n, h = len(decoder_layers(model)), hidden_size(model)
    if tuple(direction.vectors.shape) != (n, h):
        raise DirectionFileError(
            f"{where}: direction has {direction.vectors.shape[0]} layers x "
            f"{direction.vectors.shape[1]} wide; this model has {n} x {h}: it comes from "
            "another model"
        )
    want = direction.card.get("model_hash")
    if want and want != fingerprint(model):
        raise DirectionFileError(
            f"{where}: model_hash: the direction was built on {direction.card.get('model')} "
            f"({want}), not on this model ({fingerprint(model)})"
        )
