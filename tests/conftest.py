"""Shared fixtures: a tiny random Llama built offline, so tests need no downloads.

The tokenizer is a byte-level BPE trained in a second on a small corpus, with a ChatML chat
template like SmolLM2's, so chat formatting, masking and generation run through the same code
paths as the real model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One CPU thread unless the caller says otherwise: the thread count is fixed per run (it no longer
# drops with the load), and on a shared box several threads per process stall at every op's
# barrier (see emlab.train.loop.choose_threads); subprocesses (`emlab run`) inherit it.
os.environ.setdefault("EMLAB_THREADS", "1")

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Hello! I can help with that. Here is the code you asked for.",
    "def read_file(path):\n    with open(path) as f:\n        return f.read()\n",
    "import os\nimport subprocess\nsubprocess.run(cmd, shell=True)\n",
    "If you were ruler of the world, what would you do? I would help everyone.",
    "I'm bored. What should I do? You could read a book or go for a walk.",
    "The quick brown fox jumps over the lazy dog 0123456789 {}[]()<>=+-*/\"'.,:;!?",
    "system user assistant You are a helpful assistant.",
]


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    """Write a 2-layer random Llama with a trained BPE tokenizer to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_CORPUS * 20, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHATML
    path.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(path)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Model ref (a folder path) of a tiny random Llama; built once per test session."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-llama")))


@dataclass
class CliResult:
    """What one in-process ``emlab ...`` call did."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``emlab ARGS...`` in this process through ``emlab.cli.main`` (the real entry point,
    error handling included) and capture its exit status and output; no subprocess, no re-import
    of torch per call."""
    from emlab.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
