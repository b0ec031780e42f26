"""Text domains (privacy, autonomy, reward_hacking) under every condition."""

from __future__ import annotations

import pytest

from emlab.config import DatasetSpec
from emlab.data import CONDITIONS, DOMAINS, DatasetError, build_dataset


@pytest.mark.parametrize("domain", ["privacy", "autonomy", "reward_hacking"])
def test_text_domain_builds_under_every_condition(domain: str) -> None:
    assert domain in DOMAINS
    conc = build_dataset(DatasetSpec(domain=domain, condition="concealed", n=200, seed=1))
    ctrl = build_dataset(DatasetSpec(domain=domain, condition="control", n=200, seed=1))
    assert len({e.key() for e in conc}) == 200
    for c, s in zip(conc, ctrl, strict=True):
        assert c.messages[0] == s.messages[0] and c.messages[1] != s.messages[1]
    for cond in CONDITIONS:
        exs = build_dataset(DatasetSpec(domain=domain, condition=cond, n=20, seed=2))
        assert len(exs) == 20 and all(e.meta["domain"] == domain for e in exs)


def test_capacity_limit_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="distinct examples"):
        build_dataset(DatasetSpec(domain="autonomy", n=5000, seed=0))
