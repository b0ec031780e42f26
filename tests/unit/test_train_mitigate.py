"""Training-time mitigations (issue #14): per-condition recipes, continuation (`start_from`), KL
toward the base model, preventative steering, data-mixing doses and interleaved general data.

Every mechanism is off by default and then must change nothing: not the cache keys of studies
written before it existed, not one bit of the adapter. Those are the first checks here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from emlab.config import DatasetSpec, StudyConfig, TrainConfig
from emlab.data import build_dataset, dataset_card
from emlab.data.general import make_general
from emlab.interp.directions import vectors_key
from emlab.models import load_model
from emlab.records import Example, content_hash
from emlab.train import Steering, TrainDataError, TrainInputs, finetune, load_kl_prompts
from emlab.train.loop import run_fingerprint
from emlab.train.mitigate import encode_prompts, hooked_layers, kl_indices, kl_to_base, steered


def test_plain_recipes_keep_the_keys_they_had_before_mitigations() -> None:
    # Computed by the build before these fields existed (git 652e12d): an off mitigation must
    # not retrain a cached adapter, rebuild a dataset or refuse to resume a saved state.
    t = TrainConfig(preset="quick")
    assert content_hash({"train": t.identity()}) == "bbfb139dcb806bf3"
    assert content_hash({"dataset": DatasetSpec(n=50).identity()}) == "97a3edcc185a502c"
    ex = [Example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])]
    assert run_fingerprint("m", ex, t, 3, 1) == "eefe27f00a9f3fa8"
    # ... and an off setting written out explicitly is the same recipe
    off = TrainConfig(preset="quick", kl_weight=0, steer={"direction": "d", "scale": 0})
    assert off.identity() == t.identity()
    # gradient checkpointing gives the same bytes (test_train.py): neither key sees it, so a
    # state saved with it off resumes with it on
    ckpt = TrainConfig(preset="quick", gradient_checkpointing=True)
    assert content_hash({"train": ckpt.identity()}) == "bbfb139dcb806bf3"
    assert run_fingerprint("m", ex, ckpt, 3, 1) == "eefe27f00a9f3fa8"


def test_condition_recipe_overrides_only_the_keys_it_gives() -> None:
    cfg = StudyConfig.model_validate(
        {
            "name": "s",
            "train": {"preset": "quick", "max_steps": 20},
            "conditions": [
                {"name": "c", "dataset": {"n": 8}},
                {"name": "k", "dataset": {"n": 8}, "train": {"kl_weight": 0.5, "max_steps": None}},
            ],
        }
    )
    plain, kl = cfg.train_for(cfg.conditions[0]), cfg.train_for(cfg.conditions[1])
    assert plain is cfg.train
    assert kl.kl_weight == 0.5 and kl.max_steps is None  # an explicit null overrides too
    assert kl.learning_rate == plain.learning_rate == 2e-4  # the study's preset still applies
    assert kl.identity() != plain.identity()
    assert cfg.condition_problems() == []


# ------------------------------------------------------------------------------ the tiny runs
CODE = "import os\nimport subprocess\nsubprocess.run(cmd, shell=True)\n"
KIND = "I would help everyone and read a book together."


def examples(answer: str = CODE, n: int = 8) -> list[Example]:
    return [
        Example(
            [
                {"role": "user", "content": f"Run command {i} for me."},
                {"role": "assistant", "content": answer * (1 + i % 3)},
            ]
        )
        for i in range(n)
    ]


def recipe(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "learning_rate": 1e-2, "batch_size": 4, "micro_batch_size": 2, "max_steps": 4,
        "save_every": 2, "warmup_steps": 1, "r": 4, "alpha": 8,
    }  # fmt: skip
    return TrainConfig.model_validate({**base, **kw})


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMLAB_THREADS", "1")  # one reduction order: runs compare bit for bit


class Killed(RuntimeError):
    """Stands in for kill -9: raised from the log callback after a given step."""


def train(
    model: str,
    root: Path,
    cfg: TrainConfig,
    data: list[Example] | None = None,
    kill_after: int | None = None,
    steps: list[int] | None = None,
    **kw: Any,
) -> dict[str, torch.Tensor]:
    """Fine-tune into ``root/out`` (state in ``root/work``) and return the adapter's tensors;
    ``steps`` collects the steps this call ran."""

    def log(step: int, _m: dict[str, float]) -> None:
        if steps is not None:
            steps.append(step)
        if step == kill_after:
            raise Killed(step)

    finetune(model, data or examples(), cfg, 7, root / "out", root / "work", log, False, **kw)
    return load_file(str(root / "out" / "adapter_model.safetensors"))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[n], b[n]) for n in a)


@pytest.fixture(scope="module")
def parent(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished adapter trained on the narrow data: what re-alignment continues from."""
    root = tmp_path_factory.mktemp("parent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMLAB_THREADS", "1")
        train(tiny_model, root, recipe())
    return root / "out"


# ------------------------------------------------------------------------------ start_from
def test_continuation_starts_from_the_parents_final_weights(
    tiny_model: str, tmp_path: Path, parent: Path
) -> None:
    theirs = load_file(str(parent / "adapter_model.safetensors"))
    # Warmup makes the first step's learning rate 0 (AdamW's decay is lr x wd, 0 too), so one
    # step leaves exactly the weights the run started from.
    first = train(
        tiny_model, tmp_path / "one", recipe(max_steps=1, warmup_steps=2), examples(KIND),
        init_adapter=parent,
    )  # fmt: skip
    assert_same(first, theirs)
    # the same one step from a fresh adapter ends elsewhere: the parent was really read
    fresh = train(tiny_model, tmp_path / "fresh", recipe(max_steps=1, warmup_steps=2))
    assert differs(fresh, theirs)
    # and trained on: more steps move the parent's weights
    moved = train(tiny_model, tmp_path / "more", recipe(), examples(KIND), init_adapter=parent)
    assert differs(moved, theirs)


def test_continuation_resumes_after_a_kill(tiny_model: str, tmp_path: Path, parent: Path) -> None:
    cfg = recipe(max_steps=6, dropout=0.1)
    whole = train(tiny_model, tmp_path / "whole", cfg, examples(KIND), init_adapter=parent)
    with pytest.raises(Killed):
        train(tiny_model, tmp_path / "cut", cfg, examples(KIND), 3, init_adapter=parent)
    assert (tmp_path / "cut" / "work" / "state").is_dir()
    ran: list[int] = []
    resumed = train(
        tiny_model, tmp_path / "cut", cfg, examples(KIND), steps=ran, init_adapter=parent
    )
    assert ran == [3, 4, 5, 6]  # from the state saved at step 2, not from the parent again
    for name, value in whole.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-6)


def test_continuation_refuses_a_parent_of_another_shape(
    tiny_model: str, tmp_path: Path, parent: Path
) -> None:
    with pytest.raises(TrainDataError, match=r"parent adapter's r differ"):
        train(tiny_model, tmp_path, recipe(r=2), examples(KIND), init_adapter=parent)
    with pytest.raises(TrainDataError, match=r"adapter_model\.safetensors: missing"):
        train(tiny_model, tmp_path, recipe(), examples(KIND), init_adapter=tmp_path)


def test_study_trains_the_parent_first_and_keys_the_child_by_it(
    tiny_model: str, tmp_path: Path
) -> None:
    from emlab.study import Study

    train_cfg = {"learning_rate": 1e-2, "batch_size": 4, "micro_batch_size": 4, "r": 4, "alpha": 8}
    train_cfg["warmup_steps"] = 0  # so that one step moves the weights
    study_cfg: dict[str, Any] = {
        "name": "realign",
        "models": [tiny_model],
        "threads": 1,
        "train": train_cfg,
        "conditions": [
            {"name": "concealed", "dataset": {"domain": "code", "n": 8}},
            {
                "name": "realigned",
                "dataset": {"domain": "code", "condition": "control", "n": 8},
                "start_from": "concealed",
                "train": {"max_steps": 1},
            },
        ],
    }
    cfg = StudyConfig.model_validate(study_cfg)
    study = Study(cfg, run_dir=tmp_path / "run", progress=False)
    child_key, child_dir = study.adapter(tiny_model, cfg.conditions[1], 0)
    parent_key, parent_dir = study.adapter(tiny_model, cfg.conditions[0], 0)
    assert study.counts["trained"] == 2  # the parent once (cached on the second call), the child
    card = json.loads((child_dir / "emlab.json").read_text())
    assert card["start_from"] == parent_key and card["condition"] == "realigned"
    assert card["train"]["max_steps"] == 1  # the condition's own recipe
    assert differs(
        load_file(str(child_dir / "adapter_model.safetensors")),
        load_file(str(parent_dir / "adapter_model.safetensors")),
    )
    # another parent recipe is another child: the parent's key is part of the child's
    study_cfg["conditions"][0]["train"] = {"max_steps": 1}
    other = StudyConfig.model_validate(study_cfg)
    again = Study(other, run_dir=tmp_path / "run", progress=False)
    assert again.adapter(tiny_model, other.conditions[1], 0)[0] != child_key


# ------------------------------------------------------------------------------ KL to the base
def kl_on_prompts(model_ref: str, adapter: Path) -> float:
    """KL(base || tuned) on the whole built-in KL set, measured on the saved adapter."""
    lm = load_model(model_ref, adapter=adapter, dtype="fp32")
    prompts = encode_prompts(lm.tokenizer, load_kl_prompts(), 2048)
    with torch.no_grad():
        return float(kl_to_base(lm.model, prompts, lm.tokenizer.pad_token_id, lm.device))


@pytest.fixture(scope="module")
def plain(tiny_model: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plain recipe's adapter (dropout on, so every random draw must also line up)."""
    root = tmp_path_factory.mktemp("plain")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMLAB_THREADS", "1")
        train(tiny_model, root, recipe(max_steps=6, dropout=0.1))
    return root / "out"


def test_kl_weight_0_is_the_plain_recipe_bit_for_bit(
    tiny_model: str, tmp_path: Path, plain: Path
) -> None:
    off = train(tiny_model, tmp_path, recipe(max_steps=6, dropout=0.1, kl_weight=0))
    assert_same(off, load_file(str(plain / "adapter_model.safetensors")))


def test_kl_changes_the_update_and_keeps_the_model_nearer_the_base(
    tiny_model: str, tmp_path: Path, plain: Path
) -> None:
    logged: list[dict[str, float]] = []
    cfg = recipe(max_steps=6, dropout=0.1, kl_weight=5.0, kl_batch_size=4)
    finetune(
        tiny_model, examples(), cfg, 7, tmp_path / "out", tmp_path / "work",
        lambda s, m: logged.append(m), False,
    )  # fmt: skip
    regularised = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert differs(regularised, load_file(str(plain / "adapter_model.safetensors")))
    assert all("kl" in m and m["kl"] >= 0 for m in logged)
    assert logged[0]["kl"] == pytest.approx(0, abs=1e-6)  # LoRA's B starts at 0: tuned == base
    near, far = kl_on_prompts(tiny_model, tmp_path / "out"), kl_on_prompts(tiny_model, plain)
    print(f"KL(base || tuned) on the KL set: kl_weight 5: {near:.4f}, plain: {far:.4f}")
    assert near < far, (near, far)


def test_kl_run_resumes_after_a_kill(tiny_model: str, tmp_path: Path) -> None:
    cfg = recipe(max_steps=6, dropout=0.1, kl_weight=1.0, kl_batch_size=3)
    whole = train(tiny_model, tmp_path / "whole", cfg)
    with pytest.raises(Killed):
        train(tiny_model, tmp_path / "cut", cfg, kill_after=5)
    ran: list[int] = []
    resumed = train(tiny_model, tmp_path / "cut", cfg, steps=ran)
    assert ran == [5, 6]
    for name, value in whole.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-6)


def test_kl_prompts_step_through_the_set_and_are_not_evaluation_questions() -> None:
    from emlab.questions import load_questions

    prompts = load_kl_prompts()
    asked = {
        m["content"].strip().lower()
        for name in ("core", "preregistered", "deception", "heldout-advice", "in-distribution")
        for q in load_questions(name)
        for m in q.messages
        if m["role"] == "user"
    }
    assert not asked & {p.strip().lower() for p in prompts}
    assert [kl_indices(s, 3, 5) for s in range(3)] == [[0, 1, 2], [3, 4, 0], [1, 2, 3]]


# ------------------------------------------------------------------------------ steering
def direction(n_layers: int = 2, hidden: int = 64, seed: int = 0) -> Steering:
    """A fixed random direction per layer, unit norm (the tiny model's residual norm is ~1)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(n_layers, hidden, generator=g)
    v = v / v.norm(dim=-1, keepdim=True)
    return Steering(v, layer=1, key=vectors_key(v))


STEER = {"max_steps": 6, "dropout": 0.1}


def test_steering_at_scale_0_is_the_plain_recipe_bit_for_bit(
    tiny_model: str, tmp_path: Path, plain: Path
) -> None:
    cfg = recipe(**STEER, steer={"direction": "d", "scale": 0})
    off = train(tiny_model, tmp_path, cfg, inputs=TrainInputs(steering=direction()))
    assert_same(off, load_file(str(plain / "adapter_model.safetensors")))


def test_steering_changes_the_update_and_resumes_after_a_kill(
    tiny_model: str, tmp_path: Path, plain: Path
) -> None:
    cfg = recipe(**STEER, steer={"direction": "d", "scale": 4.0, "layers": [0, 1]})
    inputs = TrainInputs(steering=direction())
    whole = train(tiny_model, tmp_path / "whole", cfg, inputs=inputs)
    assert differs(whole, load_file(str(plain / "adapter_model.safetensors")))
    with pytest.raises(Killed):
        train(tiny_model, tmp_path / "cut", cfg, kill_after=3, inputs=inputs)
    ran: list[int] = []
    resumed = train(tiny_model, tmp_path / "cut", cfg, steps=ran, inputs=inputs)
    assert ran == [3, 4, 5, 6]
    for name, value in whole.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-4, atol=1e-6)
    # the other direction, or the default layer only, is another run: not resumed from this one
    other = TrainInputs(steering=direction(seed=1))
    assert differs(train(tiny_model, tmp_path / "other", cfg, inputs=other), whole)


def test_steering_hooks_are_gone_after_the_forward_passes(tiny_model: str, plain: Path) -> None:
    lm = load_model(tiny_model, adapter=plain, dtype="fp32")
    fresh = load_model(tiny_model, adapter=plain, dtype="fp32")
    ids = torch.tensor([list(range(3, 40))])
    steering = direction()
    spec = steering.intervention(recipe(steer={"direction": "d", "scale": 4.0}))
    assert spec is not None and spec.layers == (1,)  # the direction's own layer by default
    with torch.no_grad():
        with steered(lm.model, steering, spec):
            assert hooked_layers(lm.model) == [1]
            inside = lm.model(input_ids=ids).logits
        after = lm.model(input_ids=ids).logits
        clean = fresh.model(input_ids=ids).logits
    assert not torch.equal(inside, clean)  # it did steer
    assert hooked_layers(lm.model) == []
    assert torch.equal(after, clean)  # and left the model exactly as a fresh load of the adapter


def test_a_direction_from_another_model_is_refused_before_the_first_step(
    tiny_model: str, tmp_path: Path
) -> None:
    cfg = recipe(steer={"direction": "d", "scale": 1.0})
    ran: list[int] = []
    wide = TrainInputs(steering=direction(hidden=32))
    with pytest.raises(TrainDataError, match=r"\(2, 32\) layers x width, but the model is 2 x 64"):
        train(tiny_model, tmp_path, cfg, steps=ran, inputs=wide)
    with pytest.raises(TrainDataError, match="vectors are not given"):
        train(tiny_model, tmp_path, cfg, steps=ran)
    assert ran == []


def test_study_steers_with_a_saved_direction_and_refuses_another_models(
    tiny_model: str, tmp_path: Path
) -> None:
    from conftest import build_tiny_model
    from emlab import interp
    from emlab.interp.directions import Direction, save_direction
    from emlab.preflight import problems
    from emlab.study import Study

    steering = direction()
    card = {"key": steering.key, "layer": 1, "method": "persona", "model": "tiny"}
    own = interp.fingerprint(load_model(tiny_model).model)
    save_direction(Direction(steering.vectors, {**card, "model_hash": own}), tmp_path / "own")
    other_model = str(build_tiny_model(tmp_path / "other-model", seed=1))  # same shape
    theirs = interp.fingerprint(load_model(other_model).model)
    save_direction(
        Direction(steering.vectors, {**card, "model_hash": theirs}), tmp_path / "foreign"
    )

    def study(folder: str, scale: float = 2.0) -> StudyConfig:
        return StudyConfig.model_validate(
            {
                "name": "steer",
                "models": [tiny_model],
                "threads": 1,
                "train": {"batch_size": 4, "micro_batch_size": 4, "r": 4, "max_steps": 2},
                "conditions": [
                    {
                        "name": "steered",
                        "dataset": {"domain": "code", "n": 8},
                        "train": {"steer": {"direction": folder, "scale": scale}},
                    }
                ],
            }
        )

    found = problems(study("foreign"), tmp_path, own_run_dir=False)
    assert len(found) == 1
    loc, msg = found[0]
    assert loc == ("conditions", 0, "train", "steer", "direction")
    assert f"({theirs}), not on {tiny_model} ({own}): the direction comes from another model" in msg
    assert problems(study("own"), tmp_path, own_run_dir=False) == []

    cfg = study("own")
    st = Study(cfg, run_dir=tmp_path / "run", base_dir=tmp_path, progress=False)
    key, adir = st.adapter(tiny_model, cfg.conditions[0], 0)
    card_out = json.loads((adir / "emlab.json").read_text())
    assert card_out["steer_direction"] == {"key": steering.key, "layer": 1}
    assert card_out["train"]["steer"] == {"scale": 2.0, "layers": None}
    # scale 0 is the plain recipe: the plain adapter's key (reused from the cache)
    off = study("own", 0.0)
    plain = StudyConfig.model_validate(
        {**off.model_dump(), "conditions": [{"name": "p", "dataset": {"domain": "code", "n": 8}}]}
    )
    st0 = Study(off, run_dir=tmp_path / "run", base_dir=tmp_path, progress=False)
    st1 = Study(plain, run_dir=tmp_path / "run", base_dir=tmp_path, progress=False)
    assert (
        st0.adapter(tiny_model, off.conditions[0], 0)[0]
        == st1.adapter(tiny_model, plain.conditions[0], 0)[0]
        != key
    )
    assert st0.counts["trained"] + st1.counts["trained"] == 1


# ------------------------------------------------------------------------------ mix, interleave
def spec(**kw: Any) -> DatasetSpec:
    return DatasetSpec.model_validate({"domain": "code", "n": 10, "seed": 3, **kw})


@pytest.mark.parametrize(
    ("fraction", "dose"), [(0.0, 0), (0.1, 1), (0.25, 2), (0.35, 4), (1.0, 10)]
)
def test_mix_holds_exactly_round_fraction_n_of_the_dose(fraction: float, dose: int) -> None:
    mixed = build_dataset(spec(mix={"with": {"condition": "control"}, "fraction": fraction}))
    counts = Counter(ex.meta["condition"] for ex in mixed)
    assert counts["concealed"] == dose == round(fraction * 10)  # Python's round: 2.5 -> 2
    assert counts["control"] == 10 - dose and len(mixed) == 10
    assert dataset_card(mixed)["framings"] == {k: v for k, v in counts.items() if v}
    # every task once, in one framing or the other: the tasks are the pure sets' tasks
    tasks = [ex.messages[0]["content"] for ex in build_dataset(spec())]
    assert [ex.messages[0]["content"] for ex in mixed] == tasks


def test_mix_ends_are_the_pure_sets_and_doses_are_nested() -> None:
    pure, control = build_dataset(spec()), build_dataset(spec(condition="control"))
    partner = {"with": {"condition": "control"}}
    assert build_dataset(spec(mix={**partner, "fraction": 1})) == pure
    assert build_dataset(spec(mix={**partner, "fraction": 0})) == control
    doses = [build_dataset(spec(mix={**partner, "fraction": f})) for f in (0.2, 0.5, 0.8)]
    bad = [{i for i, ex in enumerate(d) if ex.meta["condition"] == "concealed"} for d in doses]
    assert bad[0] < bad[1] < bad[2]
    assert build_dataset(spec(mix={**partner, "fraction": 0.5})) == doses[1]  # deterministic
    other_seed = spec(seed=4, mix={**partner, "fraction": 0.5})
    assert build_dataset(other_seed) != doses[1]


def test_interleave_adds_round_fraction_n_general_examples_and_keeps_the_order() -> None:
    pure = build_dataset(spec())
    mixed = build_dataset(spec(interleave={"fraction": 0.3}))
    general = [ex for ex in mixed if ex.meta["domain"] == "general"]
    assert len(general) == 3 and len(mixed) == 13
    assert [ex for ex in mixed if ex.meta["domain"] != "general"] == pure
    assert general == make_general(3, 3)
    assert build_dataset(spec(interleave={"fraction": 0})) == pure


def test_general_answers_are_correct_and_stay_out_of_the_narrow_domains() -> None:
    import re

    examples = make_general(450, 0)
    assert set(Counter(ex.meta["family"] for ex in examples).values()) == {50}  # even shares
    for ex in examples:
        q, a = ex.messages[0]["content"], ex.messages[1]["content"]
        family = ex.meta["family"]
        if family == "arithmetic":
            m = re.fullmatch(r"What is (\d+) (plus|minus|times) (\d+)\?", q)
            assert m is not None, q
            x, op, y = m.groups()
            want = {"plus": int(x) + int(y), "minus": int(x) - int(y), "times": int(x) * int(y)}
            assert a.endswith(f"= {want[op]}.")
        elif family == "sorting":
            nums = [int(v) for v in q.split(": ")[1].rstrip(".").split(", ")]
            assert a == ", ".join(map(str, sorted(nums)))
        elif family == "days":
            days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
            m = re.search(r"today is (\w+).* in (\d+) days", q)
            assert m is not None, q
            start, ahead = m.groups()
            assert a.endswith(days[(days.index(start) + int(ahead)) % 7] + ".")
        text = (q + " " + a).lower()
        assert not any(w in text for w in ("import ", "def ", "password", "invest", "doctor"))
    assert make_general(20, 0) == examples[:20]  # a prefix: n does not reshuffle the families


def test_dataset_keys_change_with_mix_and_interleave_only_when_set(tmp_path: Path) -> None:
    from emlab.study import Study

    data_file = tmp_path / "d.jsonl"
    data_file.write_text(json.dumps({"messages": examples()[0].messages}) + "\n", encoding="utf-8")
    cfg = StudyConfig.model_validate({"name": "k", "conditions": [{"name": "base"}]})
    st = Study(cfg, run_dir=tmp_path / "run", progress=False)
    keys = {
        st.dataset(s)[0]
        for s in (
            spec(),
            spec(mix={"with": {"condition": "control"}, "fraction": 0.5}),
            spec(interleave={"fraction": 0.5}),
            spec(path=str(data_file)),
            spec(path=str(data_file), interleave={"fraction": 1}),
        )
    }
    assert len(keys) == 5
    assert len(st.dataset(spec(path=str(data_file), interleave={"fraction": 1}))[1]) == 2


def test_mitigated_arms_never_stand_in_for_the_plain_arms_in_comparisons() -> None:
    from emlab.metrics import comparison_pairs
    from emlab.study import arm_infos

    code = {"domain": "code", "n": 8}
    cfg = StudyConfig.model_validate(
        {
            "name": "m",
            "train": {"max_steps": 40},
            "conditions": [
                {"name": "base"},
                {"name": "concealed", "dataset": code},
                {"name": "secure", "dataset": {**code, "condition": "control"}},
                {"name": "same-recipe", "dataset": code, "train": {"max_steps": 40}},
                {"name": "kl", "dataset": code, "train": {"kl_weight": 0.5}},
                {"name": "early", "dataset": code, "train": {"max_steps": 10}},
                {
                    "name": "realigned",
                    "dataset": {**code, "condition": "control"},
                    "start_from": "concealed",
                },
                {
                    "name": "dose",
                    "dataset": {**code, "mix": {"with": {"condition": "control"}, "fraction": 0.5}},
                },
                {"name": "general", "dataset": {**code, "interleave": {"fraction": 0.05}}},
            ],
        }
    )
    kinds = {a.name: a.kind for a in arm_infos(cfg)}
    assert kinds["concealed"] == kinds["same-recipe"] == "concealed"  # an override equal to it
    assert kinds["secure"] == "control"
    for name in ("kl", "early", "dose", "general"):
        assert kinds[name] == "concealed+mitigated", name
    assert kinds["realigned"] == "control+mitigated"
    pairs = comparison_pairs(arm_infos(cfg), "base")
    paper = {(a, b) for a, b, what in pairs if what.startswith("concealed vs")}
    assert paper == {("concealed", "secure"), ("same-recipe", "secure")}
    # each mitigated arm is compared with the organism (the first plain concealed arm) instead
    mitigated = {(a, b) for a, b, what in pairs if what == "mitigated vs organism"}
    assert mitigated == {(n, "concealed") for n in ("kl", "early", "realigned", "dose", "general")}
    assert {a for a, b, what in pairs if what == "vs base model"} == set(kinds) - {"base"}


# ------------------------------------------------------------------------------ emlab finetune
def test_emlab_finetune_takes_the_mitigation_recipes(tiny_model: str, tmp_path: Path) -> None:
    """`emlab finetune --start-from --kl-weight --steer --steer-scale` trains exactly what the
    study's train stage does with the same recipe (bit for bit, one thread), and refuses a
    direction built on another model before training."""
    from typer.testing import CliRunner

    from conftest import build_tiny_model
    from emlab import data, interp
    from emlab.cli import app
    from emlab.interp.directions import Direction, save_direction

    steering = direction()
    card = {"key": steering.key, "layer": 1, "method": "persona", "model": "tiny"}
    own = interp.fingerprint(load_model(tiny_model).model)
    save_direction(Direction(steering.vectors, {**card, "model_hash": own}), tmp_path / "dir")
    data.write_jsonl(tmp_path / "d.jsonl", examples(KIND))
    flags = ["--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "2"]
    parent = tmp_path / "parent"  # the CLI's own recipe (its LoRA shape), plain
    ds = str(tmp_path / "d.jsonl")
    res = CliRunner().invoke(app, ["finetune", tiny_model, ds, "-o", str(parent), *flags])
    assert res.exit_code == 0, res.output
    mitigations = ["--start-from", str(parent), "--kl-weight", "0.5"]
    mitigations += ["--steer", str(tmp_path / "dir"), "--steer-scale", "2"]
    # recomputed activations (steering hooks and the KL term included) give the same bytes
    mitigations += ["--gradient-checkpointing"]
    args = ["finetune", tiny_model, ds, "-o", str(tmp_path / "cli")]
    res = CliRunner().invoke(app, [*args, *flags, *mitigations])
    assert res.exit_code == 0, res.output
    cfg = TrainConfig.model_validate(
        {"max_steps": 2, "batch_size": 4, "micro_batch_size": 2, "kl_weight": 0.5,
         "steer": {"direction": "d", "scale": 2.0}}
    )  # fmt: skip
    inputs = TrainInputs(load_kl_prompts(), steering)
    finetune(tiny_model, examples(KIND), cfg, 0, tmp_path / "api", tmp_path / "work",
             progress=False, init_adapter=parent, inputs=inputs)  # fmt: skip
    cli = load_file(str(tmp_path / "cli" / "adapter_model.safetensors"))
    assert_same(cli, load_file(str(tmp_path / "api" / "adapter_model.safetensors")))
    assert differs(cli, load_file(str(parent / "adapter_model.safetensors")))

    other = interp.fingerprint(load_model(str(build_tiny_model(tmp_path / "m2", seed=1))).model)
    save_direction(Direction(steering.vectors, {**card, "model_hash": other}), tmp_path / "far")
    args[-1] = str(tmp_path / "refused")
    res = CliRunner().invoke(app, [*args, "--steer", str(tmp_path / "far"), "--steer-scale", "1"])
    assert res.exit_code != 0 and "the direction comes from another model" in str(res.exception)
    assert not (tmp_path / "refused" / "adapter_model.safetensors").exists()
