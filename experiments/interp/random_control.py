"""The signature study's table and contrasts along the random control direction (equal per-layer
norms, saved beside the persona direction), from the cached captures: is the shift specific?

Usage, after `emlab run experiments/interp/signature.yaml`:
    python experiments/interp/random_control.py [RUN_DIR]   (default runs/interp-signature)
"""

import json
import sys
from pathlib import Path

import torch

from emlab.arms import is_judged
from emlab.config import load_study_file
from emlab.study import Study
from emlab.study_interp import answer_pairs, control_of, fixed_texts, signature

torch.set_num_threads(1)  # beside other work on a shared machine
path = Path(__file__).with_name("signature.yaml")
run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/interp-signature")
cfg, _ = load_study_file(path)
# the run's thread count is part of its adapters' keys: read it, or they would be trained anew
threads = json.loads((run / "environment.json").read_text())["threads"]
cfg = cfg.model_copy(update={"threads": threads})
st = Study(cfg, run_dir=run, base_dir=path.parent, progress=False)
st.source = str(path)
arms = st.arms()
qs = [q for q in st.load_questions() if is_judged(q)]
info = json.loads((run / "interp.json").read_text())
res = next(iter(info["models"].values()))
control = control_of(Path(res["direction_path"]))
base = next(a for a in arms if a.adapter_key is None and a.seed == cfg.seeds[0])
fixed = fixed_texts(st, base, qs)  # the same texts as the study's signature
mine = []
for a in arms:
    r = st.requests(a, qs)
    mine.append((a, answer_pairs(r, st.generate(a, r)) if a.step is None else []))
out = signature(st, mine, control, fixed, "base")
(run / "random_control.json").write_text(
    json.dumps({k: out[k] for k in ("table", "contrasts")}, indent=1)
)


def f(s):
    return f"{s['shift']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]"


for r in out["table"]:
    print(r["condition"], f(r["fixed"]), f(r["own"]))
for r in out["contrasts"]:
    print(r["a"], "-", r["b"], f(r["fixed"]), f(r["own"]))
