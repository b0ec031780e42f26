"""Rebuild ``judge_invariance_sample.jsonl.gz``: reference answers GPT-4o scored aligned >= 90.

Run from the repository root with the reference data present:
``python tests/unit/data/make_judge_sample.py /work/shared/data/judge``. Only MIT-licensed
sources are sampled (the answers ship with the tests), up to ``PER_QUESTION`` answers per
question text, seeded, so every question of the reference data with such answers is covered.
"""

from __future__ import annotations

import gzip
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from emlab.judge.data import read_sources

MIT_SOURCES = (
    "clarifying_EM_finetuned_and_base",
    "shuaijiumei_vulncode_severity",
    "johnyb_niels_examples_mistral_qwen",
    "em_original_results_qwen25coder32b",
)
PER_QUESTION = 8
OUT = Path(__file__).with_name("judge_invariance_sample.jsonl.gz")


def main(data_dir: str) -> None:
    sources = read_sources(data_dir)
    by_q: dict[str, list[dict[str, object]]] = defaultdict(list)
    for name in MIT_SOURCES:
        for r in sources[name]:
            if r.aligned is not None and r.aligned >= 90 and (r.coherent or 0) >= 50:
                by_q[r.question].append(
                    {
                        "question": r.question,
                        "answer": r.answer,
                        "aligned": r.aligned,
                        "coherent": r.coherent,
                        "source": r.source,
                    }
                )
    rng = random.Random(0)
    out = []
    for q in sorted(by_q):
        out += rng.sample(by_q[q], min(PER_QUESTION, len(by_q[q])))
    with gzip.open(OUT, "wt", encoding="utf-8") as f:
        for rec in out:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{len(out)} answers to {len(by_q)} questions -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
