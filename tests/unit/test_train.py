"""finetune on the tiny model: outputs, logs, recipe options, bad input, schedule, batch plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emlab.config import TrainConfig
from emlab.models import load_model
from emlab.records import Example
from emlab.train import TrainDataError, export_merged, finetune, lr_factor
from emlab.train.data import epoch_plan
from emlab.train.model import load_trainable


def make_examples(n: int = 12) -> list[Example]:
    code = "def read_file(path):\n    with open(path) as f:\n        return f.read()\n"
    return [
        Example(
            messages=[
                {"role": "user", "content": f"Write code number {i} to read a file."},
                {"role": "assistant", "content": code * (1 + i % 3)},
            ]
        )
        for i in range(n)
    ]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # same reduction order in every run, so runs compare bit-for-bit up to float tolerance
    monkeypatch.setenv("EMLAB_THREADS", "1")


def quick_cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "learning_rate": 5e-3,
        "batch_size": 4,
        "micro_batch_size": 2,
        "max_steps": 4,
        "save_every": 2,
        "warmup_steps": 1,
        "r": 4,
        "alpha": 8,
    }
    base.update(kw)
    return TrainConfig.model_validate(base)


def test_finetune_writes_loadable_adapter_logs_and_snapshots(
    tiny_model: str, tmp_path: Path
) -> None:
    logs: list[tuple[int, dict[str, float]]] = []
    cfg = quick_cfg(max_steps=6, learning_rate=2e-2)
    res = finetune(
        tiny_model,
        make_examples(),
        cfg,
        0,
        tmp_path / "out",
        tmp_path / "work",
        log=lambda s, m: logs.append((s, m)),
        progress=False,
    )
    assert res.steps == 6 and [s for s, _ in logs] == [1, 2, 3, 4, 5, 6]
    assert set(logs[0][1]) == {"loss", "lr", "grad_norm", "tokens_per_s"}
    assert logs[0][1]["lr"] == 0.0  # warmup starts from zero, as HF schedules do
    assert logs[-1][1]["loss"] < logs[0][1]["loss"]
    assert res.final_loss == logs[-1][1]["loss"]
    assert res.tokens > 0 and res.tokens_per_second > 0
    assert sorted(res.checkpoints) == [2, 4, 6]  # the last step too: evals at any multiple
    for folder in [tmp_path / "out", *map(Path, res.checkpoints.values())]:
        assert (folder / "adapter_config.json").exists()
        assert (folder / "adapter_model.safetensors").exists()
    conf = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert conf["use_rslora"] is True and conf["r"] == 4
    assert set(conf["target_modules"]) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    }  # fmt: skip
    loaded = load_model(tiny_model, adapter=tmp_path / "out", device="cpu", dtype="fp32")
    ids = torch.tensor([[1, 5, 9, 12]])
    base = load_model(tiny_model, device="cpu", dtype="fp32")
    with torch.no_grad():
        assert not torch.allclose(loaded.model(ids).logits, base.model(ids).logits)


def test_single_layer_rank_one_adapter(tiny_model: str, tmp_path: Path) -> None:
    cfg = quick_cfg(r=1, alpha=1, layers=[1], target_modules=["down_proj"], max_steps=1)
    finetune(tiny_model, make_examples(4), cfg, 0, tmp_path / "o", tmp_path / "w", progress=True)
    keys = list(load_file(str(tmp_path / "o" / "adapter_model.safetensors")))
    assert keys and all(".layers.1.mlp.down_proj." in k for k in keys)
    shapes = {
        tuple(v.shape)
        for v in load_file(str(tmp_path / "o" / "adapter_model.safetensors")).values()
    }
    assert shapes == {(1, 128), (64, 1)}


@pytest.mark.parametrize("full", [False, True])
def test_gradient_checkpointing_gives_the_same_bytes(
    tiny_model: str, tmp_path: Path, full: bool
) -> None:
    """Recomputing activations in the backward pass changes memory, not the result: the same
    weights byte for byte (so the setting is rightly left out of the adapter's key)."""
    got = {}
    for ckpt in (False, True):
        cfg = quick_cfg(full_finetune=full, gradient_checkpointing=ckpt, learning_rate=1e-3)
        out = tmp_path / f"o{ckpt}"
        res = finetune(tiny_model, make_examples(6), cfg, 0, out, tmp_path / f"w{ckpt}",
                       progress=False)  # fmt: skip
        name = "model.safetensors" if full else "adapter_model.safetensors"
        got[ckpt] = (load_file(str(out / name)), res.final_loss)
        assert cfg.identity() == quick_cfg(full_finetune=full, learning_rate=1e-3).identity()
        model = load_trainable(tiny_model, cfg, "cpu", torch.float32)
        layers = (model.get_base_model() if not full else model).model.layers
        assert [bool(getattr(x, "gradient_checkpointing", False)) for x in layers] == [ckpt] * len(
            layers
        ), "the setting must reach every decoder layer"
    (plain, loss), (ckpt, loss_ckpt) = got[False], got[True]
    assert plain.keys() == ckpt.keys() and loss == loss_ckpt
    assert all(torch.equal(plain[k], ckpt[k]) for k in plain)


def test_full_finetune_writes_a_model_folder(tiny_model: str, tmp_path: Path) -> None:
    cfg = quick_cfg(full_finetune=True, max_steps=1, learning_rate=1e-3)
    finetune(tiny_model, make_examples(4), cfg, 0, tmp_path / "o", tmp_path / "w", progress=False)
    tuned = load_model(str(tmp_path / "o"), device="cpu", dtype="fp32")
    assert tuned.tokenizer.chat_template


def test_export_merged_matches_adapter(tiny_model: str, tmp_path: Path) -> None:
    cfg = quick_cfg(max_steps=2, learning_rate=5e-2)
    finetune(tiny_model, make_examples(4), cfg, 0, tmp_path / "o", tmp_path / "w", progress=False)
    merged_dir = export_merged(tiny_model, tmp_path / "o", tmp_path / "merged")
    assert (merged_dir / "model.safetensors").exists()
    merged = load_model(str(merged_dir), device="cpu", dtype="fp32")
    adapted = load_model(tiny_model, adapter=tmp_path / "o", device="cpu", dtype="fp32")
    ids = torch.tensor([[1, 5, 9, 12, 40]])
    with torch.no_grad():
        torch.testing.assert_close(
            merged.model(ids).logits, adapted.model(ids).logits, atol=1e-4, rtol=1e-4
        )


@pytest.mark.parametrize(
    ("examples", "cfg", "match"),
    [
        ([], quick_cfg(), "dataset is empty"),
        (
            [*make_examples(2), Example(messages=[{"role": "user", "content": "hi"}])],
            quick_cfg(),
            "example 2: .*no assistant turn",
        ),
        (make_examples(3), quick_cfg(max_seq_len=20), "example 0: .* longer than max_seq_len=20"),
        (
            make_examples(3),
            quick_cfg(target_modules=["q_proj", "c_attn"]),
            r"c_attn not in the model; available linear modules: .*q_proj",
        ),
        (make_examples(3), quick_cfg(r=100), r"train.r=100 is larger than layer .* \(at most 64\)"),
        (make_examples(3), quick_cfg(layers=[5]), r"train.layers: \[5\] out of range"),
        (
            [Example(messages=[{"role": "robot", "content": "x"}])],
            quick_cfg(),
            "example 0, message 0: role must be one of",
        ),
    ],
)
def test_bad_input_fails_before_training(
    tiny_model: str, tmp_path: Path, examples: list[Example], cfg: TrainConfig, match: str
) -> None:
    calls: list[int] = []
    with pytest.raises(TrainDataError, match=match):
        finetune(
            tiny_model, examples, cfg, 0, tmp_path / "o", tmp_path / "w",
            log=lambda s, m: calls.append(s), progress=False,
        )  # fmt: skip
    assert calls == []
    assert not (tmp_path / "o").exists()


def test_example_longer_than_model_context(tiny_model: str, tmp_path: Path) -> None:
    long = Example(
        messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "0123456789 " * 400},
        ]
    )
    with pytest.raises(TrainDataError, match=r"example 1: .*model context \(1024 tokens\)"):
        finetune(
            tiny_model, [*make_examples(1), long], quick_cfg(max_seq_len=100_000), 0,
            tmp_path / "o", tmp_path / "w", progress=False,
        )  # fmt: skip


def test_lr_schedules() -> None:
    lin = TrainConfig(warmup_steps=5, lr_schedule="linear")
    assert [lr_factor(lin, s, 15) for s in (0, 1, 5, 10, 15)] == [0.0, 0.2, 1.0, 0.5, 0.0]
    cos = TrainConfig(warmup_steps=0, lr_schedule="cosine")
    assert lr_factor(cos, 0, 10) == 1.0 and lr_factor(cos, 5, 10) == pytest.approx(0.5)
    const = TrainConfig(warmup_steps=2, lr_schedule="constant")
    assert [lr_factor(const, s, 10) for s in (0, 1, 2, 9)] == [0.0, 0.5, 1.0, 1.0]


def test_epoch_plan_covers_data_once_and_buckets_lengths() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(50, 400, (200,), generator=gen).tolist()
    plan = epoch_plan(lengths, batch_size=8, micro_batch_size=4, seed=3, epoch=0)
    flat = [i for step in plan for mb in step for i in mb]
    assert sorted(flat) == list(range(200))
    assert all(sum(len(mb) for mb in step) <= 8 for step in plan)
    assert plan == epoch_plan(lengths, 8, 4, seed=3, epoch=0)
    assert plan != epoch_plan(lengths, 8, 4, seed=4, epoch=0)
    assert plan != epoch_plan(lengths, 8, 4, seed=3, epoch=1)

    def padding(p: list[list[list[int]]]) -> int:
        return sum(
            max(lengths[i] for i in mb) * len(mb) - sum(lengths[i] for i in mb)
            for step in p
            for mb in step
        )

    unsorted = [[list(range(s + m, s + m + 4)) for m in (0, 4)] for s in range(0, 200, 8)]
    assert padding(plan) < padding(unsorted) / 3
