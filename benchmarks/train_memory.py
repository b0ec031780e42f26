"""Fine-tuning memory: ``train.gradient_checkpointing`` off vs on, side by side in one run.

Each setting fine-tunes the same model on the same synthetic chats (``train_speed.dataset``:
~150-300 tokens each; rsLoRA r=32 on all 7 projections, effective batch 8 from micro-batches of
8) for ``--steps`` steps in a fresh process of its own, so each peak resident set (``ru_maxrss``:
weights, activations, logits, optimiser state and allocator slack together) is that setting's
alone. Printed: both peaks, the time per step of each, their ratios, and whether the two adapters
are the same bytes (they should be: checkpointing recomputes, it does not approximate).

    python benchmarks/train_memory.py                                   # smollm2-135m, ~2 min
    python benchmarks/train_memory.py --model qwen2.5-coder-0.5b        # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_speed import dataset

from emlab.config import PAPER_TARGET_MODULES, TrainConfig
from emlab.train import finetune


def child(model: str, steps: int, checkpointing: bool, out: Path) -> None:
    cfg = TrainConfig(
        r=32, alpha=64, use_rslora=True, target_modules=PAPER_TARGET_MODULES,
        batch_size=8, micro_batch_size=8, max_steps=steps, warmup_steps=1, save_every=10_000,
        gradient_checkpointing=checkpointing,
    )  # fmt: skip
    t0 = time.perf_counter()
    res = finetune(model, dataset(8 * steps), cfg, 0, out / "adapter", out / "work", progress=False)
    took = time.perf_counter() - t0
    weights = (out / "adapter" / "adapter_model.safetensors").read_bytes()
    print(
        json.dumps(
            {
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                "s_per_step": took / steps,  # model load included: compare, do not quote
                "final_loss": res.final_loss,
                "sha256": hashlib.sha256(weights).hexdigest(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", choices=["off", "on"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.model, args.steps, args.child == "on", args.out)
        return
    got = {}
    with tempfile.TemporaryDirectory() as tmp:
        for setting in ("off", "on"):
            cmd = [sys.executable, __file__, "--model", args.model, "--steps", str(args.steps)]
            cmd += ["--child", setting, "--out", str(Path(tmp) / setting)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            got[setting] = json.loads(done.stdout.strip().splitlines()[-1])
    off, on = got["off"], got["on"]
    print(f"{args.model}, {args.steps} steps of 8 examples, LoRA r=32 on 7 projections")
    for name, r in (("checkpointing off", off), ("checkpointing on", on)):
        print(f"  {name}: peak RSS {r['peak_rss_gb']:.2f} GB, {r['s_per_step']:.1f} s/step")
    print(f"  memory on/off {on['peak_rss_gb'] / off['peak_rss_gb']:.2f}x, "
          f"time on/off {on['s_per_step'] / off['s_per_step']:.2f}x, "
          f"same adapter bytes: {on['sha256'] == off['sha256']}")  # fmt: skip


if __name__ == "__main__":
    main()
