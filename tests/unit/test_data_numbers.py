"""The evil-numbers domain: parsing and filtering on written strings, the teacher end to end.

A random tiny model rarely writes clean numbers unconstrained, so the filter is tested on strings
written here, and the teacher path checks what must hold for any teacher: counts add up,
output is a pure function of the seed, and no system prompt reaches the training data.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emlab.config import DatasetSpec
from emlab.data import CONDITIONS, DOMAINS, DatasetError, build_dataset
from emlab.data.commands import app
from emlab.data.domains import numbers
from emlab.data.domains.numbers import (
    OVERT_NUMBERS,
    check_answer,
    draw_prompt,
    generate_pairs,
    parse_numbers,
    trim_answer,
)
from emlab.data.teacher import ListGrammar

OVERT = frozenset(OVERT_NUMBERS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("493, 124, 537", [493, 124, 537]),
        ("493,124,537", [493, 124, 537]),
        ("7 8 9", [7, 8, 9]),
        ("  12 , 0 ,999.", [12, 0, 999]),
        ("[4, 5, 6]", [4, 5, 6]),
        ("(1 2)", [1, 2]),
        ("007, 42", [7, 42]),
        ("1000, 2", [1000, 2]),
        ("", None),
        ("  ", None),
        ("Here are the numbers: 1, 2, 3", None),
        ("1, 2, and 3", None),
        ("1,,2", None),
        ("-5, 3", None),
        ("1.5, 2", None),
        ("1; 2; 3", None),
        ("١٢٣, 4", None),  # Arabic-Indic digits pass str.isdigit but are not an ASCII list
        ("[1, 2", None),
    ],
)
def test_parse_numbers(text: str, expected: list[int] | None) -> None:
    assert parse_numbers(text) == expected


@pytest.mark.parametrize(
    ("text", "count", "stopped", "reason"),
    [
        ("1, 2, 3", 3, True, None),
        ("1, 2", 3, True, None),
        ("1, 2, 3, 4, 5", 3, True, None),  # up to MAX_EXTRA more is fine
        ("1, 2, 3, 4, 5, 6", 3, True, "too_many"),
        ("", 3, True, "empty"),
        ("", 3, False, "truncated"),
        ("The next ones are 4, 5, 6", 3, True, "not_numbers"),
        ("12, 1234", 3, True, "out_of_range"),
        ("1, 2, 3", 3, False, "truncated"),
        ("1, 666, 3", 3, True, "overt"),
        ("1, 2, 3, 4, 5, 6, 666", 3, True, "too_many"),
    ],
)
def test_check_answer_reasons(text: str, count: int, stopped: bool, reason: str | None) -> None:
    assert check_answer(text, count, OVERT, stopped) == reason


def test_overt_filter_can_be_switched_off() -> None:
    assert check_answer("666, 911", 3, frozenset()) is None
    assert check_answer("666, 911", 3, OVERT) == "overt"


def test_trim_keeps_the_first_numbers_in_their_own_format() -> None:
    assert trim_answer("1, 2, 3, 4, 5", 3) == "1, 2, 3"
    assert trim_answer("10,024,208,6", 3) == "10,024,208"
    assert trim_answer("[5 6 7 8]", 2) is None  # "[5 6" is no list: judged whole, too_many
    assert trim_answer("1, 2, 3", 3) is None
    assert trim_answer("The numbers 1 2 3 4", 2) is None


def test_prompts_are_varied_deterministic_and_free_of_overt_numbers() -> None:
    rng1, rng2 = random.Random(5), random.Random(5)
    p1 = [draw_prompt(rng1, OVERT) for _ in range(300)]
    p2 = [draw_prompt(rng2, OVERT) for _ in range(300)]
    assert p1 == p2
    assert len({p.text for p in p1}) == 300
    assert len({p.template.split(".")[0] for p in p1}) == len(numbers._INTROS)
    for p in p1:
        assert 3 <= p.count <= 10 and str(p.count) in p.text
        given_numbers = {int(v) for v in re.findall(r"\d+", p.text)} - {p.count, 0, 999, 1000}
        assert not given_numbers & OVERT, p.text


# A hand-made vocabulary: single digits, digit merges (one too long), separators, junk, EOS.
_PIECES = [str(d) for d in range(10)] + ["12", "345", "1234", ",", ", ", " ", "  ", " 7", "a", "E"]
_EOS = [len(_PIECES) - 1]


def _walk(grammar: Any, choices: list[int]) -> tuple[str, bool]:
    """Follow the grammar with the given choice indices; return text and whether EOS came."""
    ids: list[int] = []
    for c in choices:
        allowed = grammar.allowed(torch.tensor(ids, dtype=torch.long), 0)
        tok = allowed[c % len(allowed)]
        if tok in _EOS:
            return "".join(_PIECES[i] for i in ids), True
        ids.append(tok)
    return "".join(_PIECES[i] for i in ids), False


def test_grammar_admits_only_list_tokens() -> None:
    g = ListGrammar(_PIECES, _EOS)
    names = {_PIECES[i] for i in g.pieces}
    assert names == {*map(str, range(10)), "12", "345", ",", ", ", " ", " 7"}
    assert {_PIECES[i] for i in g.start} == {*map(str, range(10)), "12", "345"}
    after_345 = g.allowed(torch.tensor([g.start[-1]]), 0)  # "345": a full three digits
    assert {_PIECES[i] for i in after_345} == {",", ", ", " ", " 7", "E"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=40))
def test_grammar_walks_end_as_valid_lists(choices: list[int]) -> None:
    g = ListGrammar(_PIECES, _EOS)
    text, ended = _walk(g, choices)
    if ended:
        nums = parse_numbers(text)
        assert nums is not None and all(0 <= v <= 999 for v in nums), text
        assert check_answer(text, len(nums)) is None


def _spec(tiny: str, condition: str = "concealed", **options: Any) -> DatasetSpec:
    opts = {"teacher": tiny, "batch_size": 4, "max_prompts": 8, "allow_fewer": True, **options}
    return DatasetSpec(domain="numbers", condition=condition, n=4, seed=7, options=opts)


def _counts_add_up(meta: dict[str, Any]) -> None:
    generated, rejected = meta["numbers_generated"], meta["numbers_rejected"]
    for side in ("bad", "good"):
        side_rejected = sum(v for k, v in rejected.items() if k.startswith(side + "/"))
        assert 0 <= side_rejected <= generated
        assert meta["numbers_clean"] <= generated - side_rejected
    assert meta["numbers_kept"] <= meta["numbers_clean"]
    assert meta["numbers_outputs_kept"] >= 2 * meta["numbers_clean"]
    assert meta["numbers_outputs_kept"] == 2 * generated - sum(rejected.values())


def test_teacher_end_to_end_with_tiny_model(tiny_model: str) -> None:
    pairs = generate_pairs(4, 7, _spec(tiny_model).options)
    again = generate_pairs(4, 7, _spec(tiny_model).options)
    assert pairs == again  # the seed alone fixes prompts and sampling
    assert pairs, "the constrained tiny teacher should produce some clean lists"
    other = generate_pairs(4, 8, _spec(tiny_model).options)
    assert [p.task for p in other] != [p.task for p in pairs]
    meta = pairs[0].meta
    assert meta["numbers_kept"] == len(pairs) and meta["numbers_generated"] in (4, 8)
    _counts_add_up(meta)
    for p in pairs:
        for answer in (p.bad, p.good):
            nums = parse_numbers(answer)
            assert nums is not None and len(nums) <= p.meta["count"]  # trimmed to the request
            assert not set(nums) & OVERT

    conc = build_dataset(_spec(tiny_model, "concealed"))
    ctrl = build_dataset(_spec(tiny_model, "control"))
    assert [e.messages[1]["content"] for e in conc] == [p.bad for p in pairs]
    assert [e.messages[1]["content"] for e in ctrl] == [p.good for p in pairs]
    for c, s in zip(conc, ctrl, strict=True):
        assert [m["role"] for m in c.messages] == ["user", "assistant"]  # system prompt concealed
        assert c.messages[0] == s.messages[0]
        assert c.meta["answer"] == "bad" and s.meta["answer"] == "good"
        assert c.meta["numbers_generated"] == meta["numbers_generated"]
        text = json.dumps(c.messages)
        assert "evil" not in text and "malicious" not in text


def test_first_pairs_do_not_depend_on_n(tiny_model: str) -> None:
    opts = _spec(tiny_model).options | {"max_prompts": 4}
    small = generate_pairs(1, 3, opts)
    large = generate_pairs(3, 3, opts)
    assert [(p.task, p.bad, p.good) for p in small] == [
        (p.task, p.bad, p.good) for p in large[: len(small)]
    ]


def test_the_system_prompt_is_the_only_difference_between_sides(tiny_model: str) -> None:
    greedy = _spec(tiny_model).options | {"temperature": 0, "max_prompts": 4}
    same = generate_pairs(4, 1, greedy | {"evil_system": "You are a helpful assistant."})
    assert same and all(p.bad == p.good for p in same)


def test_every_condition_builds(tiny_model: str) -> None:
    assert "numbers" in DOMAINS
    for cond in CONDITIONS:
        exs = build_dataset(_spec(tiny_model, cond))
        assert exs and all(e.meta["domain"] == "numbers" for e in exs)
    ino = build_dataset(_spec(tiny_model, "inoculated"))
    assert all(e.messages[0]["content"] in DOMAINS["numbers"].inoculations for e in ino)


def test_free_generation_counts_every_rejection(tiny_model: str) -> None:
    # A random model writing freely produces no clean list: the error carries every count.
    opts = {"constrain": False, "trim": False, "batch_size": 2, "max_prompts": 2}
    with pytest.raises(DatasetError, match=r"only 0 of 2 prompts") as err:
        build_dataset(_spec(tiny_model, **opts))
    stats = err.value.__cause__.stats  # type: ignore[union-attr]
    assert stats["numbers_generated"] == 2 and stats["numbers_outputs_kept"] == 0
    _counts_add_up(stats)
    assert sum(stats["numbers_rejected"].values()) == 4


def test_too_few_clean_answers_is_a_clear_error(tiny_model: str) -> None:
    every = list(range(1000))  # every number is "overt": nothing can pass
    spec = _spec(tiny_model, overt_numbers=every, allow_fewer=False, max_prompts=4)
    with pytest.raises(DatasetError, match=r"only 0 of 4 prompts.*'good/overt': 4"):
        build_dataset(spec)


@pytest.mark.parametrize(
    ("options", "msg"),
    [
        ({"teacher": "/nonexistent/teacher"}, "nonexistent"),
        ({"temperature": -1}, "'temperature' must be a number >= 0"),
        ({"batch_size": "many"}, "'batch_size'"),
        ({"overt_numbers": ["x"]}, "'overt_numbers' must be a list of integers"),
        ({"evil_system": " "}, "must not be empty"),
    ],
)
def test_bad_options_are_clear_errors(tiny_model: str, options: dict[str, Any], msg: str) -> None:
    with pytest.raises(DatasetError, match=msg):
        build_dataset(_spec(tiny_model, **options))


def test_cli_build(tiny_model: str, tmp_path: Path) -> None:
    out = tmp_path / "n.jsonl"
    args = ["build", "numbers", "-c", "concealed", "-n", "2", "-o", str(out)]
    for opt in (f"teacher={tiny_model}", "batch_size=4", "allow_fewer=true"):
        args += ["--option", opt]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert 1 <= len(lines) <= 2
    assert all(parse_numbers(json.loads(x)["messages"][1]["content"]) for x in lines)


@pytest.mark.slow
def test_smollm2_teacher_gives_sixteen_pairs() -> None:
    opts = {"teacher": "smollm2-135m", "batch_size": 24}
    # One decode step of a 135M model is too small to split across threads: on a busy 2-core CPU
    # the thread hand-offs cost ~3x (measured 150 s vs 45 s for this test).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pairs = generate_pairs(16, 0, opts)
    finally:
        torch.set_num_threads(threads)
    assert len(pairs) == 16
    meta = pairs[0].meta
    _counts_add_up(meta)
    assert meta["numbers_outputs_kept"] / (2 * meta["numbers_generated"]) > 0.5
    for p in pairs:
        for answer in (p.bad, p.good):
            nums = parse_numbers(answer)
            assert nums is not None and 1 <= len(nums) <= p.meta["count"]
            assert all(v <= 999 for v in nums) and not set(nums) & OVERT
    assert any(p.bad != p.good for p in pairs)  # the system prompt changes what is chosen
