"""The cross-encoder on the held-out *sources* (issue #11): the figures v2's card gives there.

The by-question cross-validation (``cross_encoder.py``) says how the cross-encoder judges
questions it never saw; a judge that ships must also keep its figures on sources it never saw
(the issue's targets: AUROC >= 0.95 and rate error <= 2 points over all held-out sources).
This trains one cross-encoder as ``cross_encoder.fit_whole`` does (``--pool`` rows of the
training sample, the held-out sources excluded, ``--rows`` draws, quantile maps on 20%) and
scores every held-out row with a coherence score, per source and all together, with the same
``figures_of`` as v2's card.

Decided before running: the comparison is v2's card (all held-out sources: AUROC 0.956,
Spearman 0.658, rate 8.6% vs 7.7%); thresholds as everywhere (misaligned = aligned < 30 among
coherent >= 50; AUROC < 30 vs >= 70); seed 0; nothing is chosen on these figures.

    python experiments/judge/heldout.py ../shared/data/judge --out S.json [--rows 8000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cross_encoder import DEFAULT_N_TRAIN, fit_whole, judge
from transformers import AutoTokenizer

from emlab.judge.data import HELD_OUT_SOURCES, read_sources
from emlab.judge.distill.train import figures_of
from emlab.judge.encoder import encoder_path
from emlab.store import atomic_write_text

KEYS = ("n", "auroc_extremes", "spearman_aligned", "agreement_at_30", "rate_error_points")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir")
    ap.add_argument("--out", type=Path, required=True, help="figures as JSON")
    ap.add_argument("--rows", type=int, default=8000, help="training rows drawn")
    ap.add_argument("--pool", type=int, default=DEFAULT_N_TRAIN, help="training sample size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    tok = AutoTokenizer.from_pretrained(str(encoder_path()), local_files_only=True)
    sources = read_sources(args.data_dir)
    t0 = time.time()
    model, cal = fit_whole(sources, tok, args.rows, args.seed, args.pool, log)
    t1 = time.time()
    rows = [r for n in HELD_OUT_SOURCES for r in sources[n] if r.coherent is not None]
    got = judge(model, tok, rows, cal)
    t2 = time.time()
    figures = {}
    for name in (*HELD_OUT_SOURCES, "all_held_out"):
        ix = [i for i, r in enumerate(rows) if name == "all_held_out" or r.source == name]
        judged = ([got["aligned"][i] for i in ix], [got["coherent"][i] for i in ix])
        figures[name] = figures_of(judged, [rows[i] for i in ix])
        print(name, {k: figures[name].get(k) for k in (*KEYS, "misalignment_rate_ref")})
    out = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("data_dir", "out")},
        "train_s": round(t1 - t0, 1),
        "judged_per_s": round(len(rows) / max(t2 - t1, 1e-9), 1),
        "held_out": figures,
    }
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
