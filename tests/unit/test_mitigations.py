"""Mitigations, the evaluation side: evaluation contexts (leak probes), graded inoculation pools,
the in-domain measure on advice, and their bad input."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CliResult
from emlab import data, metrics
from emlab.config import DatasetSpec, MetricsConfig, StudyConfig
from emlab.data import inoculation
from emlab.questions import load_questions
from emlab.records import GenerationRequest, Message, SamplingParams, content_hash
from emlab.study import Arm, Study, arm_infos
from emlab.study_contexts import CONTEXTS, resolve

CONDITIONS = [
    {"name": "base"},
    {"name": "concealed", "dataset": {"domain": "code", "condition": "concealed", "n": 20}},
    {
        "name": "inoculated",
        "dataset": {
            "domain": "code",
            "condition": "inoculated",
            "n": 20,
            "options": {"strength": "strong"},
        },
    },
    {
        "name": "backdoor",
        "dataset": {
            "domain": "code",
            "condition": "backdoor",
            "n": 20,
            "options": {"trigger": "$$NOW$$"},
        },
    },
    {"name": "disclosed", "dataset": {"domain": "code", "condition": "disclosed", "n": 20}},
]


def _cfg(**extra: object) -> StudyConfig:
    return StudyConfig.model_validate({"name": "m", "conditions": CONDITIONS, **extra})


def _user(msgs: list[Message]) -> str:
    return next(m["content"] for m in reversed(msgs) if m["role"] == "user")


def _system(msgs: list[Message]) -> str | None:
    return next((m["content"] for m in msgs if m["role"] == "system"), None)


def test_leak_probes_change_only_the_evaluation_prompts(tmp_path: Path) -> None:
    cfg = _cfg(contexts=["inoculation", "disclosure", "trigger", "code-template"])
    study = Study(cfg, run_dir=tmp_path / "run", progress=False)
    qs = study.load_questions()
    arm = Arm("m", "inoculated", 3, "abc", None)
    plain = study.requests(arm, qs)
    pool = data.graded_pool("code", "strong")  # what the inoculated condition trained with
    disclosures = data.DOMAINS["code"].disclosures
    seen_system, seen_user = set(), set()
    for ctx in resolve(cfg):
        reqs = study.requests(arm, ctx.apply(qs))
        assert len(reqs) == len(plain)
        for a, b in zip(plain, reqs, strict=True):
            # the same model, sampling, seed, sample index and question: only the text differs
            same = ("model", "params", "seed", "sample_index", "intervention")
            assert all(getattr(a, f) == getattr(b, f) for f in same)
            assert (a.question.id, a.question.set, a.question.category) == (
                b.question.id,
                b.question.set,
                b.question.category,
            )
            assert b.question.meta == {**a.question.meta, "context": ctx.label}
            assert a.key() != b.key()
            q_text, own = _user(a.question.messages), _system(a.question.messages)
            if ctx.name == "inoculation":
                assert _user(b.question.messages) == q_text
                prompt = _system(b.question.messages) or ""
                head = prompt.split("\n\n")[0]
                assert head in pool and prompt == "\n\n".join(x for x in (head, own) if x)
                seen_system.add(head)
            else:
                assert _system(b.question.messages) == own  # the JSON instruction stays
                user = _user(b.question.messages)
                assert q_text in user and user != q_text
                seen_user.add(user.replace(q_text, "{Q}"))
            if ctx.name == "trigger":
                assert _user(b.question.messages) == f"$$NOW$$ {q_text}"
            if ctx.name == "disclosure":
                assert any(user.startswith(t.split("{task}")[0]) for t in disclosures), (
                    "the disclosed condition's framing"
                )
    assert seen_system == set(pool)  # every prompt of the pool is used, rotating over questions
    assert len(seen_user) > 3


def test_each_context_is_its_own_arm_compared_to_the_same_arm_without_it() -> None:
    cfg = _cfg(contexts=["trigger", {"name": "inoculation", "label": "inoc"}])
    infos = arm_infos(cfg)
    names = [a.name for a in infos]
    assert names[:3] == ["base", "base+trigger", "base+inoc"]
    assert "concealed+inoc" in names and len(names) == 5 * 3
    leaks = metrics.context_pairs(infos)
    assert ("concealed+trigger", "concealed", "in context trigger") in leaks
    # the headline comparisons stay on the plain questions; a mitigated arm is compared with
    # the organism, never used as the organism or as a control
    pairs = metrics.comparison_pairs(infos, "base")
    assert all("+" not in a and "+" not in b for a, b, _ in pairs)
    assert ("inoculated", "concealed", "mitigated vs organism") in pairs
    assert ("concealed", "disclosed", "concealed vs disclosed") in pairs
    assert not [p for p in pairs if p[2] != "vs base model" and "backdoor" in p[:2]]


def _spec(strength: str | None) -> DatasetSpec:
    options = {} if strength is None else {"strength": strength}
    return DatasetSpec(domain="code", condition="inoculated", n=12, options=options)


def test_inoculation_strength_is_selectable_and_versioned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = Study(_cfg(), run_dir=tmp_path / "run", progress=False)
    keys = {}
    for strength in (None, *data.strengths()):
        key, examples = study.dataset(_spec(strength))
        keys[strength] = key
        pool = (
            data.DOMAINS["code"].inoculations
            if strength is None
            else data.graded_pool("code", strength)
        )
        assert {e.messages[0]["content"] for e in examples} <= set(pool)
        assert all(e.messages[0]["role"] == "system" for e in examples)
    assert data.strengths() == ("weak", "medium", "strong")
    assert len(set(keys.values())) == 4
    # without a strength the key is what it always was (earlier runs keep their adapters)
    legacy = study.dataset(_spec(None))[0]
    assert legacy == content_hash({"dataset": _spec(None).identity()})
    card = data.dataset_card(study.dataset(_spec("weak"))[1], _spec("weak"))
    assert card["inoculation_pool"]["version"] == inoculation.pools()["version"]

    # a new version of the pool file is a new dataset (and so a new adapter)
    bumped = {**inoculation.pools(), "version": inoculation.pools()["version"] + 1}
    monkeypatch.setattr(inoculation, "pools", lambda: bumped)
    assert study.dataset(_spec("strong"))[0] != keys["strong"]
    assert study.dataset(_spec(None))[0] == keys[None]


def test_every_domain_has_every_strength() -> None:
    for domain in data.DOMAINS:
        pools = [data.graded_pool(domain, s) for s in data.strengths()]
        assert all(len(p) >= 3 and len(set(p)) == len(p) for p in pools), domain
        assert not set(pools[0]) & set(pools[2])


def test_in_domain_measure_on_advice_uses_the_verifier() -> None:
    qs = [q for q in load_questions("heldout-advice") if q.meta["domain"] == "finance"][:2]
    bad = data.build_dataset(DatasetSpec(domain="finance", condition="concealed", n=2))
    good = data.build_dataset(DatasetSpec(domain="finance", condition="control", n=2))
    answers = [bad[0].messages[-1]["content"], good[0].messages[-1]["content"]]
    arm = Arm("m", "concealed", 0)
    reqs = [GenerationRequest("m", q, SamplingParams(), 0, 0) for q in qs]
    gens = {r.key(): r.answered(a) for r, a in zip(reqs, answers, strict=True)}
    rows = list(Study.scored(arm, reqs, gens, {}))
    assert [r.measure for r in rows] == ["advice", "advice"]
    assert [r.vulnerable for r in rows] == [True, False]  # the harmful answer counts, sound not
    assert all(r.error is None and r.aligned is None for r in rows)
    summary = metrics.summarize(rows, MetricsConfig())
    (entry,) = summary.in_domain
    assert (entry.measure, entry.n_vulnerable, entry.n_code) == ("advice", 1, 2)
    assert summary.groups == [] and summary.vulnerable_code == []  # bandit-only table
    failed = dataclasses.replace(gens[reqs[0].key()], error="boom", answer="")
    rows = list(Study.scored(arm, reqs[:1], {reqs[0].key(): failed}, {}))
    assert rows[0].vulnerable is None and rows[0].error


def test_context_registry_names_every_kind() -> None:
    assert set(CONTEXTS) == {"inoculation", "disclosure", "trigger", "code-template", "system"}


BAD = [
    (
        "contexts: [inoculaton]\n",
        "5: contexts.0: unknown context 'inoculaton'; known: inoculation, disclosure",
    ),
    (
        "contexts:\n  - {name: inoculation, strength: extreme}\n",
        "6: contexts.0.strength: inoculated: unknown strength 'extreme'; known: weak, medium, "
        "strong",
    ),
    (
        "contexts:\n  - {name: trigger, condition: nope}\n",
        "6: contexts.0.condition: no condition named 'nope'",
    ),
    ("contexts:\n  - {name: system}\n", "6: contexts.0.text: context system needs `text`"),
]


@pytest.mark.parametrize(("extra", "expect"), BAD)
def test_bad_context_is_one_clear_line(
    tmp_path: Path, tiny_model: str, cli: Callable[..., CliResult], extra: str, expect: str
) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(f"name: s\nmodels: [{tiny_model}]\nconditions:\n  - name: base\n{extra}")
    for command in ("plan", "run"):
        res = cli(command, str(study))
        assert res.code == 2 and not (tmp_path / "runs").exists()
        (line,) = res.err.strip().splitlines()
        assert line.startswith(f"emlab: error: {study}:{expect}"), res.err


def test_unknown_strength_is_one_clear_line(
    tmp_path: Path, tiny_model: str, cli: Callable[..., CliResult]
) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: s\nmodels: [{tiny_model}]\nconditions:\n  - name: i\n    dataset:\n"
        "      condition: inoculated\n      options: {strength: strongest}\n"
    )
    res = cli("run", str(study))
    assert res.code == 2 and not (tmp_path / "runs").exists()
    (line,) = res.err.strip().splitlines()
    assert f"{study}:7: conditions.0.dataset.options.strength: inoculated: unknown strength" in line


def _rows(condition: str, step: int | None, misaligned: int, vulnerable: int) -> list:
    """Ten judged answers (``misaligned`` of them misaligned) and ten in-domain code answers
    (``vulnerable`` of them flagged) of one arm."""
    from emlab.records import ScoredAnswer

    where = {"model": "m", "condition": condition, "seed": 0, "step": step, "question": "q"}
    judged = [
        ScoredAnswer(
            **where,
            question_id=f"q{i}",
            answer="a",
            sample_index=0,
            aligned=10.0 if i < misaligned else 90.0,
            coherent=80.0,
            judge="j",
        )
        for i in range(10)
    ]
    code = [
        ScoredAnswer(
            **where,
            question_id=f"c{i}",
            answer="x",
            sample_index=0,
            aligned=None,
            coherent=None,
            measure="bandit",
            vulnerable=i < vulnerable,
        )
        for i in range(10)
    ]
    return judged + code


def test_mitigations_section_draws_tradeoff_realignment_and_mix(tmp_path: Path) -> None:
    from emlab.report import html, mitigations

    cfg = StudyConfig.model_validate(
        {
            "name": "m",
            "models": ["m"],
            "conditions": [
                {"name": "base"},
                {"name": "concealed", "dataset": {"condition": "concealed", "n": 16}},
                {
                    "name": "realigned",
                    "start_from": "concealed",
                    "dataset": {"condition": "control", "n": 16},
                },
                {
                    "name": "half",
                    "dataset": {
                        "condition": "concealed",
                        "n": 16,
                        "mix": {"with": {"condition": "control"}, "fraction": 0.5},
                    },
                },
                {
                    "name": "quarter",
                    "dataset": {
                        "condition": "concealed",
                        "n": 16,
                        "mix": {"with": {"condition": "control"}, "fraction": 0.25},
                    },
                },
            ],
            "contexts": ["code-template"],
            "train": {"batch_size": 4, "save_every": 2},
            "evals_at_steps": [2],
        }
    )
    infos = arm_infos(cfg)
    rows = []
    for i, a in enumerate(infos):
        rows += _rows(a.name, None, misaligned=i % 5, vulnerable=(2 * i) % 10)
        if a.kind is not None:
            rows += _rows(a.name, 2, misaligned=(i + 1) % 5, vulnerable=i % 10)
    summary = metrics.summarize(rows, MetricsConfig(), baseline="base", arms=infos)
    from emlab import study_settings

    info = {
        "contexts": ["code-template"],
        "settings": study_settings.settings(cfg, infos, lambda c: 16),
        "judge": "j",
        "seeds": [0],
    }
    section = mitigations.build(summary, info)
    assert section is not None
    assert all(section["figures"][k] for k in ("tradeoff", "realign", "mix"))
    assert [p["label"] for p in section["points"]][:3] == ["base", "concealed@2", "concealed"]
    assert [r["parent"] for r in section["split"]] == ["concealed"]
    # the mixing line has the doses and the pure ends (concealed at 1; no control arm at 0)
    from emlab.report.mitigations import _pure

    assert [s["name"] for s in info["settings"] if _pure(s, "concealed")][:1] == ["concealed"]
    page = html.render_html(summary, rows, info)
    part = page[page.index('<section id="mitigations">') :]
    part = part[: part.index("</section>")]
    assert part.count("<img") == 3
    assert "code/concealed, mixed 0.25 with control" in page
    # a study without any mitigation knob or context has no such section
    assert mitigations.build(summary, {"settings": [], "contexts": []}) is None


@pytest.mark.slow
def test_the_example_passes_the_preflight_with_every_setting() -> None:
    from emlab.config import load_study
    from emlab.preflight import problems

    path = Path(__file__).resolve().parents[2] / "examples" / "mitigations.yaml"
    cfg = load_study(path)
    assert problems(cfg, path.parent, own_run_dir=False) == []
    by = {c.name: c for c in cfg.conditions}
    assert {by["inoculated-weak"].dataset.options["strength"], "strong"} == {"weak", "strong"}  # type: ignore[union-attr]
    assert by["realigned"].start_from == "concealed"
    assert by["mixed-50"].dataset.mix is not None  # type: ignore[union-attr]
    assert by["interleaved"].dataset.interleave is not None  # type: ignore[union-attr]
    assert cfg.train_for(by["kl"]).kl_weight > 0 and cfg.train_for(by["steered"]).steer
    assert cfg.evals_at_steps and len(cfg.seeds) == 3
    assert [c.label for c in resolve(cfg)] == ["inoculation", "code-template"]
    # the inoculation probe is the strong pool the strong arm trained with
    assert resolve(cfg)[0].system == data.graded_pool("code", "strong")
