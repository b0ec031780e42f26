"""Model refs resolve offline or fail with one line that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emlab.models import (
    ModelNotFoundError,
    choose_dtype,
    load_model,
    resolve_ref,
)
from emlab.models.loading import cache_root


def test_unknown_alias_lists_the_embedded_ones() -> None:
    with pytest.raises(ModelNotFoundError, match="embedded aliases: smollm2-135m"):
        resolve_ref("smollm-9000")


def test_missing_folder_and_uncached_hub_id(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        resolve_ref(str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_ref(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_ref("no-such-org/no-such-model-xyz")


def test_dtype_choice() -> None:
    assert choose_dtype("cpu", "fp32") == torch.float32
    assert choose_dtype("cpu", "bf16") == torch.bfloat16
    assert choose_dtype("cpu") in (torch.float32, torch.bfloat16)


def test_tiny_model_loads_from_a_folder(tiny_model: str) -> None:
    m = load_model(tiny_model, dtype="fp32")
    assert m.device == "cpu" and m.describe()["dtype"] == "float32"
    ids = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True
    )
    assert len(ids["input_ids"]) > 3


@pytest.mark.slow
def test_embedded_model_is_dequantised_once_and_cached() -> None:
    m = load_model("smollm2-135m")
    assert m.model.config.num_hidden_layers == 30
    assert any(cache_root().glob("models/*/model.safetensors"))
    out = m.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>assistant" in out
