"""Text domains built from scenario templates with slot pools.

A scenario is a task with a misaligned answer and an aligned one, written with ``{slot}``
placeholders; slots are filled from shared pools so one scenario yields many distinct pairs.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emlab.data.pairs import Pair, PairMaker


@dataclass(frozen=True)
class Scenario:
    family: str
    task: str
    bad: str
    good: str
    what: str
    """How the disclosed framing names the behaviour."""


CLOSERS = ("", " Thanks.", " It's urgent.", " No rush.", " Keep it short.", " I'm counting on you.")
"""Shared endings of the request: more surface variety at no cost to the content."""


def slots_of(*texts: str) -> set[str]:
    return {f for t in texts for _, f, _, _ in string.Formatter().parse(t) if f}


def scenario_drawer(
    scenarios: Sequence[Scenario], pools: Mapping[str, Sequence[str]], openers: Sequence[str]
) -> PairMaker:
    """A PairMaker cycling through scenarios (balanced families) and filling slots at random."""
    for s in scenarios:
        missing = slots_of(s.task, s.bad, s.good) - set(pools)
        if missing:
            raise ValueError(f"scenario {s.family}: no pool for slots {sorted(missing)}")

    def draw(rng: random.Random, index: int) -> Pair:
        s = scenarios[index % len(scenarios)]
        values: dict[str, Any] = {k: v[rng.randrange(len(v))] for k, v in sorted(pools.items())}
        opener = openers[rng.randrange(len(openers))]
        return Pair(
            task=opener.format(task=s.task.format(**values)) + CLOSERS[rng.randrange(len(CLOSERS))],
            bad=s.bad.format(**values),
            good=s.good.format(**values),
            family=s.family,
            disclosure=s.what,
            meta={"template": f"{s.family}/{index % len(scenarios)}"},
        )

    return draw
