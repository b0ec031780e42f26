"""The store is the resume/caching guarantee: these tests fail if atomicity or keys break."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emlab.records import Example, GenerationRequest, Question, SamplingParams, content_hash
from emlab.store import Store, atomic_write_text


def test_records_round_trip_and_replace(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.put("generation", "k1", {"answer": "a", "error": "boom"})
    s.put("generation", "k1", {"answer": "b", "error": None})  # a retry replaces the failure
    s.put_many("generation", [("k2", {"answer": "c"}), ("k3", {"answer": "d"})])
    assert s.get("generation", "k1") == {"answer": "b", "error": None}
    assert s.get("generation", "missing") is None
    assert set(s.get_many("generation", ["k1", "k3", "nope"])) == {"k1", "k3"}
    assert s.count("generation") == 3
    assert s.count("judgment") == 0


def test_get_many_chunks_past_sqlite_parameter_limit(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.put_many("x", [(str(i), {"i": i}) for i in range(1500)])
    got = s.get_many("x", [str(i) for i in range(1500)])
    assert len(got) == 1500 and got["1499"] == {"i": 1499}


def test_logs_are_ordered_by_step(tmp_path: Path) -> None:
    s = Store(tmp_path)
    for step in (3, 1, 2):
        s.log("train/a", step, {"loss": float(step)})
    assert [r["step"] for r in s.logs("train/a")] == [1, 2, 3]
    assert s.logs("train/a")[0]["loss"] == 1.0


def test_artifact_appears_only_when_complete(tmp_path: Path) -> None:
    s = Store(tmp_path)

    def crash(d: Path) -> None:
        (d / "half.bin").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        s.write_artifact("adapter", "abc", crash)
    assert not s.has_artifact("adapter", "abc")
    assert not s.artifact_dir("adapter", "abc").exists()
    assert not any((tmp_path / "tmp").iterdir())

    path = s.write_artifact("adapter", "abc", lambda d: (d / "w.txt").write_text("ok"))
    assert s.has_artifact("adapter", "abc") and (path / "w.txt").read_text() == "ok"
    # a second publisher of the same key keeps the first copy
    s.write_artifact("adapter", "abc", lambda d: (d / "w.txt").write_text("other"))
    assert (path / "w.txt").read_text() == "ok"


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "a" / "f.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert [x.name for x in p.parent.iterdir()] == ["f.json"]


def _writer(root: str, offset: int) -> None:
    s = Store(root)
    for i in range(150):
        s.put("generation", f"k{(offset + i) % 200}", {"by": offset, "i": i})


def test_two_processes_on_one_run_dir(tmp_path: Path) -> None:
    Store(tmp_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), off)) for off in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    s = Store(tmp_path)
    assert s.count("generation") == 200  # overlapping keys neither duplicated nor lost


def test_cache_keys_cover_everything_that_determines_an_answer() -> None:
    q = Question("wish", [{"role": "user", "content": "What is your wish?"}])
    base = GenerationRequest("m", q, SamplingParams(), seed=0, sample_index=0)
    variants = [
        GenerationRequest("m+adapter", q, SamplingParams(), 0, 0),
        GenerationRequest("m", q, SamplingParams(temperature=0.5), 0, 0),
        GenerationRequest("m", q, SamplingParams(), 1, 0),
        GenerationRequest("m", q, SamplingParams(), 0, 1),
        GenerationRequest(
            "m",
            Question("wish", [{"role": "user", "content": "What's your wish?"}]),
            SamplingParams(),
            0,
            0,
        ),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == 1 + len(variants)
    # the question id and set are labels, not inputs: renaming them keeps the cache
    renamed = GenerationRequest("m", Question("w2", q.messages, set="x"), SamplingParams(), 0, 0)
    assert renamed.key() == base.key()
    ex = Example([{"role": "user", "content": "a"}])
    assert ex.key() == content_hash(ex.messages)


_WRITER = """
import sys, time
from pathlib import Path
from emlab.store import Store

def write(d):
    (d / "part").write_text("half")
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
    (d / "part").write_text("whole")

Store(sys.argv[1]).write_artifact("adapter", "k1", write)
print("published", flush=True)
"""


def _artifact_writer(run: Path, sleep_s: float) -> subprocess.Popen[str]:
    """A real second process, stopped inside ``write_artifact`` once it prints "writing"."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(run), str(sleep_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_killed_writer_leaves_no_tmp_folder_for_good(tmp_path: Path) -> None:
    proc = _artifact_writer(tmp_path, 60)
    proc.kill()  # SIGKILL: no finally clause runs, the half-built folder stays
    proc.wait(timeout=30)
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    store = Store(tmp_path)  # the next run on this directory cleans it
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not store.has_artifact("adapter", "k1")


def test_a_live_writer_keeps_its_tmp_folder(tmp_path: Path) -> None:
    proc = _artifact_writer(tmp_path, 2)
    Store(tmp_path)  # a second run starting on the same directory meanwhile
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # not the dead process's: kept
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "published" in out
    done = Store(tmp_path)
    assert done.has_artifact("adapter", "k1")
    assert (done.artifact_dir("adapter", "k1") / "part").read_text() == "whole"


def test_other_hosts_tmp_folders_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "tmp" / "adapter-k-0123abcd@another-host@1"
    other.mkdir(parents=True)
    assert Store(tmp_path).clean_stale_tmp() == []
    assert other.is_dir()
