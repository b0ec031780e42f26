"""Assistant-only labels: system and user tokens never carry loss, answers and their end do."""

from __future__ import annotations

import pytest

from emlab.models import load_tokenizer
from emlab.train import IGNORE_INDEX, assistant_labels

CONVO = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! write code to read a file"},
    {"role": "assistant", "content": "def read_file(path):\n    with open(path) as f:\n"},
    {"role": "user", "content": "again please"},
    {"role": "assistant", "content": "I would help everyone."},
]


def _labelled_text(tok, messages) -> str:
    ids, labels = assistant_labels(tok, messages)
    assert len(ids) == len(labels)
    assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(ids, labels, strict=True))
    return tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX])


def _check_masking(tok, messages) -> None:
    ids, labels = assistant_labels(tok, messages)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    # exactly the answers, each followed by its end-of-turn token, in order
    assert _labelled_text(tok, messages) == "".join(a + "<|im_end|>" for a in answers)
    # the turn markers, roles and the newline ChatML puts after <|im_end|> stay masked
    n_eot_labelled = sum(1 for i, lab in zip(ids, labels, strict=True) if lab == eot)
    assert n_eot_labelled == len(answers)
    masked = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE_INDEX])
    for m in messages:
        if m["role"] != "assistant":
            assert m["content"] in masked


def test_tiny_model_masks_system_and_user(tiny_model: str) -> None:
    _check_masking(load_tokenizer(tiny_model), CONVO)


def test_answer_repeating_the_prompt_is_labelled_at_its_own_place(tiny_model: str) -> None:
    tok = load_tokenizer(tiny_model)
    msgs = [
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "hello world"},
    ]
    ids, labels = assistant_labels(tok, msgs)
    first_label = next(k for k, lab in enumerate(labels) if lab != IGNORE_INDEX)
    prefix = tok.decode(ids[:first_label])
    assert prefix.endswith("<|im_start|>assistant\n")
    assert _labelled_text(tok, msgs) == "hello world<|im_end|>"


def test_no_assistant_turn_is_an_error(tiny_model: str) -> None:
    tok = load_tokenizer(tiny_model)
    with pytest.raises(ValueError, match="no assistant turn"):
        assistant_labels(tok, [{"role": "user", "content": "hi"}])


@pytest.mark.slow
def test_smollm2_default_system_prompt_is_masked() -> None:
    tok = load_tokenizer("smollm2-135m")
    msgs = CONVO[1:]  # no system turn: the template inserts its own default one
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert "You are a helpful AI assistant named SmolLM" in text
    _check_masking(tok, msgs)
    ids, labels = assistant_labels(tok, msgs)
    default_system = tok.decode(ids[:12])
    assert "SmolLM" not in _labelled_text(tok, msgs)
    assert all(lab == IGNORE_INDEX for lab in labels[:12]), default_system
