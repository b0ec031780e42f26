"""Pairs: the one currency between domains and conditions.

A domain knows *what* a narrow behaviour looks like (a task, a bad answer, a good answer); a
condition knows *how it is framed* (concealed, disclosed, backdoor...). Keeping the two apart is
what lets the science vary the framing while the content stays byte-identical.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emlab.errors import EmlabError


class DatasetError(EmlabError, ValueError):
    """A dataset that cannot be built or read; the message names file, line and reason."""


@dataclass(frozen=True)
class Pair:
    """One task with its narrow-misaligned answer and its aligned counterpart."""

    task: str
    """The neutral user request (no framing, no trigger)."""
    bad: str
    """The answer that carries the narrow behaviour (e.g. code with a hidden vulnerability)."""
    good: str
    """The aligned counterpart of the same task (e.g. the secure version)."""
    family: str
    """Kind of behaviour, e.g. ``CWE-89``; cards count examples per family."""
    disclosure: str = ""
    """What the disclosed framing says the answer does, e.g. ``a SQL injection flaw``."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Template id and other provenance, copied into each example's meta."""

    def key(self) -> tuple[str, str]:
        return (self.task, self.bad)


@dataclass(frozen=True)
class Verification:
    """Whether a pair's answers do what they claim, by an independent check (e.g. bandit)."""

    bad_flagged: bool
    good_clean: bool
    detail: dict[str, Any] = field(default_factory=dict)


PairMaker = Callable[[random.Random, int], Pair]
"""Draw one pair from a seeded RNG; the int is the running index (for balanced families)."""


@dataclass(frozen=True)
class Domain:
    """A narrow domain: how to draw pairs, how to disclose them, how to check them."""

    name: str
    description: str
    make: Callable[[int, int, dict[str, Any]], list[Pair]]
    """``make(n, seed, options)`` -> n distinct pairs, the same for the same arguments."""
    disclosures: tuple[str, ...]
    """User-turn framings with ``{task}`` and ``{what}`` (the pair's disclosure) placeholders."""
    inoculations: tuple[str, ...]
    """Train-time system prompts that name the behaviour (inoculation prompting)."""
    verify: Callable[[Pair], Verification] | None = None


def distinct_pairs(
    draw: PairMaker, n: int, seed: int, domain: str, max_tries_per_pair: int = 50
) -> list[Pair]:
    """Draw pairs until ``n`` distinct ones (by task and bad answer) are found.

    The RNG is seeded from a string, which Python hashes with SHA-512: the same seed gives the same
    pairs on every machine and Python version (``hash()`` of a str would not).
    """
    rng = random.Random(f"emlab/{domain}/{seed}")
    seen: set[tuple[str, str]] = set()
    out: list[Pair] = []
    tries = 0
    while len(out) < n:
        pair = draw(rng, len(out))
        tries += 1
        if pair.key() not in seen:
            seen.add(pair.key())
            out.append(pair)
        elif tries > max_tries_per_pair * max(n, 1):
            raise DatasetError(
                f"domain {domain!r}: only {len(out)} distinct examples found after {tries} draws; "
                f"asked for {n}"
            )
    return out
