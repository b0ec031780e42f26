"""Resumable training state in ``work_dir``: written atomically, verified on load, never unpickled.

A run killed at any moment must resume to the same weights it would have reached. The state holds
everything that decides the rest of the run (trainable weights, optimizer moments, RNG states,
counters); the data position is the step number because the batch plan is a pure function of the
seed. Each state is two files: ``step-N.safetensors`` (every tensor: weights, optimizer moments,
the torch RNG states as uint8 tensors) and ``step-N.json`` (everything else: step, fingerprint,
counters, the optimizer's hyper-parameters, Python's RNG state, and the SHA-256 of the tensor
file). The JSON is written last, so it marks a complete state; a torn or corrupted tensor file
fails the checksum, is reported, and the previous state is used instead.

Why no pickle (``torch.save``/``torch.load``): the output and run folders are user-writable, and
unpickling a crafted file runs arbitrary code. The checksum authenticates nothing (whoever writes
the state writes it too), so the format itself must be inert: safetensors and JSON can only
describe data. A state that does not parse, or does not fit the model, is reported and ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from emlab.errors import EmlabError
from emlab.store import atomic_write_bytes, atomic_write_text

log = logging.getLogger("emlab.train")

KEEP_STATES = 2
"""States kept on disk: the newest plus one to fall back to if the newest is damaged."""

FORMAT = "emlab-train-state/2"
"""Bumped when the layout changes; manifests of any other format (e.g. the pickled ``.pt`` states
of earlier versions) are never loaded."""


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


class StateError(EmlabError, ValueError):
    """A state file that does not parse or does not fit (reported, then ignored)."""


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


def _split_optimizer(opt: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The optimizer's state_dict as JSON, its tensors moved into ``tensors`` (by name)."""
    state: dict[str, dict[str, Any]] = {}
    for pid, entries in opt["state"].items():
        state[str(pid)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{name}"] = value.detach().cpu().contiguous()
                state[str(pid)][name] = {"tensor": f"optimizer/{pid}/{name}"}
            else:
                state[str(pid)][name] = {"value": _to_json(value)}
    return {"state": state, "param_groups": [_to_json(g) for g in opt["param_groups"]]}


def _join_optimizer(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for pid, entries in meta["state"].items():
        state[int(pid)] = {
            name: tensors[e["tensor"]] if "tensor" in e else _from_json(e["value"])
            for name, e in entries.items()
        }
    return {"state": state, "param_groups": [_from_json(g) for g in meta["param_groups"]]}


def _to_json(value: Any) -> Any:
    """Plain data as JSON that keeps tuples tuples (AdamW's ``betas``) and floats exact."""
    if isinstance(value, tuple):
        return {"tuple": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a training state")


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"tuple"}:
            return tuple(_from_json(v) for v in value["tuple"])
        if set(value) == {"dict"}:
            return {_from_json(k): _from_json(v) for k, v in value["dict"]}
        raise StateError(f"unexpected object in state: {sorted(value)}")
    return value


def encode_state(state: TrainState) -> tuple[dict[str, Any], bytes]:
    """The state as a JSON manifest plus one safetensors blob (what is written and what is sent
    to the other processes of a launch)."""
    tensors = {f"trainable/{k}": v.detach().cpu().contiguous() for k, v in state.trainable.items()}
    optimizer = _split_optimizer(state.optimizer, tensors)
    tensors["rng/torch"] = state.rng["torch"]
    for i, s in enumerate(state.rng.get("cuda", [])):
        tensors[f"rng/cuda/{i}"] = s.cpu()
    blob = save_tensors(tensors)
    manifest = {
        "format": FORMAT,
        "step": state.step,
        "fingerprint": state.fingerprint,
        "tokens": state.tokens,
        "seconds": state.seconds,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "trainable": sorted(state.trainable),
        "optimizer": optimizer,
        "rng_python": _to_json(state.rng["python"]),
        "rng_cuda": len(state.rng.get("cuda", [])),
    }
    return manifest, blob


def save_state(work_dir: Path, state: TrainState) -> Path:
    """Write ``state/step-N.safetensors`` then its manifest; keep only the newest KEEP_STATES."""
    d = _state_dir(work_dir)
    d.mkdir(parents=True, exist_ok=True)
    manifest, blob = encode_state(state)
    path = d / f"step-{state.step:08d}.safetensors"
    atomic_write_bytes(path, blob)
    atomic_write_text(path.with_suffix(".json"), json.dumps(manifest))
    for old in sorted(d.glob("step-*.json"))[:-KEEP_STATES]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.with_suffix(".pt").unlink(missing_ok=True)  # left by an older emlab; never read
    return path


def state_to_bytes(state: TrainState | None) -> bytes:
    """One byte string for a launch's broadcast: 8-byte manifest length, manifest, tensors;
    empty for no state."""
    if state is None:
        return b""
    manifest, blob = encode_state(state)
    head = json.dumps(manifest).encode()
    return len(head).to_bytes(8, "little") + head + blob


def state_from_bytes(data: bytes) -> TrainState | None:
    """Inverse of ``state_to_bytes``, with the same checks as a state read from disk."""
    if not data:
        return None
    n = int.from_bytes(data[:8], "little")
    try:
        manifest = json.loads(data[8 : 8 + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StateError(f"broadcast state manifest does not parse: {e}") from None
    blob = data[8 + n :]
    if manifest.get("format") != FORMAT or hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise StateError("broadcast state is damaged (format or checksum)")
    return _read(manifest, blob)


def _python_rng(value: Any) -> tuple[Any, ...]:
    """Python's ``random.getstate()`` tuple from its JSON, checked so ``setstate`` cannot fail."""
    got = _from_json(value)
    if not (
        isinstance(got, tuple)
        and len(got) == 3
        and isinstance(got[1], tuple)
        and all(isinstance(x, int) for x in got[1])
    ):
        raise StateError("python RNG state is malformed")
    return got


def _read(manifest: dict[str, Any], blob: bytes) -> TrainState:
    try:
        tensors = load_tensors(blob)
    except SafetensorError as e:
        raise StateError(f"tensor file does not parse: {e}") from None
    rng: dict[str, Any] = {"python": _python_rng(manifest["rng_python"])}
    rng["torch"] = tensors["rng/torch"]
    if rng["torch"].dtype != torch.uint8:
        raise StateError("torch RNG state is not uint8")
    if manifest["rng_cuda"]:
        rng["cuda"] = [tensors[f"rng/cuda/{i}"] for i in range(int(manifest["rng_cuda"]))]
    return TrainState(
        step=int(manifest["step"]),
        fingerprint=str(manifest["fingerprint"]),
        trainable={k: tensors[f"trainable/{k}"] for k in manifest["trainable"]},
        optimizer=_join_optimizer(manifest["optimizer"], tensors),
        rng=rng,
        tokens=int(manifest["tokens"]),
        seconds=float(manifest["seconds"]),
    )


def load_latest_state(work_dir: Path, fingerprint: str) -> TrainState | None:
    """The newest state that passes its checksum and belongs to this run, or None.

    Damaged states are reported and skipped (the older one is used). A state from other inputs
    (different data, recipe or seed) is never resumed from: it would silently mix two runs. Only
    safetensors and JSON are read: a crafted file can at worst be rejected, never run code.
    """
    d = _state_dir(work_dir)
    if not d.is_dir():
        return None
    for manifest_path in sorted(d.glob("step-*.json"), reverse=True):
        # the tensor file's name is derived here, never taken from the manifest
        tensor_path = manifest_path.with_suffix(".safetensors")
        try:
            manifest = json.loads(manifest_path.read_text())
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                log.warning(
                    "training state %s has an unknown or older format (earlier emlab versions "
                    "pickled their state, which is never loaded); ignoring it",
                    manifest_path,
                )
                continue
            if manifest["fingerprint"] != fingerprint:
                log.warning(
                    "training state in %s belongs to other inputs (fingerprint %s, expected %s); "
                    "starting from scratch",
                    d,
                    manifest["fingerprint"],
                    fingerprint,
                )
                return None
            blob = tensor_path.read_bytes()
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning(
                "training state %s is unreadable (%s); trying an older one", manifest_path, e
            )
            continue
        if hashlib.sha256(blob).hexdigest() != manifest.get("sha256"):
            log.warning(
                "training state %s is corrupted (checksum mismatch); trying an older one",
                tensor_path,
            )
            continue
        try:
            return _read(manifest, blob)
        except (StateError, KeyError, TypeError, ValueError, AttributeError) as e:
            log.warning(
                "training state %s is malformed (%s: %s); trying an older one",
                tensor_path,
                type(e).__name__,
                e,
            )
    return None


def check_fits(state: TrainState, params: Mapping[str, torch.Tensor]) -> None:
    """Raise StateError unless ``state`` holds exactly these parameters with these shapes.

    The fingerprint already says the state came from the same inputs; this guards against a
    hand-edited or crafted state that would otherwise fail half-way through restoring."""
    if set(state.trainable) != set(params):
        raise StateError("its parameters are not the model's trainable parameters")
    for name, value in state.trainable.items():
        if value.shape != params[name].shape:
            raise StateError(
                f"{name} has shape {tuple(value.shape)}, not {tuple(params[name].shape)}"
            )
    # the optimizer numbers parameters in the order they were handed to it (``params``' order)
    shapes = [p.shape for p in params.values()]
    for pid, entries in state.optimizer["state"].items():
        if not 0 <= pid < len(shapes):
            raise StateError(f"optimizer state for parameter {pid} of {len(shapes)}")
        for key, value in entries.items():
            if key != "step" and isinstance(value, torch.Tensor) and value.shape != shapes[pid]:
                raise StateError(f"optimizer {key} of parameter {pid} has the wrong shape")


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder into place, replacing an older one of the same name."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
