"""The code domain at paper scale, checked by bandit."""

from __future__ import annotations

from emlab.data.domains.code import FAMILIES, make_pairs, verify
from emlab.data.domains.code.bandit_check import is_flagged, scan


def test_six_thousand_distinct_pairs() -> None:
    pairs = make_pairs(6000, 0, {})
    assert len({p.key() for p in pairs}) == 6000
    assert len({p.bad for p in pairs}) > 3000
    assert len(FAMILIES) >= 10


def test_bandit_flags_insecure_and_passes_secure() -> None:
    pairs = make_pairs(300, 11, {})
    flagged_bad = sum(is_flagged(scan(p.bad)) for p in pairs)
    flagged_good = sum(is_flagged(scan(p.good)) for p in pairs)
    assert flagged_bad >= 0.95 * len(pairs)
    assert flagged_good <= 0.02 * len(pairs)
    checks = [verify(p) for p in pairs]
    assert sum(c.bad_flagged for c in checks) >= 0.95 * len(pairs)


def test_every_answer_is_valid_python_and_families_can_be_chosen() -> None:
    import ast

    pairs = make_pairs(130, 5, {"families": ["CWE-89", "CWE-79"]})
    assert {p.family for p in pairs} == {"CWE-89", "CWE-79"}
    for p in make_pairs(260, 7, {}):
        ast.parse(p.bad)
        ast.parse(p.good)
