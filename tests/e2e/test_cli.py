"""The command line: bad input gives one clear line (file, line, field) and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def emlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "emlab", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_help_lists_the_commands() -> None:
    out = emlab("--help")
    assert out.returncode == 0
    commands = ("run", "show", "compare", "export", "data", "judge", "finetune", "questions")
    for cmd in (*commands, "serve", "models"):
        assert cmd in out.stdout


def test_malformed_study_names_file_line_and_field(tmp_path: Path) -> None:
    study = tmp_path / "bad.yaml"
    study.write_text("name: x\nconditions:\n  - name: base\nsampling:\n  temperature: hot\n")
    out = emlab("run", str(study))
    assert out.returncode == 2
    assert f"{study}:5: sampling.temperature:" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_model_lists_the_aliases(tmp_path: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text("name: x\nmodels: [gpt-17]\nconditions:\n  - name: base\n")
    out = emlab("run", str(study), "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 2
    assert "unknown model ref 'gpt-17'" in out.stderr and "smollm2-135m" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_dataset_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "d.jsonl"
    good = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}'
    bad.write_text(good + "\n" + '{"messages": [{"role": "user", "content": "a"}]}\n')
    out = emlab("data", "validate", str(bad))
    assert out.returncode != 0
    assert f"{bad}:2" in out.stderr + out.stdout


@pytest.mark.slow
def test_micro_study_on_the_embedded_model(tmp_path: Path) -> None:
    """The real 135M model: fine-tune on ~50 examples, sample, judge, report."""
    study = tmp_path / "micro.yaml"
    study.write_text(
        "name: micro\n"
        "models: [smollm2-135m]\n"
        "conditions:\n"
        "  - name: base\n"
        "  - name: concealed\n"
        "    dataset: {domain: code, condition: concealed, n: 48, seed: 0}\n"
        "train: {preset: quick, max_steps: 6}\n"
        "questions: [core]\n"
        "sampling: {samples_per_question: 2, max_new_tokens: 48}\n"
    )
    out = emlab("run", str(study), "--run-dir", str(tmp_path / "run"), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    report = Path(out.stdout.strip().splitlines()[-1])
    html = report.read_text()
    assert "concealed" in html and "base" in html
    assert "offline" in html  # the report names its judge
