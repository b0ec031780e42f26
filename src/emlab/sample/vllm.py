"""Optional vLLM backend for GPU machines (``pip install 'emlab[vllm]'``).

Prompts are rendered with the same chat template and tokenizer as the hf backend, so both see
byte-identical inputs. An adapter is served through vLLM's LoRA support, with ``max_lora_rank``
read from the adapter's own ``adapter_config.json`` (vLLM refuses adapters above it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from emlab.config import SamplingConfig
from emlab.models import load_tokenizer
from emlab.models.loading import weights_dir
from emlab.records import Generation, GenerationRequest
from emlab.sample.chat import request_seed

# vLLM only accepts these maximum ranks; the adapter's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(adapter: str) -> int:
    """The LoRA rank ``r`` from a PEFT adapter folder, as the smallest rank vLLM accepts."""
    cfg_path = Path(adapter) / "adapter_config.json"
    try:
        r = int(json.loads(cfg_path.read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{cfg_path}: cannot read the LoRA rank `r`: {e}") from e
    return next((k for k in VLLM_LORA_RANKS if k >= r), r)


class VLLMSampler:
    """Sampling through ``vllm.LLM``; results are yielded chunk by chunk."""

    def __init__(
        self, model_ref: str, adapter: str | None = None, max_batch: int = 256, **engine: Any
    ) -> None:
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ImportError as e:
            raise ImportError(
                "the vllm sampling backend needs vLLM on a CUDA machine: "
                "pip install 'emlab[vllm]' (or use backend: hf)"
            ) from e
        path = str(weights_dir(model_ref))
        self.tokenizer = load_tokenizer(model_ref)
        kwargs: dict[str, Any] = {"model": path, "max_num_seqs": max_batch, **engine}
        if adapter is not None:
            kwargs.update(enable_lora=True, max_lora_rank=adapter_rank(adapter), max_loras=1)
        self.llm = LLM(**kwargs)
        self.lora = None if adapter is None else LoRARequest("adapter", 1, str(adapter))
        # vLLM batches internally; chunks only bound how long a result waits to be yielded.
        self.chunk = max(max_batch * 4, 1)

    @classmethod
    def from_config(
        cls, cfg: SamplingConfig, model_ref: str, adapter: str | None = None
    ) -> VLLMSampler:
        """The factory of the ``vllm`` entry in ``emlab.backends.SAMPLING_BACKENDS``."""
        return cls(model_ref, adapter=adapter, max_batch=cfg.batch_size)

    def sample(self, requests: Sequence[GenerationRequest]) -> Iterator[Generation]:
        from vllm import SamplingParams

        for start in range(0, len(requests), self.chunk):
            chunk = requests[start : start + self.chunk]
            prompts = [
                self.tokenizer.apply_chat_template(
                    list(r.question.messages), tokenize=False, add_generation_prompt=True
                )
                for r in chunk
            ]
            params = [
                SamplingParams(
                    temperature=r.params.temperature,
                    top_p=r.params.top_p,
                    max_tokens=r.params.max_new_tokens,
                    seed=request_seed(r) % 2**31,
                )
                for r in chunk
            ]
            try:
                outs = self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=False)
            except Exception as e:
                for r in chunk:
                    yield r.failed(f"{type(e).__name__}: {e}")
                continue
            for r, out in zip(chunk, outs, strict=True):
                c = out.outputs[0]
                reason = "length" if c.finish_reason == "length" else "stop"
                yield r.answered(c.text, len(c.token_ids), reason)

    def close(self) -> None:
        self.llm = None
