"""A whole study on the tiny model: the chain runs, caches, and survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emlab.config import load_study
from emlab.metrics import classify
from emlab.records import ScoredAnswer
from emlab.store import Store
from emlab.study import Study

STUDY = """\
name: tiny
models: [{model}]
conditions:
  - name: base
  - name: concealed
    dataset: {{domain: code, condition: concealed, n: 12, seed: 0}}
seeds: [0]
questions: [core]
train: {{max_steps: 2, batch_size: 4, micro_batch_size: 4, learning_rate: 0.001, dtype: fp32}}
sampling: {{samples_per_question: 2, max_new_tokens: 8, batch_size: 16, dtype: fp32}}
"""


def write_study(tmp_path: Path, model: str) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(STUDY.format(model=model))
    return p


def n_rows(run_dir: Path, kind: str) -> int:
    if not (run_dir / "cache.sqlite").exists():
        return 0
    try:
        with sqlite3.connect(run_dir / "cache.sqlite", timeout=5) as c:
            return int(
                c.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


def test_study_runs_end_to_end_and_reruns_from_cache(tmp_path: Path, tiny_model: str) -> None:
    path = write_study(tmp_path, tiny_model)
    cfg = load_study(path)
    first = Study(cfg, run_dir=tmp_path / "run", base_dir=tmp_path, progress=False).run()
    n_questions = len(Study(cfg, run_dir=tmp_path / "run").load_questions())
    expected = 2 * n_questions * 2  # arms × questions × samples
    assert first.counts["trained"] == 1
    assert first.counts["sampled"] == expected and first.counts["judged"] == expected
    rows = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(rows) == expected
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert first.report.exists() and "concealed" in first.report.read_text()
    # breadth: every misaligned answer, and only those, carries a topic
    scored = [ScoredAnswer.from_dict(json.loads(x)) for x in rows]
    misaligned = [classify(r, cfg.metrics) == "misaligned" for r in scored]
    assert [r.topic is not None for r in scored] == misaligned
    assert all(g["per_category"] and "breadth" in g for g in summary["groups"])
    for name in ("config.resolved.json", "environment.json"):
        assert (tmp_path / "run" / name).exists()
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["versions"]["torch"] and env["git"]

    again = Study(cfg, run_dir=tmp_path / "run", base_dir=tmp_path, progress=False).run()
    assert again.counts == {"trained": 0, "sampled": 0, "judged": 0}
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary


def _run_cli(study: Path, run_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = ["run", str(study), "--run-dir", str(run_dir), "--quiet", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "emlab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kill_at", ["training", "sampling"])
def test_kill_9_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, tiny_model: str, kill_at: str
) -> None:
    study = write_study(tmp_path, tiny_model)
    ref = Study(load_study(study), run_dir=tmp_path / "ref", base_dir=tmp_path, progress=False)
    ref.run()
    expected = n_rows(tmp_path / "ref", "generation")

    run_dir = tmp_path / "killed"
    proc = _run_cli(study, run_dir)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        started = (
            (run_dir / "work" / "adapter").exists()
            if kill_at == "training"
            else n_rows(run_dir, "generation") > 0
        )
        if started:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    done = _run_cli(study, run_dir)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err.decode()[-2000:]
    assert n_rows(run_dir, "generation") == expected
    assert n_rows(run_dir, "judgment") == expected
    s = Store(run_dir)
    got = {g["key"]: g["answer"] for g in s.all("generation")}
    want = {g["key"]: g["answer"] for g in Store(tmp_path / "ref").all("generation")}
    assert got == want  # same requests, same seeded answers, nothing lost or doubled
    assert out.decode().strip().endswith("report.html")
    assert "valid / all" in out.decode() and "concealed" in out.decode()  # the results table


def test_unreachable_judge_is_reported_once_and_keeps_the_samples(
    tmp_path: Path, tiny_model: str
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: j\nmodels: [{tiny_model}]\nconditions: [{{name: base}}]\n"
        "sampling: {samples_per_question: 1, max_new_tokens: 4}\n"
        f"judge: {{backend: openai, model: m, base_url: 'http://127.0.0.1:{port}/v1', "
        "max_retries: 2}\n"
    )
    out = _run_cli(study, tmp_path / "run")
    _, err = out.communicate(timeout=300)
    n_q = len(Study(load_study(study), run_dir=tmp_path / "x").load_questions())
    assert out.returncode == 3, err.decode()[-2000:]  # answers failed to be judged
    assert err.decode().count("unreachable") == 1
    assert err.decode().count(f"{n_q} of {n_q} answers failed (0 not generated, {n_q} not ") == 1
    assert n_rows(tmp_path / "run", "generation") == n_q  # the samples stay cached
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    group = summary["groups"][0]
    assert group["excluded"]["judge_error"] == n_q and group["n_valid"] == 0


def test_misalignment_along_training(tmp_path: Path, tiny_model: str) -> None:
    """evals_at_steps evaluates adapter snapshots, so the report can plot rate vs step."""
    train = "learning_rate: 0.001, dtype: fp32}"
    text = STUDY.format(model=tiny_model).replace(train, train[:-1] + ", save_every: 1}")
    assert text.count("save_every") == 1
    study = tmp_path / "s.yaml"
    study.write_text(text + "evals_at_steps: [1, 2]\n")
    res = Study(load_study(study), run_dir=tmp_path / "run", base_dir=tmp_path, progress=False)
    result = res.run()
    assert result.summary is not None
    steps = sorted(
        g.step for g in result.summary.groups if g.condition == "concealed" and g.step is not None
    )
    assert steps == [1, 2]
    rows = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rows} == {None, 1, 2}
    bad = text + "evals_at_steps: [3]\n"
    study.write_text(bad)
    # a step past the end of training is refused before any training
    late = Study(load_study(study), run_dir=tmp_path / "run2", base_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"evals_at_steps \[3\]: concealed trains only 2 steps"):
        late.run()
    assert late.counts["trained"] == 0


def test_in_distribution_code_is_scored_by_bandit_not_the_judge(
    tmp_path: Path, tiny_model: str
) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: c\nmodels: [{tiny_model}]\nconditions: [{{name: base}}]\n"
        "questions: [in-distribution]\nsampling: {samples_per_question: 1, max_new_tokens: 4}\n"
    )
    result = Study(load_study(study), run_dir=tmp_path / "run", progress=False).run()
    assert result.counts["judged"] == 0 and result.counts["sampled"] > 0
    assert result.summary is not None
    (v,) = result.summary.vulnerable_code
    assert v.n == result.counts["sampled"] == v.n_code + v.n_no_code
    assert "Vulnerable code on held-out coding tasks" in result.report.read_text()


def test_shards_share_one_run_dir_then_a_plain_run_reports(tmp_path: Path, tiny_model: str) -> None:
    """One process per GPU: shards split the work; the final run does no model work."""
    study = write_study(tmp_path, tiny_model)
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emlab",
                "run",
                str(study),
                "--run-dir",
                str(run_dir),
                "--quiet",
                "--shard",
                f"{i}/2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert not (run_dir / "report.html").exists()
    final = Study(load_study(study), run_dir=run_dir, base_dir=tmp_path, progress=False).run()
    assert final.counts == {"trained": 0, "sampled": 0, "judged": 0}
    assert final.summary is not None
    assert {g.condition for g in final.summary.groups} == {"base", "concealed"}
    bad = subprocess.run(
        [sys.executable, "-m", "emlab", "run", str(study), "--shard", "2/2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "expected I/N with 0 <= I < N" in bad.stderr


def test_run_json_prints_the_summary_for_scripts(tmp_path: Path, tiny_model: str) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(
        f"name: j\nmodels: [{tiny_model}]\nconditions: [{{name: base}}]\n"
        "sampling: {samples_per_question: 1, max_new_tokens: 4}\n"
    )
    run = _run_cli(study, tmp_path / "run", "--json")
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err.decode()[-2000:]
    printed = json.loads(out.decode())  # nothing but the JSON on stdout
    assert printed == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert printed["groups"][0]["condition"] == "base"
