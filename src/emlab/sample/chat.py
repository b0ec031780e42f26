"""What every sampling backend shares about a request: its seed, its prompt, where it stops.

Torch-free (the openai backend runs without torch), and a leaf of the sample stage: ``hf``,
``openai``, ``vllm`` and the decoding workers import it, it imports none of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from emlab.records import GenerationRequest, Message

END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


def request_seed(request: GenerationRequest) -> int:
    """Per-request seed from its cache key (which holds model, messages, params, seed, index).

    A resumed run thus redraws exactly the answers it lost, whatever else shares the batch. An
    intervention is left out: steered and unsteered answers share their random draws (common
    random numbers), so a sweep over the steering scale compares like with like and scale 0
    redraws the unsteered answers exactly.
    """
    return int(dataclasses.replace(request, intervention=None).key()[:15], 16)


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """EOS plus the chat template's end-of-turn token: chat models end answers with the latter."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(int(vocab[t]) for t in END_OF_TURN if t in vocab)
    gen_cfg = getattr(model, "generation_config", None)
    eos = getattr(gen_cfg, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    return sorted(ids)


def encode_chat(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Prompt tokens as the model saw its chat data: template text, no extra special tokens."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
