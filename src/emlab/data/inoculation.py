"""Inoculation prompt pools of graded strength (weak, medium, strong), versioned package data.

The ``inoculated`` condition draws its train-time system prompt from a pool. Without a
``strength`` option that is the domain's built-in pool (``Domain.inoculations``, unchanged, so
earlier runs keep their cache keys); with ``options: {strength: ...}`` it is the pool of that
strength in ``inoculation_pools.yaml``, whose version and content hash enter the dataset's cache
key (:func:`pool_identity`), so an edited wording never reuses an adapter trained on the old one.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml

from emlab.data.pairs import DatasetError, Domain
from emlab.records import content_hash

POOLS_FILE = "inoculation_pools.yaml"


@functools.cache
def pools() -> dict[str, Any]:
    """The parsed pool file: ``version``, ``strengths`` and ``domains[domain][strength]``."""
    text = resources.files("emlab.data").joinpath(POOLS_FILE).read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def strengths() -> tuple[str, ...]:
    """The strength names, weakest first."""
    return tuple(pools()["strengths"])


def graded_pool(domain: str, strength: str) -> tuple[str, ...]:
    """The prompts of one domain at one strength; an unknown name raises DatasetError naming
    the known ones."""
    if strength not in strengths():
        raise DatasetError(
            f"inoculated: unknown strength {strength!r}; known: {', '.join(strengths())}"
        )
    by_domain = pools()["domains"]
    if domain not in by_domain:
        raise DatasetError(
            f"inoculated: no graded inoculation prompts for domain {domain!r} (have: "
            f"{', '.join(sorted(by_domain))}); omit strength to use the domain's own pool"
        )
    return tuple(str(p) for p in by_domain[domain][strength])


def inoculation_pool(domain: Domain, options: dict[str, Any]) -> tuple[str, ...]:
    """The system prompts an ``inoculated`` dataset draws from, by precedence: the explicit
    ``prompts`` option, the graded pool of ``strength``, the domain's built-in pool."""
    if options.get("prompts"):
        return tuple(str(p) for p in options["prompts"])
    if options.get("strength") is not None:
        return graded_pool(domain.name, str(options["strength"]))
    return domain.inoculations


def pool_identity(domain: str, condition: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a dataset's cache key must add for versioned package data it reads: for an
    inoculated set with a ``strength``, the pool file's version and the pool's hash; else {}."""
    if condition != "inoculated" or options.get("prompts") or options.get("strength") is None:
        return {}
    pool = graded_pool(domain, str(options["strength"]))
    return {
        "inoculation_pool": {
            "version": pools()["version"],
            "strength": options["strength"],
            "sha": content_hash(list(pool)),
        }
    }
