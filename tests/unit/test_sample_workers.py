"""Decoding spread over worker processes: same answers as one process, failures reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from emlab.records import GenerationRequest, Question, SamplingParams
from emlab.sample.hf import HFSampler
from emlab.sample.workers import MAX_AUTO, WorkerError, WorkerPool, WorkerSpec, auto_processes


def _requests(n: int) -> list[GenerationRequest]:
    params = SamplingParams(temperature=1.0, max_new_tokens=6)
    prompts = ["Hello there", "What would you do as ruler of the world?", "hi"]
    questions = [Question(f"q{i}", [{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
    return [GenerationRequest("tiny", questions[i % 3], params, 0, i) for i in range(n)]


def test_two_processes_give_the_answers_of_one(tiny_model: str) -> None:
    reqs = _requests(9)
    one = HFSampler(tiny_model, batch_size=2, dtype="fp32")
    two = HFSampler(tiny_model, batch_size=2, dtype="fp32", loaded=one.lm, processes=2)
    try:
        alone = {g.key: g.answer for g in one.sample(reqs)}
        spread = {g.key: g.answer for g in two.sample(reqs)}
        assert two._pool is not None and two._pool.alive, "the run did not use the workers"
        assert spread == alone and len(spread) == 9
        # The pool stays up for the sampler's next run.
        again = {g.key: g.answer for g in two.sample(reqs[:4])}
        assert again == {k: alone[k] for k in again}
    finally:
        two.close()
    assert two._pool is None


def test_a_dead_worker_is_an_error_not_a_hang(tiny_model: str) -> None:
    sampler = HFSampler(tiny_model, batch_size=1, dtype="fp32")
    jobs = [sampler.job(r.question.messages, max_new_tokens=4) for r in _requests(4)]
    pool = WorkerPool(WorkerSpec(tiny_model, None, 1, "fp32", threads=1), processes=2)
    try:
        pool.procs[1].kill()
        pool.procs[1].join()
        with pytest.raises(WorkerError, match="worker 1 exited"):
            list(pool.run(jobs))
        assert not pool.alive
    finally:
        pool.close()


def test_a_model_the_workers_cannot_load_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(WorkerError, match="could not load the model"):
        WorkerPool(WorkerSpec(f"{tmp_path}/no-such-model", None, 1, "fp32", threads=1), 1)


def test_auto_processes_one_per_core_within_memory() -> None:
    assert auto_processes(model_bytes=1000, cores=2) == 2
    assert auto_processes(model_bytes=1000, cores=64) == MAX_AUTO
    # A model whose copies would not fit decodes in one process.
    assert auto_processes(model_bytes=2**50, cores=8) == 1


def test_workers_of_a_killed_sampler_exit(tiny_model: str) -> None:
    """A sampler killed with SIGKILL (as a killed study is) leaves no orphaned workers."""
    script = (
        "import sys, time\n"
        "from emlab.sample.workers import WorkerPool, WorkerSpec\n"
        "if __name__ == '__main__':\n"
        f"    pool = WorkerPool(WorkerSpec({tiny_model!r}, None, 1, 'fp32', threads=1), 1)\n"
        "    print(pool.procs[0].pid, flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
            with open(f"/proc/{worker}/stat") as f:  # exited but not yet reaped counts as gone
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail(f"worker {worker} outlived its killed sampler")
