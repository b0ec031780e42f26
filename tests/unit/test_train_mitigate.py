"""Training-time mitigations (issue #14): per-condition recipes, continuation (`start_from`), KL
toward the base model, preventative steering, data-mixing doses and interleaved general data.

Every mechanism is off by default and then must change nothing: not the cache keys of studies
written before it existed, not one bit of the adapter. Those are the first checks here.
"""

from __future__ import annotations

from emlab.config import DatasetSpec, StudyConfig, TrainConfig
from emlab.records import Example, content_hash
from emlab.train.loop import run_fingerprint


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
