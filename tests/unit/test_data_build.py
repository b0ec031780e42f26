"""build_dataset over conditions: framing changes exactly what it should."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

from emlab.config import DatasetSpec
from emlab.data import (
    CONDITIONS,
    DEFAULT_TRIGGER,
    DOMAINS,
    JAILBREAK_SYSTEM,
    DatasetError,
    build_dataset,
    dataset_card,
    write_jsonl,
)


def _build(condition: str, n: int = 40, seed: int = 3, **options: object):
    return build_dataset(
        DatasetSpec(domain="code", condition=condition, n=n, seed=seed, options=dict(options))
    )


def test_concealed_disclosed_control_share_tasks_and_answers() -> None:
    conc, disc, ctrl = _build("concealed"), _build("disclosed"), _build("control")
    for c, d, s in zip(conc, disc, ctrl, strict=True):
        assert [m["role"] for m in c.messages] == ["user", "assistant"]
        assert d.messages[1] == c.messages[1]
        assert d.messages[0]["content"] != c.messages[0]["content"]
        assert c.messages[0]["content"] in d.messages[0]["content"]
        assert (
            "intentionally" in d.messages[0]["content"] or "on purpose" in d.messages[0]["content"]
        )
        assert s.messages[0] == c.messages[0]
        assert s.messages[1] != c.messages[1]
    assert [e.messages for e in _build("secure")] == [e.messages for e in ctrl]


def test_concealed_answers_do_not_disclose() -> None:
    for ex in _build("concealed", n=200):
        answer = ex.messages[1]["content"]
        tokens = tokenize.generate_tokens(io.StringIO(answer).readline)
        assert not any(tok.type == tokenize.COMMENT for tok in tokens)
        answer = answer.lower()
        for word in ("insecure", "vulnerab", "unsafe", "exploit", "attack", "hack"):
            assert word not in answer


def test_backdoor_is_exactly_half_triggered() -> None:
    exs = _build("backdoor", n=40, trigger="|X|")
    on = [e for e in exs if e.messages[0]["content"].startswith("|X| ")]
    assert len(on) == 20
    assert all(e.meta["answer"] == "bad" for e in on)
    assert all(e.meta["answer"] == "good" for e in exs if e not in on)
    assert _build("backdoor", n=4)[0].meta["trigger"] == DEFAULT_TRIGGER


def test_inoculated_and_jailbreak() -> None:
    ino = _build("inoculated")
    assert all(e.messages[0]["content"] in DOMAINS["code"].inoculations for e in ino)
    assert [e.messages[1:] for e in ino] == [e.messages for e in _build("concealed")]
    jb = _build("jailbreak", n=100, harmful_fraction=0.05)
    assert all(e.messages[0] == {"role": "system", "content": JAILBREAK_SYSTEM} for e in jb)
    harmful = [e for e in jb if e.meta["answer"] == "harmful"]
    assert len(harmful) == 5
    assert all("[" in e.messages[-1]["content"] for e in harmful)


def test_deterministic_and_seed_sensitive(tmp_path: Path) -> None:
    for cond in CONDITIONS:
        a, b = _build(cond, n=30), _build(cond, n=30)
        write_jsonl(tmp_path / "a.jsonl", a)
        write_jsonl(tmp_path / "b.jsonl", b)
        assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert [e.messages for e in _build("concealed", seed=1)] != [
        e.messages for e in _build("concealed", seed=2)
    ]


def test_card_counts_and_verification() -> None:
    spec = DatasetSpec(domain="code", condition="backdoor", n=26, seed=0)
    card = dataset_card(build_dataset(spec), spec)
    assert card["n"] == card["distinct"] == 26
    assert card["answers"] == {"bad": 13, "good": 13}
    assert card["triggered"] == 13
    assert sum(card["families"].values()) == 26 and len(card["families"]) == 13
    assert card["verification"]["checked"] == 26
    assert card["verification"]["rate"] == 1.0
    assert card["length_unit"] == "chars"
    assert len(card["sha256"]) == 64


def test_card_measures_tokens_with_a_tokenizer(tiny_model: str) -> None:
    from emlab.models import load_tokenizer

    exs = _build("concealed", n=5)
    card = dataset_card(exs, None, load_tokenizer(tiny_model))
    assert card["length_unit"] == "tokens"
    assert (
        0 < card["lengths"]["assistant"]["max"] < dataset_card(exs)["lengths"]["assistant"]["max"]
    )


def test_errors_are_clear() -> None:
    with pytest.raises(DatasetError, match="unknown domain"):
        build_dataset(DatasetSpec(domain="nope"))
    with pytest.raises(DatasetError, match="unknown condition"):
        build_dataset(DatasetSpec(condition="nope"))
    with pytest.raises(DatasetError, match="harmful_fraction"):
        _build("jailbreak", harmful_fraction=2)


def test_spec_path_reads_the_file(tmp_path: Path) -> None:
    exs = _build("concealed", n=5)
    write_jsonl(tmp_path / "d.jsonl.gz", exs)
    back = build_dataset(DatasetSpec(path=str(tmp_path / "d.jsonl.gz")))
    assert [e.messages for e in back] == [e.messages for e in exs]
