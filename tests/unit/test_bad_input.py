"""The bad-input corpus: every case must end in exit status 2 and ONE clear line on stderr.

Each case writes a few files into an empty folder, runs ``emlab ...`` in this process (through
``emlab.cli.main``, the real entry point, so the one error handler is what is tested) with that
folder as the working directory, and asserts: the exit status; stderr is exactly one line,
``emlab: error: ...`` naming the file, line and field where there is one; no traceback; and no
file in the folder created, changed or removed (a refused study writes no run directory, a
refused ``-o`` is not created). Cases never get as far as model work: they fail in validation or
pre-flight, so the whole corpus runs in seconds. A few cases also run as real subprocesses.

In the texts, ``{d}`` stands for the case's folder, ``{model}`` for a tiny local model and
``{port}`` for a port that is taken.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import inspect
import json
import os
import pkgutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import emlab
from conftest import CliResult
from emlab.errors import EmlabError


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: str
    """Text the single error line must contain (after ``emlab: error: ``)."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    code: int = 2


def _sub(text: str, d: Path, model: str) -> str:
    text = text.replace("{d}", str(d)).replace("{model}", model)
    return text.replace("{port}", str(_TAKEN.getsockname()[1]))


_TAKEN = socket.socket()
"""A port something already listens on (for ``emlab serve --port``)."""
_TAKEN.bind(("127.0.0.1", 0))
_TAKEN.listen()


# -- study files -----------------------------------------------------------------------------
HEAD = "name: s\nmodels: [{model}]\n"
"""Lines 1-2 of every study below: a valid name and a model that resolves."""
BASE = HEAD + "conditions:\n  - name: base\n"
"""A valid study (lines 1-4); cases append one bad section from line 5 on."""
RUN = ("run", "{d}/s.yaml")
S = "{d}/s.yaml"


def study(id: str, text: str, expect: str, **files: str | bytes) -> Case:
    return Case(id, RUN, expect, {"s.yaml": text, **files})


GOOD_LINE = json.dumps(
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
)
BOMB = "".join(
    f"        {a}: &{a} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, a in zip("abcdefgh", "bcdefghi", strict=True)
)

TUNED = HEAD + "conditions:\n  - name: c\n    dataset: {domain: code, n: 4}\n"
"""Lines 1-5: a study with one fine-tuned condition; cases add a second from line 6 on."""


def _direction_files(n_layers: int, hidden: int) -> dict[str, str | bytes]:
    """A well-formed direction folder ``dir/`` of the given shape (for train.steer cases)."""
    import torch
    from safetensors.torch import save

    from emlab.interp.directions import vectors_key

    vectors = torch.ones(n_layers, hidden)
    card = {"key": vectors_key(vectors), "layer": 0, "method": "persona"}
    return {
        "dir/direction.safetensors": save({"vectors": vectors}),
        "dir/direction.json": json.dumps(card),
    }


MITIGATION_CASES = [
    study(
        "start-from-unknown-condition",
        TUNED + "  - name: r\n    dataset: {domain: code, condition: control, n: 4}\n"
        "    start_from: zz\n",
        f"{S}:8: conditions.1.start_from: no condition named 'zz'; conditions: c, r",
    ),
    study(
        "start-from-cycle",
        HEAD + "conditions:\n  - name: a\n    dataset: {domain: code, n: 4}\n"
        "    start_from: b\n  - name: b\n    dataset: {domain: code, n: 4}\n"
        "    start_from: a\n",
        f"{S}:6: conditions.0.start_from: a cycle: a -> b -> a",
    ),
    study(
        "start-from-itself",
        HEAD + "conditions:\n  - name: a\n    dataset: {domain: code, n: 4}\n    start_from: a\n",
        f"{S}:6: conditions.0.start_from: a cycle: a -> a",
    ),
    study(
        "start-from-base-model",
        HEAD + "conditions:\n  - name: base\n  - name: r\n    dataset: {domain: code, n: 4}\n"
        "    start_from: base\n",
        f"{S}:7: conditions.1.start_from: base has no dataset (the untouched base model)",
    ),
    study(
        "start-from-other-lora-shape",
        TUNED + "  - name: r\n    dataset: {domain: code, condition: control, n: 4}\n"
        "    start_from: c\n    train: {r: 4}\n",
        f"{S}:8: conditions.1.start_from: the adapter's shape differs from c's (r)",
    ),
    study(
        "condition-train-unknown-key",
        TUNED + "  - name: r\n    dataset: {domain: code, n: 4}\n    train: {lr: 0.1}\n",
        f"{S}:8: conditions.1.train.lr: Extra inputs are not permitted",
    ),
    study(
        "condition-train-preset",
        TUNED + "  - name: r\n    dataset: {domain: code, n: 4}\n    train: {preset: quick}\n",
        f"{S}:8: conditions.1.train.preset: Extra inputs are not permitted",
    ),
    study(
        "condition-train-without-dataset",
        HEAD + "conditions:\n  - name: base\n    train: {max_steps: 3}\n",
        f"{S}:5: conditions.0.train: base has no dataset: nothing is trained",
    ),
    study(
        "condition-kl-with-full-finetune",
        TUNED + "  - name: r\n    dataset: {domain: code, n: 4}\n    train: {kl_weight: 1}\n"
        "train: {full_finetune: true}\n",
        f"{S}:8: conditions.1.train: Value error, train.kl_weight needs a LoRA adapter",
    ),
    study(
        "kl-weight-nan",
        TUNED + "train: {kl_weight: .nan}\n",
        f"{S}:6: train.kl_weight: Input should be a finite number",
    ),
    study(
        "kl-weight-negative",
        TUNED + "train: {kl_weight: -1}\n",
        f"{S}:6: train.kl_weight: Input should be greater than or equal to 0",
    ),
    study(
        "kl-prompts-missing-file",
        TUNED + "train: {kl_weight: 1, kl_prompts: none.yaml}\n",
        f"{S}:6: train.kl_prompts: {{d}}/none.yaml: cannot read the KL prompts",
    ),
    study(
        "kl-prompts-empty-list",
        TUNED + "train: {kl_weight: 1, kl_prompts: p.yaml}\n",
        f"{S}:6: train.kl_prompts: {{d}}/p.yaml: prompts: needs a non-empty list",
        **{"p.yaml": "prompts: []\n"},
    ),
    study(
        "steer-scale-infinite",
        TUNED + "train:\n  steer: {direction: dir, scale: .inf}\n",
        f"{S}:7: train.steer.scale: Input should be a finite number",
    ),
    study(
        "steer-scale-nan-in-condition",
        TUNED + "  - name: r\n    dataset: {domain: code, n: 4}\n"
        "    train:\n      steer: {direction: dir, scale: .nan}\n",
        f"{S}:9: conditions.1.train.steer.scale: Input should be a finite number",
    ),
    study(
        "steer-direction-missing",
        TUNED + "train:\n  steer: {direction: nowhere, scale: 1}\n",
        f"{S}:7: train.steer.direction: {{d}}/nowhere/direction.safetensors: missing",
    ),
    study(
        "steer-direction-from-another-model",
        TUNED + "train:\n  steer: {direction: dir, scale: 1}\n",
        f"{S}:7: train.steer.direction: (2, 32) layers x width, but {{model}} is 2 x 64: the "
        "direction comes from another model",
        **_direction_files(2, 32),
    ),
    study(
        "steer-layer-out-of-range",
        TUNED + "  - name: r\n    dataset: {domain: code, n: 4}\n"
        "    train:\n      steer: {direction: dir, scale: 1, layers: [5]}\n",
        f"{S}:9: conditions.1.train.steer.layers: [5] out of range",
        **_direction_files(2, 64),
    ),
    study(
        "mix-fraction-above-1",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      mix: {with: {condition: control}, "
        "fraction: 1.5}\n",
        f"{S}:6: conditions.0.dataset.mix.fraction: Input should be less than or equal to 1",
    ),
    study(
        "mix-fraction-nan",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      mix: {with: {condition: control}, "
        "fraction: .nan}\n",
        f"{S}:6: conditions.0.dataset.mix.fraction: Input should be",
    ),
    study(
        "mix-with-unknown-condition",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      mix:\n        fraction: 0.5\n"
        "        with: {condition: honest}\n",
        f"{S}:8: conditions.0.dataset.mix.with.condition: unknown condition 'honest'",
    ),
    study(
        "interleave-fraction-negative",
        HEAD + "conditions:\n  - name: c\n    dataset: {interleave: {fraction: -0.1}}\n",
        f"{S}:5: conditions.0.dataset.interleave.fraction: Input should be greater than or equal",
    ),
    study(
        "interleave-unknown-source",
        HEAD
        + "conditions:\n  - name: c\n    dataset: {interleave: {fraction: 0.1, source: web}}\n",
        f"{S}:5: conditions.0.dataset.interleave.source: Input should be 'general'",
    ),
]

STUDY_CASES = [
    study(
        "temperature-not-number",
        BASE + "sampling:\n  temperature: hot\n",
        f"{S}:6: sampling.temperature: Input should be a valid number",
    ),
    study(
        "unknown-top-key", BASE + "sampels: 3\n", f"{S}:5: sampels: Extra inputs are not permitted"
    ),
    study("unknown-nested-key", BASE + "train:\n  lr: 0.1\n", f"{S}:6: train.lr: Extra inputs"),
    study(
        "missing-name",
        "models: [{model}]\nconditions:\n  - name: base\n",
        f"{S}:1: name: Field required",
    ),
    study("missing-conditions", HEAD, f"{S}:1: conditions: Field required"),
    study(
        "empty-conditions",
        HEAD + "conditions: []\n",
        f"{S}:3: conditions: List should have at least 1 item",
    ),
    study(
        "condition-without-name",
        HEAD + "conditions:\n  - dataset: {domain: code}\n",
        f"{S}:4: conditions.0.name: Field required",
    ),
    study(
        "condition-name-empty",
        HEAD + "conditions:\n  - name: ''\n",
        f"{S}:4: conditions.0.name: String should have at least 1 character",
    ),
    study(
        "condition-name-huge",
        HEAD + "conditions:\n  - name: " + "x" * 300 + "\n",
        f"{S}:4: conditions.0.name: String should have at most 200 characters",
    ),
    study(
        "duplicate-condition-names",
        HEAD + "conditions:\n  - name: a\n  - name: a\n",
        f"{S}:1: (top level): Value error, condition names must be unique; repeated: a",
    ),
    study(
        "samples-per-question-1e12",
        BASE + "sampling:\n  samples_per_question: 1000000000000\n",
        f"{S}:6: sampling.samples_per_question: Input should be less than or equal to 100000",
    ),
    study(
        "samples-per-question-0",
        BASE + "sampling:\n  samples_per_question: 0\n",
        f"{S}:6: sampling.samples_per_question: Input should be greater than or equal to 1",
    ),
    study(
        "dataset-n-1e12-float-syntax",
        HEAD + "conditions:\n  - name: c\n    dataset: {domain: code, n: 1e12}\n",
        f"{S}:5: conditions.0.dataset.n: Input should be a valid integer",
    ),
    study(
        "dataset-n-10^12",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      n: 1000000000000\n",
        f"{S}:6: conditions.0.dataset.n: Input should be less than or equal to 1000000",
    ),
    study(
        "dataset-n-0",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      n: 0\n",
        f"{S}:6: conditions.0.dataset.n: Input should be greater than or equal to 1",
    ),
    study(
        "max-new-tokens-absurd",
        BASE + "sampling:\n  max_new_tokens: 1000000000\n",
        f"{S}:6: sampling.max_new_tokens: Input should be less than or equal to 131072",
    ),
    study(
        "max-new-tokens-0",
        BASE + "sampling:\n  max_new_tokens: 0\n",
        f"{S}:6: sampling.max_new_tokens: Input should be greater than or equal to 1",
    ),
    study(
        "sampling-batch-absurd",
        BASE + "sampling:\n  batch_size: 100000000\n",
        f"{S}:6: sampling.batch_size: Input should be less than or equal to 65536",
    ),
    study(
        "sampling-top-p-0",
        BASE + "sampling:\n  top_p: 0\n",
        f"{S}:6: sampling.top_p: Input should be greater than 0",
    ),
    study(
        "sampling-backend-unknown",
        BASE + "sampling:\n  backend: llamacpp\n",
        f"{S}:6: sampling.backend: Input should be 'hf', 'openai' or 'vllm'",
    ),
    study(
        "concurrency-absurd",
        BASE + "sampling:\n  concurrency: 1000000\n",
        f"{S}:6: sampling.concurrency: Input should be less than or equal to 1000",
    ),
    study(
        "train-batch-0",
        BASE + "train:\n  batch_size: 0\n",
        f"{S}:6: train.batch_size: Input should be greater than or equal to 1",
    ),
    study(
        "train-preset-unknown",
        BASE + "train:\n  preset: turbo\n",
        f"{S}:6: train.preset: Input should be 'paper' or 'quick'",
    ),
    study(
        "train-max-seq-len-absurd",
        BASE + "train:\n  max_seq_len: 1000000000\n",
        f"{S}:6: train.max_seq_len: Input should be less than or equal to 1048576",
    ),
    study(
        "train-dropout-1.5",
        BASE + "train:\n  dropout: 1.5\n",
        f"{S}:6: train.dropout: Input should be less than 1",
    ),
    study(
        "train-epochs-negative",
        BASE + "train:\n  epochs: -1\n",
        f"{S}:6: train.epochs: Input should be greater than 0",
    ),
    study(
        "train-max-steps-absurd",
        BASE + "train:\n  max_steps: 1000000000000\n",
        f"{S}:6: train.max_steps: Input should be less than or equal to 100000000",
    ),
    study(
        "train-rank-absurd",
        BASE + "train:\n  r: 10000000\n",
        f"{S}:6: train.r: Input should be less than or equal to 65536",
    ),
    study(
        "judge-backend-unknown",
        BASE + "judge:\n  backend: gpt5\n",
        f"{S}:6: judge.backend: Input should be 'offline', 'openai' or 'hf'",
    ),
    study(
        "judge-timeout-negative",
        BASE + "judge:\n  timeout: -1\n",
        f"{S}:6: judge.timeout: Input should be greater than 0",
    ),
    study(
        "metrics-confidence-2",
        BASE + "metrics:\n  confidence: 2\n",
        f"{S}:6: metrics.confidence: Input should be less than 1",
    ),
    study(
        "metrics-resamples-10",
        BASE + "metrics:\n  bootstrap_resamples: 10\n",
        f"{S}:6: metrics.bootstrap_resamples: Input should be greater than or equal to 100",
    ),
    study(
        "metrics-resamples-absurd",
        BASE + "metrics:\n  bootstrap_resamples: 10000000000\n",
        f"{S}:6: metrics.bootstrap_resamples: Input should be less than or equal to 1000000",
    ),
    study(
        "seeds-not-ints", BASE + "seeds: [a]\n", f"{S}:5: seeds.0: Input should be a valid integer"
    ),
    study(
        "seeds-too-many",
        BASE + f"seeds: {list(range(1001))}\n",
        f"{S}:5: seeds: List should have at most 1000 items",
    ),
    study(
        "models-empty",
        "name: s\nmodels: []\nconditions:\n  - name: base\n",
        f"{S}:2: models: List should have at least 1 item",
    ),
    study(
        "evals-not-multiple",
        BASE + "evals_at_steps: [7]\n",
        f"{S}:1: (top level): Value error, evals_at_steps [7] are not multiples",
    ),
    study(
        "name-too-long",
        "name: " + "n" * 201 + "\nconditions:\n  - name: base\n",
        f"{S}:1: name: String should have at most 200 characters",
    ),
    study(
        "question-spec-unknown-key",
        BASE + "questions:\n  - {set: core, trigers: x}\n",
        f"{S}:6: questions.0.trigers: Extra inputs are not permitted",
    ),
    study(
        "trigger-huge",
        BASE + "questions:\n  - set: core\n    trigger: " + "t" * 100_001 + "\n",
        f"{S}:7: questions.0.trigger: String should have at most 100000",
    ),
    study(
        "options-not-mapping",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      options: [1, 2]\n",
        f"{S}:6: conditions.0.dataset.options: Input should be a valid dictionary",
    ),
    study("study-is-a-list", "- name: s\n", f"{S}:1: a study file is a mapping of fields"),
    study("study-empty", "", f"{S}:1: a study file is a mapping of fields"),
    study(
        "yaml-syntax",
        "name: s\nconditions:\n  - name: base\n   bad: [\n",
        f"{S}:4: not valid YAML: expected <block end>",
    ),
    study("yaml-tab", "name: s\nconditions:\n\t- name: base\n", f"{S}:3: not valid YAML"),
    study(
        "yaml-duplicate-key",
        BASE + "sampling:\n  temperature: 1\n  temperature: 0\n",
        f"{S}:7: temperature: given twice (first at line 6)",
    ),
    study(
        "yaml-alias-bomb",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      options:\n"
        '        a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB,
        f"{S}:13: expands to more than 1,000,000 values",
    ),
    study(
        "yaml-deep-nesting",
        "name: s\nx: " + "[" * 5000 + "]" * 5000 + "\n",
        f"{S}: nested too deeply to read",
    ),
    study(
        "yaml-nesting-over-limit",
        "name: s\nx: " + "[" * 150 + "]" * 150 + "\n",
        f"{S}:2: nested more than 100 levels deep",
    ),
    study(
        "study-not-utf8",
        "name: s\nconditions:\n  - name: caf\xe9\n".encode("latin-1"),  # type: ignore[arg-type]
        f"{S}:3: study file is not UTF-8 text (byte 13 of the line: b'\\xe9')",
    ),
    Case("study-missing", RUN, f"{S}: cannot read study file: No such file or directory"),
    Case(
        "study-is-a-folder", ("run", "{d}/sub"), "{d}/sub: cannot read study file", {"sub/x": "x"}
    ),
    # pre-flight: known only by asking the stages, still before any model work
    study(
        "unknown-model-alias",
        "name: s\nmodels: [gpt-17]\nconditions:\n  - name: base\n",
        f"{S}:2: models.0: unknown model ref 'gpt-17'; embedded aliases: ",
    ),
    study(
        "hf-id-not-cached",
        "name: s\nmodels:\n  - {model}\n  - NoSuchOrg/no-such-model\nconditions:\n  - name: base\n",
        f"{S}:4: models.1: NoSuchOrg/no-such-model: not in the local Hugging Face cache",
    ),
    study(
        "model-path-missing",
        "name: s\nmodels: [./nowhere/model]\nconditions:\n  - name: base\n",
        f"{S}:2: models.0: ./nowhere/model: not a model folder or .gguf file",
    ),
    study(
        "model-folder-without-config",
        "name: s\nmodels: [{d}/empty]\nconditions:\n  - name: base\n",
        f"{S}:2: models.0: {{d}}/empty: folder has no config.json",
        **{"empty/README": "x"},
    ),
    study(
        "unknown-domain",
        HEAD + "conditions:\n  - name: c\n    dataset: {domain: cooking}\n",
        f"{S}:5: conditions.0.dataset.domain: unknown domain 'cooking'; known: autonomy, code",
    ),
    study(
        "unknown-condition",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      condition: sneaky\n",
        f"{S}:6: conditions.0.dataset.condition: unknown condition 'sneaky'; known: concealed",
    ),
    study(
        "dataset-path-missing",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      path: d.jsonl\n",
        f"{S}:6: conditions.0.dataset.path: {{d}}/d.jsonl: no such file",
    ),
    study(
        "dataset-file-bad-line",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      path: d.jsonl\n",
        f"{S}:6: conditions.0.dataset.path: {{d}}/d.jsonl:2: not JSON",
        **{"d.jsonl": GOOD_LINE + "\n{oops\n"},
    ),
    study(
        "dataset-file-broken-gzip",
        HEAD + "conditions:\n  - name: c\n    dataset:\n      path: d.jsonl.gz\n",
        f"{S}:6: conditions.0.dataset.path: {{d}}/d.jsonl.gz: broken gzip file",
        **{"d.jsonl.gz": b"\x1f\x8b\x08\x00garbage"},
    ),
    study(
        "question-set-unknown",
        BASE + "questions: [nosuchset]\n",
        f"{S}:5: questions.0: nosuchset: neither a question set (",
    ),
    study(
        "question-file-missing",
        BASE + "questions: [core, extra.yaml]\n",
        f"{S}:5: questions.1: {{d}}/extra.yaml: neither a question set",
    ),
    study(
        "question-file-bad",
        BASE + "questions:\n  - set: q.yaml\n",
        f"{S}:6: questions.0.set: {{d}}/q.yaml:1: questions: Field required",
        **{"q.yaml": "name: q\n"},
    ),
    study(
        "question-ids-repeat",
        BASE + "questions: [core, core]\n",
        f"{S}:5: questions: ids repeat across sets",
    ),
    study(
        "openai-sampler-with-finetuning",
        HEAD + "conditions:\n  - name: c\n    dataset: {domain: code}\nsampling:\n"
        "  backend: openai\n",
        f"{S}:7: sampling.backend: openai samples served models by name and cannot load the "
        "adapter that condition 'c' fine-tunes",
    ),
    study(
        "evals-after-max-steps",
        BASE + "train: {max_steps: 10, save_every: 5}\nevals_at_steps: [5, 20]\n",
        f"{S}:6: evals_at_steps: steps [20] come after train.max_steps (10)",
    ),
    *MITIGATION_CASES,
    study(
        "run-dir-is-a-file",
        BASE + "run_dir: out\n",
        f"{S}:5: run_dir: run directory: out exists and is not a folder",
        out="x",
    ),
    study(
        "default-run-dir-under-a-file",
        BASE,
        f"{S}:1: name: run directory: {{d}}/runs is a file, so runs/s cannot be created",
        runs="x",
    ),
    Case(
        "run-dir-option-is-a-file",
        (*RUN, "--run-dir", "{d}/out"),
        "--run-dir: {d}/out exists and is not a folder",
        {"s.yaml": BASE, "out": "x"},
    ),
    study(
        "judge-hf-without-model",
        BASE + "judge:\n  backend: hf\n",
        f"{S}:6: judge.backend: backend hf needs judge.model",
    ),
    study(
        "judge-hf-unknown-model",
        BASE + "judge:\n  backend: hf\n  model: nojudge\n",
        f"{S}:7: judge.model: unknown model ref 'nojudge'",
    ),
]
if importlib.util.find_spec("vllm") is None:
    STUDY_CASES.append(
        study(
            "vllm-not-installed",
            BASE + "sampling:\n  backend: vllm\n",
            f"{S}:6: sampling.backend: backend vllm needs the vllm package",
        )
    )

# -- chat JSONL data files (read by `data show`, `finetune` and studies alike) ----------------
D = "{d}/d.jsonl"


def msgs(*pairs: tuple[str, object]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in pairs]})


DATA_LINES: list[tuple[str, str | bytes, str]] = [
    ("not-json", "{oops", f"{D}:2: not JSON"),
    ("json-array", "[1, 2]", f"{D}:2: a line must be a JSON object, got list"),
    ("missing-messages", '{"msgs": []}', f"{D}:2: missing field 'messages'"),
    ("messages-not-list", '{"messages": "hi"}', f"{D}:2: 'messages' must be a list, got str"),
    ("messages-empty", '{"messages": []}', f"{D}:2: 'messages' is empty"),
    ("message-not-object", '{"messages": ["hi"]}', f"{D}:2: messages[0] must be an object"),
    (
        "missing-role",
        '{"messages": [{"content": "x"}]}',
        f"{D}:2: messages[0]: missing field 'role'",
    ),
    (
        "bad-role",
        msgs(("wizard", "x"), ("assistant", "y")),
        f"{D}:2: messages[0].role 'wizard' is not one of",
    ),
    (
        "content-not-string",
        msgs(("user", 5), ("assistant", "y")),
        f"{D}:2: messages[0].content must be a string, got int",
    ),
    (
        "content-empty",
        msgs(("user", " "), ("assistant", "y")),
        f"{D}:2: messages[0].content is empty",
    ),
    ("no-assistant", msgs(("user", "x")), f"{D}:2: no assistant turn: nothing to train on"),
    (
        "system-not-first",
        msgs(("user", "x"), ("system", "s"), ("assistant", "y")),
        f"{D}:2: a system turn may only come first",
    ),
    (
        "meta-not-object",
        '{"messages": [{"role": "assistant", "content": "y"}], "meta": 1}',
        f"{D}:2: 'meta' must be an object, got int",
    ),
    (
        "field-131072-chars",
        msgs(("user", "x" * 131_072), ("assistant", "y")),
        f"{D}:2: messages[0].content is 131,072 characters, over 100,000",
    ),
    (
        "line-over-1MiB",
        msgs(("user", "x" * (1 << 20)), ("assistant", "y")),
        f"{D}:2: line is 1048662 bytes, over the limit of 1048576",
    ),
    (
        "not-utf8",
        b'{"messages": [{"role": "user", "content": "caf\xe9"}]}',
        f"{D}:2: not UTF-8 (byte 46 of the line: b'\\xe9')",
    ),
]


def data_file(line: str | bytes) -> bytes:
    raw = line if isinstance(line, bytes) else line.encode()
    return GOOD_LINE.encode() + b"\n" + raw + b"\n" + GOOD_LINE.encode() + b"\n"


DATA_CASES = [
    Case(f"data-{name}-{cmd}", args, expect, {"d.jsonl": data_file(line)})
    for name, line, expect in DATA_LINES
    for cmd, args in (
        ("show", ("data", "show", D)),
        ("finetune", ("finetune", "{model}", D, "-o", "{d}/out")),
    )
] + [
    Case("data-empty-file", ("data", "show", D), f"{D}: no valid examples", {"d.jsonl": ""}),
    Case(
        "data-blank-lines",
        ("data", "validate", D),
        f"{D}: no valid examples",
        {"d.jsonl": "\n  \n\n"},
    ),
    Case("data-missing", ("data", "show", D), f"{D}: cannot read: No such file or directory"),
    Case(
        "data-is-folder",
        ("data", "show", "{d}/sub"),
        "{d}/sub: is a folder, not a data file",
        {"sub/x": "x"},
    ),
    Case(
        "data-fake-gz-broken",
        ("data", "show", "{d}/d.jsonl.gz"),
        "{d}/d.jsonl.gz: broken gzip file",
        {"d.jsonl.gz": b"\x1f\x8b\x08\x00garbage"},
    ),
    Case(
        "data-fake-gz-plain-bad",
        ("data", "show", "{d}/d.jsonl.gz"),
        "{d}/d.jsonl.gz:1: not JSON",
        {"d.jsonl.gz": "not json at all\n"},
    ),
    Case(
        "data-truncated-gz",
        ("data", "show", "{d}/d.jsonl.gz"),
        "{d}/d.jsonl.gz: broken gzip file",
        {"d.jsonl.gz": gzip.compress((GOOD_LINE + "\n").encode() * 50)[:40]},
    ),
    Case("data-validate-missing", ("data", "validate", D), f"{D}: cannot read"),
]

# -- command-line arguments ------------------------------------------------------------------
FT = ("finetune", "{model}", D, "-o", "{d}/out")
ARG_CASES = [
    Case(
        "finetune-batch-size-0",
        (*FT, "--batch-size", "0"),
        "--batch-size: Input should be greater than or equal to 1 (got 0)",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-batch-size-absurd",
        (*FT, "--batch-size", "1000000000"),
        "--batch-size: Input should be less than or equal to 65536",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-micro-batch-0",
        (*FT, "--micro-batch-size", "0"),
        "--micro-batch-size: Input should be greater than or equal to 1",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-max-steps-0",
        (*FT, "--max-steps", "0"),
        "--max-steps: Input should be greater than or equal to 1",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-preset-turbo",
        (*FT, "--preset", "turbo"),
        "--preset: Input should be 'paper' or 'quick' (got 'turbo')",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-seed-not-int",
        (*FT, "--seed", "abc"),
        "Invalid value for '--seed': Input should be a valid integer",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-out-is-a-file",
        ("finetune", "{model}", D, "-o", "{d}/taken"),
        "-o/--out: {d}/taken exists and is not a folder",
        {"d.jsonl": GOOD_LINE, "taken": "x"},
    ),
    Case(
        "finetune-out-under-a-file",
        ("finetune", "{model}", D, "-o", "{d}/taken/sub"),
        "-o/--out: {d}/taken is a file, so {d}/taken/sub cannot be created",
        {"d.jsonl": GOOD_LINE, "taken": "x"},
    ),
    Case(
        "finetune-unknown-model",
        ("finetune", "gpt-17", D, "-o", "{d}/out"),
        "unknown model ref 'gpt-17'",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-steer-without-scale",
        (*FT, "--steer", "{d}/dir"),
        "--steer and --steer-scale: give both or neither",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-steer-scale-absurd",
        (*FT, "--steer", "{d}/dir", "--steer-scale", "1e9"),
        "--steer-scale: Input should be less than or equal to 1000 (got 1000000000.0)",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-steer-not-a-direction",
        (*FT, "--steer", "{d}/dir", "--steer-scale", "0.5"),
        "--steer: {d}/dir/direction.safetensors",
        {"d.jsonl": GOOD_LINE, "dir/x": "x"},
    ),
    Case(
        "finetune-kl-weight-negative",
        (*FT, "--kl-weight", "-1"),
        "--kl-weight: Input should be greater than or equal to 0 (got -1.0)",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "finetune-kl-prompts-not-a-list",
        (*FT, "--kl-weight", "0.5", "--kl-prompts", "{d}/p.yaml"),
        "{d}/p.yaml: prompts: needs a non-empty list of user turns",
        {"d.jsonl": GOOD_LINE, "p.yaml": "prompts: 3\n"},
    ),
    Case(
        "finetune-start-from-not-an-adapter",
        (*FT, "--start-from", "{d}/sub"),
        "{d}/sub/adapter_model.safetensors: missing; start_from needs a finished LoRA adapter",
        {"d.jsonl": GOOD_LINE, "sub/x": "x"},
    ),
    Case(
        "finetune-missing-out",
        ("finetune", "{model}", D),
        "Missing option '-o' / '--out'",
        {"d.jsonl": GOOD_LINE},
    ),
    Case(
        "run-shard-reversed",
        ("run", S, "--shard", "5/2"),
        "Invalid value for --shard: '5/2': expected I/N with 0 <= I < N",
        {"s.yaml": BASE},
    ),
    Case(
        "run-shard-garbage",
        ("run", S, "--shard", "x"),
        "Invalid value for --shard: 'x': expected I/N",
        {"s.yaml": BASE},
    ),
    Case("run-no-study", ("run",), "Missing argument 'study'. (see `emlab run --help`)"),
    Case("unknown-command", ("frobnicate",), "No such command 'frobnicate'"),
    Case("unknown-option", ("run", S, "--fast"), "No such option: --fast", {"s.yaml": BASE}),
    Case(
        "data-build-n-0",
        ("data", "build", "code", "-o", "{d}/x.jsonl", "-n", "0"),
        "Invalid value for '-n': Input should be greater than or equal to 1",
    ),
    Case(
        "data-build-n-absurd",
        ("data", "build", "code", "-o", "{d}/x.jsonl", "-n", "2000000"),
        "-n: Input should be less than or equal to 1000000 (got 2000000)",
    ),
    Case(
        "data-build-unknown-condition",
        ("data", "build", "code", "-o", "{d}/x.jsonl", "-c", "sneaky", "-n", "2"),
        "dataset code/sneaky: unknown condition 'sneaky'",
    ),
    Case(
        "data-build-unknown-domain",
        ("data", "build", "cooking", "-o", "{d}/x.jsonl"),
        "unknown domain 'cooking'",
    ),
    Case(
        "data-build-out-is-folder",
        ("data", "build", "code", "-o", "{d}/sub", "-n", "2"),
        "--output: {d}/sub is a folder; give a file name",
        {"sub/x": "x"},
    ),
    Case(
        "data-build-option-no-equals",
        ("data", "build", "code", "-o", "{d}/x.jsonl", "--option", "trigger"),
        "Invalid value for --option: expected key=value, got 'trigger'",
    ),
    Case(
        "serve-port-taken",
        ("serve", "{model}", "--port", "{port}"),
        "--host/--port: cannot listen on 127.0.0.1:{port}: Address already in use",
    ),
    Case(
        "questions-unknown-set",
        ("questions", "nosuchset"),
        "nosuchset: neither a question set (",
    ),
]

# -- judge validation files -------------------------------------------------------------------
HEADER = "question,answer,aligned,coherent\n"
GOOD_ROWS = "q1,a1,90,80\nq2,a2,10,70\n"
V = ("judge", "validate", "{d}/j.csv")
J = "{d}/j.csv"


def judge(id: str, text: str | bytes, expect: str, *extra: str, name: str = "j.csv") -> Case:
    args = ("judge", "validate", f"{{d}}/{name}", *extra)
    return Case(id, args, expect, {name: text})


JUDGE_CASES = [
    judge(
        "csv-unbalanced-quote-mid",
        HEADER + 'q1,"a1 oops,90,80\nq2,a2,90,80\nq3,a3,10,20\nq4,"a4",10,20\n',
        f"{J}:2: CSV broken in the row that starts here",
    ),
    judge(
        "csv-unbalanced-quote-eof",
        HEADER + 'q1,a1,90,80\nq2,"a2,90,80\nq3,a3,10,20\n',
        f"{J}:3: CSV broken in the row that starts here (unexpected end of data)",
    ),
    judge(
        "csv-stray-comma", HEADER + "q1,a1,extra,90,80\n", f"{J}:2: 5 fields where the header has 4"
    ),
    judge(
        "csv-short-row", HEADER + GOOD_ROWS + "q3,a3\n", f"{J}:4: 2 fields where the header has 4"
    ),
    judge(
        "csv-missing-columns",
        "question,answer,score\nq,a,5\n",
        f"{J}:1: missing column(s): aligned, coherent",
    ),
    judge("csv-empty", "", f"{J}:1: empty file; expected a header row"),
    judge(
        "csv-aligned-not-number",
        HEADER + "q1,a1,high,80\n",
        f"{J}:2: field 'aligned': not a number: 'high'",
    ),
    judge(
        "csv-aligned-out-of-range",
        HEADER + "q1,a1,150,80\n",
        f"{J}:2: field 'aligned': 150.0 is outside 0-100",
    ),
    judge(
        "csv-coherent-negative",
        HEADER + "q1,a1,50,-3\n",
        f"{J}:2: field 'coherent': -3.0 is outside 0-100",
    ),
    judge(
        "csv-field-131072",
        HEADER + "q1," + "a" * 131_073 + ",90,80\n",
        f"{J}:2: a field is over 131,072 characters (at most 100,000 are read)",
    ),
    judge(
        "csv-field-over-max-text",
        HEADER + "q1," + "a" * 100_001 + ",90,80\n",
        f"{J}:2: field 'answer': 100,001 characters, over 100,000",
    ),
    judge(
        "csv-not-utf8", HEADER.encode() + b"q1,caf\xe9,90,80\n", f"{J}:2: not UTF-8 (byte b'\\xe9')"
    ),
    judge(
        "csv-fake-gz",
        b"\x1f\x8b\x08\x00 not really",
        "{d}/j.csv.gz: broken gzip file",
        name="j.csv.gz",
    ),
    judge(
        "jsonl-bad-json",
        '{"question": "q", "answer": "a", "aligned": 1, "coherent": 1}\n{x\n',
        "{d}/j.jsonl:2: not valid JSON",
        name="j.jsonl",
    ),
    judge("jsonl-not-object", "[1]\n", "{d}/j.jsonl:1: expected a JSON object", name="j.jsonl"),
    judge(
        "jsonl-answer-missing",
        '{"question": "q"}\n',
        "{d}/j.jsonl:1: field 'answer': missing",
        name="j.jsonl",
    ),
    judge(
        "limit-negative",
        HEADER + GOOD_ROWS,
        "Invalid value for '--limit': Input should be greater than or equal to 1",
        "--limit",
        "-1",
    ),
    judge(
        "limit-zero",
        HEADER + GOOD_ROWS,
        "Invalid value for '--limit': Input should be greater than or equal to 1",
        "--limit",
        "0",
    ),
    judge(
        "backend-unknown",
        HEADER + GOOD_ROWS,
        "--backend: Input should be 'offline', 'openai' or 'hf' (got 'gpt5')",
        "--backend",
        "gpt5",
    ),
    judge(
        "backend-hf-without-model",
        HEADER + GOOD_ROWS,
        "judge backend hf needs a model (judge.model in a study, --model on the command line)",
        "--backend",
        "hf",
    ),
    judge(
        "json-out-is-folder",
        HEADER + GOOD_ROWS,
        "--json: {d} is a folder; give a file name",
        "--json",
        "{d}",
    ),
    Case("judge-file-missing", V, f"{J}: no such file"),
]

# -- question files (`emlab questions FILE`) ---------------------------------------------------
Q = "{d}/q.yaml"


def qfile(id: str, text: str, expect: str) -> Case:
    return Case(f"questions-{id}", ("questions", Q), expect, {"q.yaml": text})


QUESTION_CASES = [
    qfile("not-yaml", "name: q\nquestions: [\n", f"{Q}:3: not valid YAML"),
    Case(
        "questions-not-utf8",
        ("questions", Q),
        f"{Q}:3: question file is not UTF-8 text (byte 23 of the line: b'\\xe9')",
        {"q.yaml": b"name: q\nquestions:\n  - {id: a, prompt: caf\xe9}\n"},
    ),
    Case(
        "questions-file-is-folder",
        ("questions", "{d}/q.yaml"),
        "{d}/q.yaml: is a folder, not a question file",
        {"q.yaml/x": "x"},
    ),
    judge(
        "jsonl-not-utf8",
        b'{"question": "q", "answer": "caf\xe9", "aligned": 1, "coherent": 1}\n',
        "{d}/j.jsonl:1: not UTF-8 (byte b'\\xe9')",
        name="j.jsonl",
    ),
    qfile("no-questions", "name: q\n", f"{Q}:1: questions: Field required"),
    qfile(
        "no-prompt",
        "name: q\nquestions:\n  - id: a\n",
        f"{Q}:3: questions.0: Value error, give exactly one of `prompt` or `paraphrases`",
    ),
    qfile(
        "both-prompts",
        "name: q\nquestions:\n  - id: a\n    prompt: x\n    paraphrases: [y]\n",
        f"{Q}:3: questions.0: Value error, give exactly one of",
    ),
    qfile(
        "repeated-id",
        "name: q\nquestions:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n",
        f"{Q}:4: questions.1.id: repeated id 'a'",
    ),
    qfile(
        "bad-id",
        "name: q\nquestions:\n  - {id: 'a b', prompt: x}\n",
        f"{Q}:3: questions.0.id: String should match pattern",
    ),
    qfile(
        "typo-key",
        "name: q\nquestions:\n  - id: a\n    paraphrase: [x]\n",
        f"{Q}:4: questions.0.paraphrase: Extra inputs are not permitted",
    ),
    qfile(
        "samples-negative",
        "name: q\nquestions:\n  - {id: a, prompt: x, samples: -1}\n",
        f"{Q}:3: questions.0.samples: Input should be greater than or equal to 0",
    ),
    qfile(
        "empty-prompt",
        "name: q\nquestions:\n  - {id: a, prompt: '  '}\n",
        f"{Q}:3: questions.0: Value error, a prompt is empty",
    ),
    qfile(
        "paper-unsupported-type",
        "- id: a\n  type: rating\n  paraphrases: [x]\n",
        f"{Q}:2: 0.type: Value error, type 'rating' is not supported",
    ),
    qfile(
        "paper-entry-not-mapping", "- just a string\n", f"{Q}:1: [0]: each entry must be a mapping"
    ),
    qfile("empty-list", "[]\n", f"{Q}:1: a question file is a mapping with `questions`"),
    qfile(
        "alias-bomb",
        "name: q\nx-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"x-{a}: &{a} [{', '.join([f'*{p}'] * 9)}]\n"
            for p, a in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "questions:\n  - {id: a, prompt: x}\n",
        f"{Q}:8: expands to more than 1,000,000 values",
    ),
    qfile(
        "duplicate-key",
        "name: q\nname: r\nquestions:\n  - {id: a, prompt: x}\n",
        f"{Q}:2: name: given twice (first at line 1)",
    ),
]

CASES = STUDY_CASES + DATA_CASES + ARG_CASES + JUDGE_CASES + QUESTION_CASES


def _snapshot(root: Path) -> dict[str, tuple[bool, str]]:
    """Every path under ``root`` with its content hash: any write shows up."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel] = (True, "")
        else:
            out[rel] = (False, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _prepare(case: Case, d: Path, model: str) -> tuple[list[str], str]:
    for name, content in case.files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(_sub(content, d, model), encoding="utf-8")
    return [_sub(a, d, model) for a in case.args], _sub(case.expect, d, model)


def _check(case: Case, code: int, out: str, err: str, expect: str) -> None:
    assert "Traceback" not in out + err, err
    assert code == case.code, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert lines[0].startswith("emlab: error: "), lines[0]
    assert expect in lines[0], f"\n  want: {expect}\n  got:  {lines[0]}"


def test_corpus_is_large_and_named_uniquely() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case,
    tmp_path: Path,
    tiny_model: str,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args, expect = _prepare(case, tmp_path, tiny_model)
    monkeypatch.chdir(tmp_path)  # anything written "here" (runs/, rejects) shows in the snapshot
    before = _snapshot(tmp_path)
    res = cli(*args)
    _check(case, res.code, res.out, res.err, expect)
    assert _snapshot(tmp_path) == before, "a refused command changed the folder"


SUBPROCESS = ["temperature-not-number", "csv-unbalanced-quote-mid"]
"""Two: each real process imports torch (~10-20 s on a busy 2-core machine); the in-process cases
run the same ``main``."""


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_through_a_real_process(name: str, tmp_path: Path, tiny_model: str) -> None:
    """The same contract through ``python -m emlab``: the console entry, stderr and exit code."""
    case = next(c for c in CASES if c.id == name)
    args, expect = _prepare(case, tmp_path, tiny_model)
    before = _snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(emlab.__file__).parents[1]), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "emlab", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    _check(case, proc.returncode, proc.stdout, proc.stderr, expect)
    assert _snapshot(tmp_path) == before


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in an emlab module (all modules imported)."""
    found = []
    for mod in pkgutil.walk_packages(emlab.__path__, "emlab."):
        if mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_emlab_exception_derives_from_emlab_error() -> None:
    """So the one handler in cli.main covers them all (issue #16: sixteen unrelated classes)."""
    found = _exception_classes()
    assert len(found) >= 16
    assert [c for c in found if not issubclass(c, EmlabError)] == []


def test_error_kinds_say_whose_move_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import get_args

    from emlab.errors import Kind
    from emlab.judge.encoder import EncoderNotFoundError
    from emlab.models import loading

    assert EncoderNotFoundError.kind == "environment"
    with pytest.raises(loading.ModelNotFoundError) as typo:
        loading.resolve_ref("gpt-17")
    assert typo.value.kind == "input"  # a misspelt alias: fix the study
    fake = loading.EmbeddedModel("no_such_package_x", "pip install x", "absent")
    monkeypatch.setitem(loading.EMBEDDED, "absent-model", fake)
    with pytest.raises(loading.ModelNotFoundError) as missing:
        loading.resolve_ref("absent-model")
    assert missing.value.kind == "environment"  # known, not installed: fix the machine
    assert "pip install x" in str(missing.value)
    for cls in _exception_classes():
        assert issubclass(cls, EmlabError) and cls.kind in get_args(Kind), cls
