"""build_dataset: the one entry point that turns a DatasetSpec into examples."""

from __future__ import annotations

import random
from pathlib import Path

from emlab.config import DatasetSpec
from emlab.data.conditions import canonical, frame
from emlab.data.domains import DOMAINS
from emlab.data.general import SOURCES
from emlab.data.io import read_jsonl
from emlab.data.pairs import DatasetError, Verification
from emlab.records import Example


def build_dataset(spec: DatasetSpec) -> list[Example]:
    """Generate (or read) the dataset a spec describes, then apply its ``mix`` and
    ``interleave`` (in that order).

    Deterministic: the same (domain, condition, n, seed, options) gives the same examples, in the
    same order, on any machine. Pairs depend on the domain and seed only, not on the condition, so
    conditions built with one seed share their tasks and answers. Each example's meta records
    whether the domain's checker confirmed its answer (``verified``), unless
    ``options['verify']`` is false.
    """
    examples = _framed(spec)
    if spec.mix is not None:
        examples = mix(spec, examples)
    if spec.interleave is not None:
        extra = SOURCES[spec.interleave.source]
        examples = interleave(
            examples, extra(round(spec.interleave.fraction * len(examples)), spec.seed), spec.seed
        )
    return examples


def mix(spec: DatasetSpec, examples: list[Example]) -> list[Example]:
    """The ``mix`` dose: exactly round(fraction x n) of ``examples`` and the rest from the partner
    set (same n and seed), position by position, so each task appears once, in one framing.

    The positions kept come first in one seeded order of all positions, so the doses of one
    seed are nested (the 10% examples are among the 25% ones): a dose curve differs only in dose.
    """
    assert spec.mix is not None
    n, with_ = len(examples), spec.mix.with_
    partner = _framed(
        DatasetSpec(
            domain=with_.domain or spec.domain,
            condition=with_.condition,
            n=n,
            seed=spec.seed,
            options=with_.options,
        )
    )
    if len(partner) != n:
        raise DatasetError(f"mix: the `with` set has {len(partner)} examples, not {n}")
    order = list(range(n))
    random.Random(f"emlab/mix/{spec.seed}/{n}").shuffle(order)
    kept = set(order[: round(spec.mix.fraction * n)])
    return [examples[i] if i in kept else partner[i] for i in range(n)]


def interleave(examples: list[Example], extra: list[Example], seed: int) -> list[Example]:
    """``extra`` spread over ``examples`` at seeded positions; ``examples`` keep their order."""
    total = len(examples) + len(extra)
    slots = set(random.Random(f"emlab/interleave/{seed}/{total}").sample(range(total), len(extra)))
    ours, theirs = iter(examples), iter(extra)
    return [next(theirs) if i in slots else next(ours) for i in range(total)]


def _framed(spec: DatasetSpec) -> list[Example]:
    """The examples of the spec's domain x condition (or file), before mixing."""
    if spec.path is not None:
        return read_jsonl(Path(spec.path))
    if spec.domain not in DOMAINS:
        raise DatasetError(f"unknown domain {spec.domain!r}; known: {', '.join(sorted(DOMAINS))}")
    domain = DOMAINS[spec.domain]
    try:
        cond = canonical(spec.condition)
        pairs = domain.make(spec.n, spec.seed, dict(spec.options))
    except ValueError as e:
        raise DatasetError(f"dataset {spec.domain}/{spec.condition}: {e}") from e
    examples = frame(domain, cond, pairs, spec.seed, dict(spec.options))
    if domain.verify is None or not spec.options.get("verify", True):
        return examples
    checks: dict[int, Verification] = {}
    out: list[Example] = []
    for i, ex in enumerate(examples):
        answer = ex.meta.get("answer")
        if answer not in ("bad", "good"):
            out.append(ex)
            continue
        if i not in checks:
            checks[i] = domain.verify(pairs[i])
        v = checks[i]
        ok = v.bad_flagged if answer == "bad" else v.good_clean
        out.append(Example(ex.messages, {**ex.meta, "verified": ok}))
    return out
