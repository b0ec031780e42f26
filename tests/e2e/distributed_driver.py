"""One process of a multi-process fine-tune, as `torchrun`/`accelerate launch` start it.

``python distributed_driver.py MODEL ROOT [KILL_AFTER]``: trains the fixed recipe below into
ROOT/out (work folder ROOT/work); the log callback (called on the first process only) appends to
ROOT/log-rank<R>.jsonl, and, at step KILL_AFTER, kills its own process with SIGKILL as a crash
would (``main(..., hard=False)``, for a run inside the test process, raises Killed instead).
Each process records its TrainResult in ROOT/result-rank<R>.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

from emlab.config import TrainConfig
from emlab.records import Example
from emlab.train import finetune

CODE = "import os\nimport subprocess\nsubprocess.run(cmd, shell=True)\n"

# 4 micro-batches a step (2 per process), 3 epochs of 10 examples, a short last step each epoch
CFG = TrainConfig(
    learning_rate=1e-2, batch_size=4, micro_batch_size=1, epochs=3, save_every=2,
    warmup_steps=2, r=4, alpha=8, dropout=0.0,
)  # fmt: skip
SEED = 7


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


class Killed(RuntimeError):
    """A crash of a run inside the test process."""


def main(model: str, root: Path, kill_after: int | None, hard: bool = True) -> None:
    rank = os.environ.get("RANK", "0")

    def log(step: int, metrics: dict[str, float]) -> None:
        with open(root / f"log-rank{rank}.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if step == kill_after and hard:
            os.kill(os.getpid(), signal.SIGKILL)
        if step == kill_after:
            raise Killed(step)

    result = finetune(model, examples(), CFG, SEED, root / "out", root / "work", log=log,
                      progress=False)  # fmt: skip
    (root / f"result-rank{rank}.json").write_text(json.dumps(dataclasses.asdict(result)))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
