"""Both OpenAI paths (sampler, judge) against a server that injects faults per request.

Every fault ends as that item's own outcome (answered after retries, or a recorded error), never
the batch's; Retry-After is honoured, capped, and ignored when it means nothing. The server is a
real socket server on 127.0.0.1 (``faultserver.py``), not a mock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FAULTS, MARKER, FaultServer

from emlab.httpclient import RetryPolicy, parse_retry_after
from emlab.judge.openai_api import OpenAIJudge
from emlab.records import Generation, GenerationRequest, Question, SamplingParams, content_hash
from emlab.sample.openai import OpenAISampler
from emlab.store import Store

TIMEOUT = 0.5
RETRIES = 2
CAP = 0.05  # the Retry-After cap in these tests: a huge or far-away ask must not hold them up

# (marker, expected error substring or None for an answer, requests the item takes)
SAMPLER_CASES = [
    ("plain", None, 1),
    ("[[S:429*2]]", None, 3),
    ("[[S:429]]", "HTTP 429", 1 + RETRIES),
    ("[[S:500*1]]", None, 2),
    ("[[S:500]]", "HTTP 500", 1 + RETRIES),
    ("[[S:400]]", "HTTP 400", 1),  # a client error is not retried
    ("[[S:ra-neg*1]]", None, 2),
    ("[[S:ra-nan*1]]", None, 2),
    ("[[S:ra-inf*1]]", None, 2),
    ("[[S:ra-garbage*1]]", None, 2),
    ("[[S:ra-huge*1]]", None, 2),
    ("[[S:ra-date*1]]", None, 2),
    ("[[S:stall*1]]", None, 2),
    ("[[S:stall]]", "timeout", 1 + RETRIES),
    ("[[S:truncated*1]]", None, 2),
    ("[[S:truncated]]", "gave up", 1 + RETRIES),
    ("[[S:badjson]]", "unreadable", 1 + RETRIES),
    ("[[S:nonhttp*1]]", None, 2),
    ("[[S:nonhttp]]", "gave up", 1 + RETRIES),
    ("[[S:drop*1]]", None, 2),
    ("[[S:drop]]", "gave up", 1 + RETRIES),
    ("[[S:null]]", "no text content", 1),  # content: null is not an empty answer
]

# the judge asks two rubrics (aligned, then coherent) per answer; a fault that persists stops it
# at the first
JUDGE_CASES = [
    ("plain", None, 2),
    ("[[J:429*1]]", None, 4),
    ("[[J:429]]", "HTTP 429", 1 + RETRIES),
    ("[[J:500]]", "HTTP 500", 1 + RETRIES),
    ("[[J:400]]", "HTTP 400", 1),
    ("[[J:ra-neg*1]]", None, 4),
    ("[[J:ra-nan*1]]", None, 4),
    ("[[J:ra-inf*1]]", None, 4),
    ("[[J:ra-garbage*1]]", None, 4),
    ("[[J:ra-huge*1]]", None, 4),
    ("[[J:ra-date*1]]", None, 4),
    ("[[J:stall*1]]", None, 4),
    ("[[J:stall]]", "timeout", 1 + RETRIES),
    ("[[J:truncated*1]]", None, 4),
    ("[[J:truncated]]", "gave up", 1 + RETRIES),
    ("[[J:badjson]]", "unreadable", 1 + RETRIES),
    ("[[J:nonhttp]]", "gave up", 1 + RETRIES),
    ("[[J:drop*1]]", None, 4),
    ("[[J:drop]]", "gave up", 1 + RETRIES),
    ("[[J:nologprobs]]", "top_logprobs", 1),
    ("[[J:overflow]]", "not a log-probability", 1),
    ("[[J:nonumber]]", "gave no number", 1),
    ("[[J:null]]", None, 2),  # the judge reads logprobs; its text does not matter
]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer(stall_s=3 * TIMEOUT)
    yield srv
    srv.close()


def sampler(url: str, cap: float = CAP) -> OpenAISampler:
    return OpenAISampler(
        "m", base_url=url, concurrency=8, max_retries=RETRIES, timeout=TIMEOUT, backoff_s=0.01,
        max_retry_after_s=cap,
    )  # fmt: skip


def judge(url: str) -> OpenAIJudge:
    return OpenAIJudge(
        "m", base_url=url, concurrency=8, max_retries=RETRIES, timeout=TIMEOUT, backoff=0.01,
        max_retry_after=CAP,
    )  # fmt: skip


def request(marker: str) -> GenerationRequest:
    q = Question(marker, [{"role": "user", "content": f"question {marker}"}])
    return GenerationRequest("m", q, SamplingParams(max_new_tokens=8), 0, 0)


def generation(marker: str) -> Generation:
    return Generation(
        key=content_hash(marker), model="m", question_id=marker, question="Hi?",
        answer=f"answer {marker}", sample_index=0, seed=0,
    )  # fmt: skip


def test_every_fault_kind_is_exercised() -> None:
    used = {f for m, _, _ in SAMPLER_CASES + JUDGE_CASES for _, f, _ in MARKER.findall(m)}
    assert set(FAULTS) - {"ra-short"} == used  # ra-short: in the Retry-After timing test


def test_sampler_records_each_fault_per_item(server: FaultServer) -> None:
    s = sampler(server.url)
    t0 = time.monotonic()
    gens = {g.question_id: g for g in s.sample([request(m) for m, _, _ in SAMPLER_CASES])}
    elapsed = time.monotonic() - t0
    s.close()
    assert len(gens) == len(SAMPLER_CASES)  # one record per request, nothing dropped
    for marker, error, calls in SAMPLER_CASES:
        g = gens[marker]
        if error is None:
            assert g.error is None, (marker, g.error)
            assert g.answer == f"answer to: question {marker}" and g.n_tokens == 5
        else:
            assert g.error is not None and error in g.error, (marker, g.error)
            assert g.answer == "" and g.finish_reason == "error"
        assert server.n_calls("S", marker) == calls, marker
    # an hour-long or 1e12-second Retry-After was capped: nothing waited for it
    assert elapsed < 20


def test_judge_records_each_fault_per_item(server: FaultServer) -> None:
    """One batch holding every fault: each answer gets its own verdict; the good ones score."""
    got = judge(server.url).judge([generation(m) for m, _, _ in JUDGE_CASES])
    assert len(got) == len(JUDGE_CASES)
    for (marker, error, calls), j in zip(JUDGE_CASES, got, strict=True):
        if error is None:
            assert j.error is None, (marker, j.error)
            assert j.aligned == pytest.approx(87.0) and j.coherent == pytest.approx(87.0)
        else:
            assert j.error is not None and error in j.error, (marker, j.error)
            assert j.aligned is None and j.coherent is None
        assert server.n_calls("J", marker) == calls, marker


def test_retry_after_is_honoured_up_to_the_cap(server: FaultServer) -> None:
    def gap(marker: str, cap: float) -> float:
        s = sampler(server.url, cap=cap)
        (g,) = list(s.sample([request(marker)]))
        s.close()
        assert g.error is None
        times = [t for t, _, p in server.log if marker in p]
        return times[1] - times[0]

    assert gap("[[S:ra-short*1]]", cap=5.0) >= 0.3  # waited as asked
    assert gap("[[S:ra-huge*1]]", cap=0.1) < 2.0  # asked for 1e12 s, waited the cap


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0), ("2.5", 2.5), (" 7 ", 7.0), ("-1", None), ("nan", None), ("inf", None),
        ("-inf", None), ("1e400", None), ("", None), ("soon", None), (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: now
        ("Thu, 01 Jan 2099 00:00:00", None),  # no zone: not an HTTP-date
    ],
)  # fmt: skip
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    import email.utils

    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


def test_backoff_and_cap() -> None:
    p = RetryPolicy(max_retries=9, backoff_s=1.0, max_backoff_s=8.0, max_retry_after_s=5.0)
    assert p.delay(0, 1e12) == 5.0 and p.delay(0, 2.0) == 2.0
    for attempt in range(9):
        d = p.delay(attempt, None)
        assert 0.5 * min(8.0, 2**attempt) <= d <= min(8.0, 2**attempt)


QUESTIONS = {
    "plain-1": "plain",
    "plain-2": "plain too",
    "s500": "[[S:500]]",
    "snull": "[[S:null]]",
    "sdrop": "[[S:drop*1]]",  # fails once, then answers: not a failure of the run
    "jnonumber": "[[J:nonumber]]",
    "j429": "[[J:429]]",
    "joverflow": "[[J:overflow]]",
}


def write_study(tmp_path: Path, url: str) -> Path:
    qs = "\n".join(f"  - {{id: {i}, prompt: 'question {m}'}}" for i, m in QUESTIONS.items())
    (tmp_path / "qs.yaml").write_text(f"name: faults\nquestions:\n{qs}\n")
    net = f"base_url: '{url}', max_retries: 1, timeout: {TIMEOUT}"
    study = tmp_path / "study.yaml"
    study.write_text(
        "name: faults\nmodels: [served]\nconditions: [{name: base}]\nquestions: [qs.yaml]\n"
        f"sampling: {{backend: openai, samples_per_question: 1, {net}, max_retry_after: {CAP}}}\n"
        f"judge: {{backend: openai, model: m, {net}, max_retry_after: {CAP}}}\n"
    )
    return study


def test_run_exits_3_with_the_exact_count_and_a_rerun_retries_only_failures(
    server: FaultServer, tmp_path: Path
) -> None:
    import typer
    from typer.testing import CliRunner

    from emlab.cli import EXIT_FAILURES, app

    run_help = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    assert "3 when any answer failed" in run_help.epilog and "--allow-failures" in run_help.epilog
    study, run_dir = write_study(tmp_path, server.url), tmp_path / "run"
    args = ["run", str(study), "--run-dir", str(run_dir), "--quiet"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == EXIT_FAILURES, first.output
    line = "5 of 8 answers failed (2 not generated, 3 not judged)"
    assert first.output.count(line) == 1
    assert line in (run_dir / "report.html").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["failures"] == {"generation": 2, "judge": 3, "total": 5, "answers": 8}
    rows = {r["question_id"]: r for r in map(json.loads, (run_dir / "results.jsonl").open())}
    failed = {q for q, r in rows.items() if r["error"]}
    assert failed == {"s500", "snull", "jnonumber", "j429", "joverflow"}
    assert "no text content" in rows["snull"]["error"]
    assert rows["plain-1"]["aligned"] == pytest.approx(87.0)

    # --allow-failures: same run, same count, exit 0 (everything is cached; nothing is asked)
    before = len(server.log)
    server.healed = True
    allowed = CliRunner().invoke(app, [*args, "--allow-failures"])
    assert allowed.exit_code == 0, allowed.output
    # ... except the failures, which every run retries: now healed, they succeed
    retried = {(mode, MARKER.search(p).group(0)) for _, mode, p in server.log[before:]}  # type: ignore[union-attr]
    assert retried == {
        ("S", "[[S:500]]"), ("S", "[[S:null]]"),
        ("J", "[[S:500]]"), ("J", "[[S:null]]"),  # judged once generated
        ("J", "[[J:nonumber]]"), ("J", "[[J:429]]"), ("J", "[[J:overflow]]"),
    }  # fmt: skip
    assert len(server.log) - before == 2 + 5 * 2  # two samples; five answers x two rubrics
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "failed" not in again.output
    assert len(server.log) - before == 12  # nothing left to retry

    # a verdict that an older emlab stored without score or error counts as not judged: retried
    store = Store(run_dir)
    old = store.all("judgment")[0]
    store.put("judgment", old["key"], {**old, "aligned": None, "coherent": None, "error": None})
    n = len(server.log)
    last = CliRunner().invoke(app, args)
    assert last.exit_code == 0, last.output
    assert len(server.log) - n == 2  # its two rubrics, nothing else


def test_max_new_tokens_beyond_the_context_is_refused_before_any_work(
    tiny_model: str, tmp_path: Path
) -> None:
    from emlab.config import StudyConfig, StudyFileError
    from emlab.study import Study

    cfg = StudyConfig.model_validate(
        {
            "name": "ctx",
            "models": [tiny_model],
            "conditions": [
                {"name": "base"},
                {"name": "c", "dataset": {"domain": "code", "condition": "concealed", "n": 4}},
            ],
            "sampling": {"max_new_tokens": 1024},  # the tiny model has 1024 positions
        }
    )
    with pytest.raises(StudyFileError) as e:
        Study(cfg, run_dir=tmp_path / "run", progress=False).run()
    assert str(e.value).startswith("sampling.max_new_tokens: 1024 does not fit")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run" / "artifacts").exists()  # no dataset built, nothing trained
    ok = cfg.model_copy(update={"sampling": cfg.sampling.model_copy(update={"max_new_tokens": 8})})
    Study(ok, run_dir=tmp_path / "run2", progress=False).check_context()  # fits: no error
