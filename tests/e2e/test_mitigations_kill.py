"""kill -9 in the middle of a mitigation's training, then a re-run: the same adapters, bit for bit.

One study holds every training-time mitigation (a continuation with a KL term, preventative
steering, a mixed dose with interleaved general data) after a plain parent. A real ``emlab``
process is killed while one of them is part-way (a resumable state on disk), and a second run
must finish with exactly the adapters of an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from emlab.config import load_study
from emlab.interp.directions import Direction, save_direction, vectors_key
from emlab.study import Study

STUDY = """\
name: mitigations-kill
models: [{model}]
threads: 1
conditions:
  - name: concealed
    dataset: {{domain: code, condition: concealed, n: 12, seed: 0}}
  - name: realigned
    dataset: {{domain: code, condition: control, n: 12, seed: 0}}
    start_from: concealed
    train: {{kl_weight: 1.0, kl_batch_size: 2, max_steps: 16}}
  - name: steered
    dataset: {{domain: code, condition: concealed, n: 12, seed: 0}}
    train: {{steer: {{direction: dir, scale: 2.0, layers: [0, 1]}}, max_steps: 16}}
  - name: dose
    dataset:
      domain: code
      n: 12
      mix: {{with: {{condition: control}}, fraction: 0.5}}
      interleave: {{fraction: 0.25}}
    train: {{max_steps: 16}}
train: {{max_steps: 4, batch_size: 4, micro_batch_size: 2, learning_rate: 0.001, dtype: fp32,
         save_every: 2, r: 4, alpha: 8, dropout: 0.1}}
"""

DRIVER = (
    "import sys; from pathlib import Path; from emlab.config import load_study; "
    "from emlab.study import Study; p = Path(sys.argv[1]); "
    "Study(load_study(p), run_dir=sys.argv[2], base_dir=p.parent, progress=False).arms()"
)
"""The training part of `emlab run` (``Study.arms`` trains every adapter), in its own process."""


def write(tmp_path: Path, model: str) -> Path:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 64, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    save_direction(
        Direction(v, {"key": vectors_key(v), "layer": 1, "method": "persona"}), tmp_path / "dir"
    )
    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(model=model))
    return study


def adapters(study: Path, run_dir: Path) -> dict[str, tuple[str, bytes]]:
    """condition -> (adapter key, adapter bytes), training whatever is missing."""
    cfg = load_study(study)
    st = Study(cfg, run_dir=run_dir, base_dir=study.parent, progress=False)
    out = {}
    for cond in cfg.conditions:
        key, folder = st.adapter(cfg.models[0], cond, 0)
        out[cond.name] = (key, (folder / "adapter_model.safetensors").read_bytes())
    return out


@pytest.fixture(scope="module")
def reference(
    tiny_model: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, tuple[str, bytes]]]:
    root = tmp_path_factory.mktemp("reference")
    study = write(root, tiny_model)
    return study, adapters(study, root / "run")


def test_kill_9_mid_each_mitigation_then_rerun_gives_the_same_adapters(
    tmp_path: Path,
    tiny_model: str,
    reference: tuple[Path, dict[str, tuple[str, bytes]]],
) -> None:
    _, want = reference
    study = write(tmp_path, tiny_model)
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMLAB_THREADS": "1"}
    # one process per victim, each killed while that mitigation is part-way: every later
    # process resumes what the one before left (finished parents, a saved state)
    for victim in ("realigned", "steered", "dose"):
        state = run_dir / "work" / "adapter" / want[victim][0] / "state"
        proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(study), str(run_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if state.is_dir() and any(state.glob("step-*.safetensors")):
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"{victim} finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (run_dir / "artifacts" / "adapter" / want[victim][0]).exists()

    got = adapters(study, run_dir)
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}
    for name in want:
        assert got[name][1] == want[name][1], name
