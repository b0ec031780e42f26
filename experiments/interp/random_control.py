"""A signature study's table and contrasts along the random control direction (equal per-layer
norms, saved beside the persona direction), from the cached captures: is the shift specific?
Each contrast is also given with a Welch t interval over the per-seed means of the fixed texts
(the bootstrap over 3 seeds is anti-conservative), for both directions.

Usage, after `emlab run STUDY --run-dir RUN_DIR`:
    python experiments/interp/random_control.py [RUN_DIR] [STUDY]
    (defaults: runs/interp-signature, experiments/interp/signature.yaml)
"""

import json
import sys
from pathlib import Path
from typing import Any

import torch

from emlab.arms import is_judged
from emlab.config import load_study_file
from emlab.metrics import welch_diff_ci
from emlab.study import Study
from emlab.study_interp import answer_pairs, control_of, first_per_question, fixed_texts, signature

torch.set_num_threads(1)  # beside other work on a shared machine
run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/interp-signature")
path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).with_name("signature.yaml")
cfg, _ = load_study_file(path)
assert cfg.interp is not None, f"{path}: no interp section"
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
own_n = cfg.interp.signature_own_per_question
mine = []
for a in arms:
    r = first_per_question(st.requests(a, qs), own_n)
    mine.append((a, answer_pairs(r, st.generate(a, r)) if a.step is None else []))
out = signature(st, mine, control, fixed, "base")


def welch(sig: dict[str, Any]) -> list[dict[str, Any]]:
    """Each contrast on the fixed texts over seeds: Welch t on the per-seed mean projections."""
    per: dict[str, list[float]] = {}
    for m in sig["monitor"]:
        if m["final"]:
            per.setdefault(m["condition"], []).append(m["projection"])
    rows = []
    for c in sig["contrasts"]:
        a, b = per[c["a"]], per[c["b"]]
        lo, hi = welch_diff_ci(a, b, 0.95)
        rows.append({"a": c["a"], "b": c["b"], "shift": sum(a) / len(a) - sum(b) / len(b),
                     "ci_low": lo, "ci_high": hi, "seeds": [len(a), len(b)]})  # fmt: skip
    return rows


result = {
    "table": out["table"],
    "contrasts": out["contrasts"],
    "welch_fixed": {"direction": welch(res["signature"]), "random": welch(out)},
}
(run / "random_control.json").write_text(json.dumps(result, indent=1))


def f(s: dict[str, Any]) -> str:
    if s.get("shift") is None:
        return "-"
    return f"{s['shift']:+.3f} [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]"


print("random direction: condition vs base, fixed texts / own answers (bootstrap)")
for r in out["table"]:
    print(" ", r["condition"], f(r["fixed"]), f(r["own"]))
print("random direction: contrasts, fixed texts / own answers (bootstrap)")
for r in out["contrasts"]:
    print(" ", r["a"], "-", r["b"], f(r["fixed"]), f(r["own"]))
for kind, rows in result["welch_fixed"].items():
    print(f"{kind} direction: contrasts on the fixed texts, Welch t over seeds")
    for r in rows:
        print(" ", r["a"], "-", r["b"], f(r))
