"""Resumable training state in ``work_dir``: written atomically, verified on load.

A run killed at any moment must resume to the same weights it would have reached. The state file
holds everything that decides the rest of the run (trainable weights, optimizer moments, RNG
states, counters); the data position is the step number because the batch plan is a pure function
of the seed. Each state file has a manifest with its SHA-256, written after the file: a torn or
corrupted file fails the check, is reported, and the previous state is used instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emlab.store import atomic_write_bytes, atomic_write_text

log = logging.getLogger("emlab.train")

KEEP_STATES = 2
"""States kept on disk: the newest plus one to fall back to if the newest is damaged."""


@dataclass
class TrainState:
    """Everything needed to continue a run after ``step`` finished steps."""

    step: int
    fingerprint: str
    trainable: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    tokens: int
    seconds: float


def _state_dir(work_dir: Path) -> Path:
    return work_dir / "state"


def capture_rng() -> dict[str, Any]:
    rng: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def restore_rng(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        # a state may come from a machine or launch that saw another number of GPUs
        for i, state in enumerate(rng["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, i)


def save_state(work_dir: Path, state: TrainState) -> Path:
    """Write ``state/step-N.pt`` then its manifest; prune all but the newest KEEP_STATES."""
    d = _state_dir(work_dir)
    d.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(
        {
            "step": state.step,
            "fingerprint": state.fingerprint,
            "trainable": {k: v.detach().cpu() for k, v in state.trainable.items()},
            "optimizer": state.optimizer,
            "rng": state.rng,
            "tokens": state.tokens,
            "seconds": state.seconds,
        },
        buf,
    )
    blob = buf.getvalue()
    path = d / f"step-{state.step:08d}.pt"
    atomic_write_bytes(path, blob)
    manifest = {"step": state.step, "file": path.name, "sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_text(path.with_suffix(".json"), json.dumps(manifest))
    for old in sorted(d.glob("step-*.json"))[:-KEEP_STATES]:
        old.unlink(missing_ok=True)
        old.with_suffix(".pt").unlink(missing_ok=True)
    return path


def load_latest_state(work_dir: Path, fingerprint: str) -> TrainState | None:
    """The newest state that passes its checksum and belongs to this run, or None.

    Damaged states are reported and skipped (the older one is used). A state from other inputs
    (different data, recipe or seed) is never resumed from: it would silently mix two runs.
    """
    d = _state_dir(work_dir)
    if not d.is_dir():
        return None
    for manifest_path in sorted(d.glob("step-*.json"), reverse=True):
        try:
            manifest = json.loads(manifest_path.read_text())
            blob = (d / manifest["file"]).read_bytes()
        except (OSError, ValueError, KeyError) as e:
            log.warning(
                "training state %s is unreadable (%s); trying an older one", manifest_path, e
            )
            continue
        if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
            log.warning(
                "training state %s is corrupted (checksum mismatch); trying an older one",
                d / manifest["file"],
            )
            continue
        raw = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
        if raw["fingerprint"] != fingerprint:
            log.warning(
                "training state in %s belongs to other inputs (fingerprint %s, expected %s); "
                "starting from scratch",
                d,
                raw["fingerprint"],
                fingerprint,
            )
            return None
        return TrainState(
            step=raw["step"],
            fingerprint=raw["fingerprint"],
            trainable=raw["trainable"],
            optimizer=raw["optimizer"],
            rng=raw["rng"],
            tokens=raw["tokens"],
            seconds=raw["seconds"],
        )
    return None


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder into place, replacing an older one of the same name."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
