"""One fine-tune over two CPU processes (gloo) equals the same fine-tune in one process.

Real launches: `accelerate launch` with the shipped examples/accelerate.yaml and `torchrun`, each
starting two processes of tests/e2e/distributed_driver.py on the tiny model.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from distributed_driver import Killed
from distributed_driver import main as drive
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("distributed_driver.py")
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # the same reduction order in every process and in this one
    monkeypatch.setenv("EMLAB_THREADS", "1")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(EMLAB_THREADS="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", EMLAB_DEVICE="cpu")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def reference(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same fine-tune in this one process."""
    root = tmp_path_factory.mktemp("one")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMLAB_THREADS", "1")
        drive(tiny_model, root, None)
    return root


def _launch(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=180)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa = load_file(str(a / "adapter_model.safetensors"))
    wb = load_file(str(b / "adapter_model.safetensors"))
    assert set(wa) == set(wb)
    for name, value in wa.items():
        torch.testing.assert_close(wb[name], value, rtol=1e-4, atol=1e-6)
    moved = max(float(v.abs().max()) for k, v in wa.items() if "lora_B" in k)
    assert moved > 1e-3  # B starts at zero: the runs did train, so equality means something


def test_two_processes_match_one_and_write_one_copy(
    tiny_model: str, reference: Path, tmp_path: Path
) -> None:
    one, two = reference, tmp_path
    proc = _launch(
        [
            str(BIN / "accelerate"), "launch", "--config_file", "examples/accelerate.yaml",
            "--num_processes", "2", "--main_process_port", str(_free_port()),
            str(DRIVER), tiny_model, str(two),
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    _assert_same_weights(one / "out", two / "out")

    # one copy: the same files as the one-process run, one log (the first process's only)
    assert _files(two / "out") == _files(one / "out")
    assert _files(two / "work") == _files(one / "work")
    assert sorted(p.name for p in two.glob("log-*")) == ["log-rank0.jsonl"]
    logs = [json.loads(line) for line in (two / "log-rank0.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (one / "log-rank0.jsonl").read_text().splitlines()]
    assert [m["step"] for m in logs] == [m["step"] for m in ref] == list(range(1, 9))
    for m, r in zip(logs, ref, strict=True):
        assert m["loss"] == pytest.approx(r["loss"], rel=1e-5)  # summed over both processes
        assert m["grad_norm"] == pytest.approx(r["grad_norm"], rel=1e-4)
    # every process returns the same result; tokens count both processes' tokens
    results = [json.loads((two / f"result-rank{r}.json").read_text()) for r in (0, 1)]
    single = json.loads((one / "result-rank0.json").read_text())
    assert results[0] == results[1]
    assert results[0]["tokens"] == single["tokens"]
    assert results[0]["checkpoints"].keys() == single["checkpoints"].keys()


def test_runs_killed_at_one_process_count_resume_at_another(
    tiny_model: str, reference: Path, tmp_path: Path
) -> None:
    ref, cut = reference, tmp_path

    def logged_steps() -> list[int]:
        path = cut / "log-rank0.jsonl"
        steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
        path.unlink()
        return steps

    # one process, killed after step 3 (the state of step 2 is on disk) ...
    with pytest.raises(Killed):
        drive(tiny_model, cut, 3, hard=False)
    assert logged_steps() == [1, 2, 3]
    # ... resumed by two (the first reads the state and hands it over), SIGKILLed after step 5 ...
    proc = _launch(
        [
            str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
            str(DRIVER), tiny_model, str(cut), "5",
        ]
    )  # fmt: skip
    assert proc.returncode != 0, proc.stderr[-4000:]
    assert logged_steps() == [3, 4, 5]
    assert not (cut / "out").exists()
    states = sorted(p.name for p in (cut / "work" / "state").glob("*.safetensors"))
    assert states == ["step-00000002.safetensors", "step-00000004.safetensors"]
    # ... and finished by one: the weights of the uninterrupted run
    drive(tiny_model, cut, None)
    assert logged_steps() == [5, 6, 7, 8]
    _assert_same_weights(ref / "out", cut / "out")
