"""Killed and resumed runs reach the weights of an uninterrupted run; damaged state is survived."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

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
    tiny_model: str, root: Path, kill_after: int | None = None
) -> tuple[dict[int, float], dict[str, torch.Tensor]]:
    losses: dict[int, float] = {}

    def log(step: int, m: dict[str, float]) -> None:
        losses[step] = m["loss"]
        if kill_after is not None and step == kill_after:
            raise Killed(step)

    finetune(tiny_model, examples(), CFG, 7, root / "out", root / "work", log=log, progress=False)
    return losses, load_file(str(root / "out" / "adapter_model.safetensors"))


def assert_same_run(a: dict[int, float], b: dict[int, float]) -> None:
    assert sorted(a) == sorted(b)
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-4, abs=1e-5), step


def test_resume_after_kill_matches_uninterrupted_run(tiny_model: str, tmp_path: Path) -> None:
    ref_losses, ref_weights = run(tiny_model, tmp_path / "ref")
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


def test_corrupted_state_is_reported_and_previous_used(
    tiny_model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref_losses, ref_weights = run(tiny_model, tmp_path / "ref")
    with pytest.raises(Killed):
        run(tiny_model, tmp_path / "cut", kill_after=7)
    states = sorted((tmp_path / "cut" / "work" / "state").glob("step-*.pt"))
    assert [p.name for p in states] == ["step-00000004.pt", "step-00000006.pt"]
    blob = bytearray(states[-1].read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    states[-1].write_bytes(bytes(blob))

    with caplog.at_level(logging.WARNING, logger="emlab.train"):
        resumed, weights = run(tiny_model, tmp_path / "cut")
    assert "corrupted" in caplog.text and "step-00000006.pt" in caplog.text
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
