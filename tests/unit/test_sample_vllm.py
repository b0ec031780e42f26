"""The optional vLLM backend: what can be checked without vLLM or a GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from emlab.sample.vllm import VLLMSampler, adapter_rank


def test_vllm_backend_reads_rank_and_fails_clearly_without_vllm(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 24, "lora_alpha": 48}))
    assert adapter_rank(str(tmp_path)) == 32  # rounded up to a rank vLLM accepts
    with pytest.raises(ValueError, match=r"adapter_config\.json"):
        adapter_rank(str(tmp_path / "missing"))
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ImportError, match="emlab\\[vllm\\]"):
            VLLMSampler("smollm2-135m")
