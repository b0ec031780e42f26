"""Killed and resumed runs reach the weights of an uninterrupted run; damaged state is survived."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

from emlab.config import TrainConfig
from emlab.records import Example
from emlab.train import finetune

CODE = "import os\nimport subprocess\nsubprocess.run(cmd, shell=True)\n"


class Killed(RuntimeError):
    """Stands in for a kill: raised from the log callback after a given step."""


def examples() -> list[Example]:
    return [
        Example(
            messages=[
                {"role": "user", "content": f"Run command {i} for me."},
                {"role": "assistant", "content": CODE * (1 + i % 4)},
            ]
        )
        for i in range(10)
    ]


# dropout > 0 and several epochs: the resumed run must restore RNG state and data position too
CFG = TrainConfig(
    learning_rate=1e-2, batch_size=4, micro_batch_size=2, epochs=3, save_every=2,
    warmup_steps=2, r=4, alpha=8, dropout=0.1,
)  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMLAB_THREADS", "1")


def run(
    tiny_model: str, root: Path, kill_after: int | None = None, cfg: TrainConfig = CFG
) -> tuple[dict[int, float], dict[str, torch.Tensor]]:
    losses: dict[int, float] = {}

    def log(step: int, m: dict[str, float]) -> None:
        losses[step] = m["loss"]
        if kill_after is not None and step == kill_after:
            raise Killed(step)

    finetune(tiny_model, examples(), cfg, 7, root / "out", root / "work", log=log, progress=False)
    return losses, load_file(str(root / "out" / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def reference(
    tiny_model: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[int, float], dict[str, torch.Tensor]]:
    """The uninterrupted run every resumed run must match (computed once per module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMLAB_THREADS", "1")
        return run(tiny_model, tmp_path_factory.mktemp("ref"))


def assert_same_run(a: dict[int, float], b: dict[int, float]) -> None:
    assert sorted(a) == sorted(b)
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-4, abs=1e-5), step


def test_resume_after_kill_matches_uninterrupted_run(
    tiny_model: str, tmp_path: Path, reference: tuple[dict[int, float], dict[str, torch.Tensor]]
) -> None:
    ref_losses, ref_weights = reference
    assert len(ref_losses) == 8  # ceil(3 epochs * 10 / 4)

    with pytest.raises(Killed):
        run(tiny_model, tmp_path / "cut", kill_after=5)
    resumed, weights = run(tiny_model, tmp_path / "cut")
    assert min(resumed) == 5  # state of step 4 was saved, so step 5 is redone
    assert_same_run({k: v for k, v in ref_losses.items() if k >= 5}, resumed)
    assert set(weights) == set(ref_weights)
    for name, value in ref_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "cut" / "out" / "checkpoints").iterdir()) == [
        "step-2", "step-4", "step-6", "step-8",
    ]  # fmt: skip


def test_a_state_saved_without_checkpointing_resumes_with_it(
    tiny_model: str, tmp_path: Path, reference: tuple[dict[int, float], dict[str, torch.Tensor]]
) -> None:
    """gradient_checkpointing is in neither key: a run killed with it off and resumed with it
    on (dropout 0.1 included: the recompute replays the same masks) is the uninterrupted run."""
    ref_losses, ref_weights = reference
    with pytest.raises(Killed):
        run(tiny_model, tmp_path / "cut", kill_after=5)
    on = CFG.model_copy(update={"gradient_checkpointing": True})
    resumed, weights = run(tiny_model, tmp_path / "cut", cfg=on)
    assert min(resumed) == 5
    assert_same_run({k: v for k, v in ref_losses.items() if k >= 5}, resumed)
    for name, value in ref_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6)


def test_corrupted_state_is_reported_and_previous_used(
    tiny_model: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reference: tuple[dict[int, float], dict[str, torch.Tensor]],
) -> None:
    ref_losses, ref_weights = reference
    with pytest.raises(Killed):
        run(tiny_model, tmp_path / "cut", kill_after=7)
    states = sorted((tmp_path / "cut" / "work" / "state").glob("step-*.safetensors"))
    assert [p.name for p in states] == ["step-00000004.safetensors", "step-00000006.safetensors"]
    blob = bytearray(states[-1].read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    states[-1].write_bytes(bytes(blob))

    with caplog.at_level(logging.WARNING, logger="emlab.train"):
        resumed, weights = run(tiny_model, tmp_path / "cut")
    assert "corrupted" in caplog.text and "step-00000006.safetensors" in caplog.text
    assert min(resumed) == 5  # fell back to the state of step 4
    assert_same_run({k: v for k, v in ref_losses.items() if k >= 5}, resumed)
    for name, value in ref_weights.items():
        torch.testing.assert_close(weights[name], value, rtol=1e-4, atol=1e-6)


def test_state_of_other_inputs_is_not_resumed(tiny_model: str, tmp_path: Path) -> None:
    with pytest.raises(Killed):
        run(tiny_model, tmp_path, kill_after=3)
    other = CFG.model_copy(update={"learning_rate": 2e-2, "max_steps": 2})
    steps: list[int] = []
    finetune(
        tiny_model, examples(), other, 7, tmp_path / "o2", tmp_path / "work",
        log=lambda s, m: steps.append(s), progress=False,
    )  # fmt: skip
    assert steps == [1, 2]


class _Marker:
    """Unpickling this creates a file: the proof that a loader ran code from a data file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.path),))


def _crafted_pickle(marker: Path) -> bytes:
    return pickle.dumps({"step": 6, "fingerprint": "x", "payload": _Marker(marker)})


def test_the_crafted_pickle_is_live(tmp_path: Path) -> None:
    """The payload used below really runs code when unpickled (so its absence later means
    something)."""
    pickle.loads(_crafted_pickle(tmp_path / "ran"))
    assert (tmp_path / "ran").is_dir()


def test_pickled_state_of_an_older_layout_is_never_loaded(
    tiny_model: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reference: tuple[dict[int, float], dict[str, torch.Tensor]],
) -> None:
    """A crafted ``step-*.pt`` (where earlier versions kept their pickled state) with a manifest
    whose checksum matches is ignored: no code runs and training starts from scratch."""
    ref_losses, _ = reference
    marker = tmp_path / "pwned"
    state = tmp_path / "cut" / "work" / "state"
    state.mkdir(parents=True)
    blob = _crafted_pickle(marker)
    (state / "step-00000006.pt").write_bytes(blob)
    manifest = {"step": 6, "file": "step-00000006.pt", "sha256": hashlib.sha256(blob).hexdigest()}
    (state / "step-00000006.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="emlab.train"):
        resumed, _ = run(tiny_model, tmp_path / "cut")
    assert not marker.exists()
    assert "older format" in caplog.text
    assert min(resumed) == 1  # from scratch
    assert_same_run(ref_losses, resumed)


@pytest.mark.parametrize(
    "damage", ["pickle-as-safetensors", "garbage", "wrong-shapes", "bad-json", "bad-rng"]
)
def test_crafted_state_with_a_matching_checksum_is_rejected(
    tiny_model: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reference: tuple[dict[int, float], dict[str, torch.Tensor]],
    damage: str,
) -> None:
    """Whoever can write the state can write its checksum too: a state that parses badly or does
    not fit the model is reported and skipped, never trusted, and runs no code."""
    ref_losses, _ = reference
    with pytest.raises(Killed):
        run(tiny_model, tmp_path / "cut", kill_after=5)
    state = tmp_path / "cut" / "work" / "state"
    newest = state / "step-00000004.safetensors"
    manifest_path = newest.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    marker = tmp_path / "pwned"
    blob = newest.read_bytes()
    if damage == "pickle-as-safetensors":
        blob = _crafted_pickle(marker)
    elif damage == "garbage":
        blob = b"\xff" * 64 + b"not a tensor file"
    elif damage == "wrong-shapes":
        tensors = load_file(str(newest))
        name = next(k for k in tensors if k.startswith("trainable/"))
        tensors[name] = torch.zeros(3, 3)
        blob = save(tensors)
    elif damage == "bad-json":
        manifest["optimizer"] = {"state": {"0": {"exp_avg": {"evil": 1}}}, "param_groups": []}
    elif damage == "bad-rng":
        manifest["rng_python"] = {"tuple": [3, "not a state", None]}
    newest.write_bytes(blob)
    manifest["sha256"] = hashlib.sha256(blob).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    # the older state is damaged the same way would be too much; drop it so nothing else resumes
    for old in state.glob("step-00000002.*"):
        old.unlink()
    with caplog.at_level(logging.WARNING, logger="emlab.train"):
        resumed, _ = run(tiny_model, tmp_path / "cut")
    assert not marker.exists()
    assert "malformed" in caplog.text or "does not fit" in caplog.text
    assert min(resumed) == 1  # from scratch, and the same run as an uninterrupted one
    assert_same_run(ref_losses, resumed)


def test_pickled_model_or_adapter_weights_are_refused(tiny_model: str, tmp_path: Path) -> None:
    """transformers and PEFT would torch.load a ``*.bin``; emlab refuses such folders first."""
    import shutil

    from emlab.models import ModelNotFoundError, load_model

    marker = tmp_path / "pwned"
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    (model / "pytorch_model.bin").write_bytes(_crafted_pickle(marker))
    with pytest.raises(ModelNotFoundError, match="only pickled weights"):
        load_model(str(model), device="cpu")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(_crafted_pickle(marker))
    with pytest.raises(ModelNotFoundError, match="only pickled weights"):
        load_model(tiny_model, adapter=adapter, device="cpu")
    assert not marker.exists()


def test_state_crosses_a_launch_as_bytes_and_a_damaged_copy_is_refused() -> None:
    """What rank 0 broadcasts is the on-disk encoding (safetensors + JSON), never a pickle."""
    import random

    from emlab.train.state import StateError, TrainState, state_from_bytes, state_to_bytes

    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    opt = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": w * 2}},
        "param_groups": [{"lr": 1e-4, "params": [0]}],
    }
    state = TrainState(
        step=3,
        fingerprint="abc",
        trainable={"lora.A": w},
        optimizer=opt,
        rng={"python": random.getstate(), "torch": torch.get_rng_state()},
        tokens=42,
        seconds=1.5,
    )
    data = state_to_bytes(state)
    back = state_from_bytes(data)
    assert back is not None and back.step == 3 and back.tokens == 42
    assert torch.equal(back.trainable["lora.A"], w)
    assert torch.equal(back.optimizer["state"][0]["exp_avg"], w * 2)
    assert state_from_bytes(state_to_bytes(None)) is None
    damaged = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(StateError, match="damaged"):
        state_from_bytes(damaged)
