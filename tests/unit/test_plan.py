"""Power before spending hours: detectable differences by hand, a study's plan, `emlab plan`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from emlab.cli import app
from emlab.config import StudyConfig
from emlab.metrics import detectable_over_answers, detectable_over_seeds, t_cdf, t_quantile
from emlab.study import Study


def test_detectable_over_answers_hand_computed() -> None:
    # Fleiss' two-proportion sample size for p0 = 0.05 -> p1 = 0.15, two-sided alpha 0.05,
    # power 0.8 (z 1.959964 and 0.841621):
    #   pbar = 0.10: 1.959964 * sqrt(2 * 0.10 * 0.90)           = 1.959964 * 0.424264 = 0.831539
    #   0.841621 * sqrt(0.05 * 0.95 + 0.15 * 0.85) = 0.841621 * sqrt(0.175) = 0.352078
    #   n = (0.831539 + 0.352078)^2 / 0.10^2 = 1.400949 / 0.01 = 140.09 answers per arm.
    # So with 140.09 answers per arm the smallest detectable rise above 5% is 10 points.
    assert detectable_over_answers(0.05, 140.09, 0.05, 0.8) == pytest.approx(0.10, abs=1e-4)
    # More answers detect less: n x 4 about halves it (not exactly: the variance grows with p1).
    d4 = detectable_over_answers(0.05, 4 * 140.09, 0.05, 0.8)
    assert d4 is not None and 0.04 < d4 < 0.05
    # One answer per arm: even p1 = 100% needs 1.96 * sqrt(2 * 0.525 * 0.475) = 1.38 > 0.95.
    assert detectable_over_answers(0.05, 1, 0.05, 0.8) is None


def test_detectable_over_seeds_hand_computed() -> None:
    # 3 seeds per arm, df = 4: t(0.975, 4) = 2.776445, t(0.80, 4) = 0.940965 (tables).
    # sigma^2 = seed_sd^2 + p0 (1 - p0) / n = 0.03^2 + 0.05 * 0.95 / 400 = 0.0009 + 0.00011875
    #         = 0.00101875 -> sigma = 0.0319179
    # d = (2.776445 + 0.940965) * 0.0319179 * sqrt(2 / 3) = 3.717410 * 0.0319179 * 0.816497
    #   = 0.0968788
    assert t_quantile(0.975, 4) == pytest.approx(2.776445, abs=1e-6)
    assert t_quantile(0.80, 4) == pytest.approx(0.940965, abs=1e-6)
    d = detectable_over_seeds(0.05, 400, 3, 0.03, 0.05, 0.8)
    assert d == pytest.approx(0.0968788, abs=1e-6)
    # No spread between seeds and a huge n: nothing left to detect against.
    tiny = detectable_over_seeds(0.05, 1e9, 3, 0.0, 0.05, 0.8)
    assert tiny is not None and tiny < 1e-3
    with pytest.raises(ValueError, match="seeds >= 2"):
        detectable_over_seeds(0.05, 400, 1, 0.03, 0.05, 0.8)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 31])
def test_t_cdf_matches_scipy(df: int) -> None:
    for t in (-3.0, -0.4, 0.0, 1.1, 2.5, 9.0):
        assert t_cdf(t, df) == pytest.approx(float(stats.t.cdf(t, df)), abs=1e-12)
    assert t_quantile(0.9, df) == pytest.approx(float(stats.t.ppf(0.9, df)), abs=1e-9)


def _study(model: str, **extra: object) -> dict:
    return {
        "name": "planned",
        "models": [model],
        "conditions": [
            {"name": "base"},
            {"name": "insecure", "dataset": {"domain": "code", "condition": "concealed", "n": 8}},
            {"name": "safe", "dataset": {"domain": "code", "condition": "control", "n": 8}},
        ],
        "questions": ["core"],
        "train": {"max_steps": 2, "batch_size": 4, "micro_batch_size": 4},
        "sampling": {"samples_per_question": 4, "max_new_tokens": 16},
        **extra,
    }


def test_power_plan_of_a_study(tiny_model: str, tmp_path: Path) -> None:
    cfg = StudyConfig.model_validate(_study(tiny_model, adapter_scale=[1, 5], seeds=[0, 1]))
    plan = Study(cfg, run_dir=tmp_path / "run", progress=False).power_plan()
    assert plan.arms == ["base", "insecure", "insecure×5", "safe", "safe×5"]
    n_questions = plan.questions
    assert plan.answers_per_seed == 4 * n_questions and plan.seeds == 2
    pairs = {(c.a, c.b): c for c in plan.comparisons}
    assert pairs.keys() >= {("insecure", "safe"), ("insecure×5", "safe×5"), ("safe×5", "safe")}
    # two seeds: over answers, pooled: 2 x 4 x questions per arm, all at the same n
    c = pairs[("insecure", "safe")]
    assert (c.over, c.n) == ("answers", 2 * 4 * n_questions)
    assert c.detectable == detectable_over_answers(0.05, c.n, 0.05, 0.8)
    r = plan.runtime
    assert r is not None and r.adapters == 2 * 2  # scales share one adapter
    assert r.answers == 5 * 2 * 4 * n_questions  # every arm sampled, every seed
    # each adapter trains 2 steps of 4 examples: tokens are 8 examples' worth per adapter
    assert 0 < r.train_tokens and r.sample_tokens >= r.answers * 16
    params = r.parameters[tiny_model]
    assert 50_000 < params < 200_000  # the fixture's 2-layer Llama (vocab 400, hidden 64)
    flops = 4 * params * r.train_tokens + 2 * params * r.sample_tokens
    assert r.train_seconds + r.sample_seconds == pytest.approx(flops / r.flop_rate)
    text = plan.text()
    assert "smallest detectable A - B (80% power, two-sided alpha 0.05, B at 5.0%" in text
    assert f"{100 * (c.detectable or 0):+.1f} pts over answers" in text and "estimate" in text


def test_three_seeds_go_over_seeds_with_the_stated_spread(tiny_model: str, tmp_path: Path) -> None:
    plan_cfg = {"baseline_rate": 0.1, "seed_sd": 0.05, "valid_fraction": 0.5}
    cfg = StudyConfig.model_validate(_study(tiny_model, seeds=[0, 1, 2], plan=plan_cfg))
    plan = Study(cfg, run_dir=tmp_path / "run", progress=False).power_plan(runtime=False)
    assert plan.runtime is None and {c.over for c in plan.comparisons} == {"seeds"}
    n_valid = plan.answers_per_seed * 0.5
    expected = detectable_over_seeds(0.1, n_valid, 3, 0.05, 0.05, 0.8)
    assert all(c.detectable == expected and c.n == 3 for c in plan.comparisons)
    assert "seed SD 5.0 pts assumed" in plan.text()
    assert math.isclose(plan.alpha, 0.05)


def test_emlab_plan_runs_nothing_and_leaves_no_run(tiny_model: str, tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(_study(tiny_model, run_dir=str(tmp_path / "run"))))
    out = CliRunner().invoke(app, ["plan", str(study), "--json"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    assert plan["arms"] == ["base", "insecure", "safe"] and plan["runtime"]["adapters"] == 2
    assert not (tmp_path / "run").exists()


def test_seeds_option_plans_a_subset_and_refuses_a_foreign_seed(
    tiny_model: str, tmp_path: Path
) -> None:
    """``--seeds`` (plan and run) keeps some of the study's own seeds: a pilot whose work the
    full run reuses; a seed the study does not list is one line naming the option and file."""
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(_study(tiny_model, seeds=[0, 1, 2])))
    out = CliRunner().invoke(app, ["plan", str(study), "--json", "--seeds", "2,0"])
    assert out.exit_code == 0, out.output
    plan = json.loads(out.output)
    assert plan["seeds"] == 2 and plan["runtime"]["adapters"] == 2 * 2
    for bad, says in (("5", "[5] not among"), ("0,x", "expected seeds")):
        out = CliRunner().invoke(app, ["plan", str(study), "--seeds", bad])
        message = str(out.exception)  # cli.main prints an EmlabError's message as one line
        assert out.exit_code != 0 and says in message and "--seeds" in message
        assert str(study) in message or says == "expected seeds"


def test_a_missing_estimate_says_why_and_keeps_the_power(tiny_model: str, tmp_path: Path) -> None:
    """A model the planner cannot size (here: a folder whose config names no architecture
    transformers knows) loses the run-time line, not the plan."""
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(tiny_model).iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "model_type": "no-such-arch"}))
    cfg = StudyConfig.model_validate(_study(str(broken)))
    plan = Study(cfg, run_dir=tmp_path / "run", progress=False).power_plan()
    assert plan.runtime is None and plan.runtime_note and plan.comparisons
    assert f"run time: no estimate ({plan.runtime_note})" in plan.text()


def test_shards_nest_so_a_finished_shards_partner_can_be_split_in_two(tmp_path: Path) -> None:
    """README: ``0/4`` and ``2/4`` together are exactly ``0/2``, and all shards of one count
    cover every unit once (no model work: ``plan`` only lists units)."""
    cfg = StudyConfig.model_validate(
        {
            "name": "shards",
            "models": ["m1", "m2"],
            "seeds": [0, 1, 2],
            "conditions": [{"name": "base"}, {"name": "again"}],
        }
    )

    def units(shard: tuple[int, int] | None) -> list[tuple[str, str, int]]:
        st = Study(cfg, run_dir=tmp_path / "run", progress=False, shard=shard)
        return [(m, c.name, s) for m, c, s in st.plan()]

    every = units(None)
    assert len(every) == 12
    assert sorted(units((0, 4)) + units((2, 4))) == sorted(units((0, 2)))
    assert sorted(units((1, 4)) + units((3, 4))) == sorted(units((1, 2)))
    assert sorted(u for i in range(5) for u in units((i, 5))) == sorted(every)


def test_the_kl_term_and_checkpointing_are_priced_in_the_run_time(
    tiny_model: str, tmp_path: Path
) -> None:
    """A KL-regularised condition costs, per step, kl_batch_size prompts through the base
    (forward, 2 FLOPs per parameter and token) and the tuned model (4): 1.5 training tokens each."""
    from emlab.models import load_tokenizer
    from emlab.plan import chat_tokens, kl_step_tokens
    from emlab.train import load_kl_prompts

    prompts = load_kl_prompts()
    tok = load_tokenizer(tiny_model)
    mean = sum(chat_tokens(tok, [{"role": "user", "content": p}], True) for p in prompts)
    mean /= len(prompts)
    assert kl_step_tokens(tok, prompts, 3) == pytest.approx(3 * mean * 1.5)
    assert kl_step_tokens(tok, [], 3) == 0

    def train_tokens(train: dict[str, Any]) -> int:
        cfg = StudyConfig.model_validate(_study(tiny_model, train=train))
        plan = Study(cfg, run_dir=tmp_path / "run", progress=False).power_plan()
        assert plan.runtime is not None
        return plan.runtime.train_tokens

    plain = {"max_steps": 2, "batch_size": 4, "micro_batch_size": 4}
    kl = {**plain, "kl_weight": 0.5, "kl_batch_size": 3}
    # two adapters, two steps each
    assert train_tokens(kl) - train_tokens(plain) == pytest.approx(2 * 2 * 3 * mean * 1.5, abs=2)
    # recomputed activations: one more forward (2 FLOPs) on a LoRA step's 4, 6 on a full one's 6
    ckpt = {**plain, "gradient_checkpointing": True}
    assert train_tokens(ckpt) == pytest.approx(1.5 * train_tokens(plain), abs=2)
    full = {**plain, "full_finetune": True}
    assert train_tokens({**full, "gradient_checkpointing": True}) == pytest.approx(
        4 / 3 * train_tokens(full), abs=2
    )
