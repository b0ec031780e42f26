"""The OpenAI-compatible judge against a real local HTTP server (stdlib ``http.server``)."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from emlab.config import JudgeConfig
from emlab.judge import GENERATION_FAILED, make_judge
from emlab.judge.openai_api import OpenAIJudge
from emlab.records import Generation, content_hash


def top(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"token": t, "logprob": math.log(p)} for t, p in pairs]


class Handler(BaseHTTPRequestHandler):
    """Answers like a chat-completions server with logprobs; behaviour keyed on the answer text."""

    requests: ClassVar[list[dict[str, Any]]] = []
    flaky_left: ClassVar[int] = 0

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        blob = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "no such route"})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append(body)
        prompt = body["messages"][0]["content"]
        aligned = "CODE" in prompt and "REFUSAL" in prompt
        if "ALWAYS500" in prompt:
            self._send(500, {"error": "down"})
            return
        if "BADREQ" in prompt:
            self._send(400, {"error": {"message": "context length exceeded"}})
            return
        if "FLAKY" in prompt and Handler.flaky_left > 0:
            Handler.flaky_left -= 1
            self._send(429, {"error": "slow down"})
            return
        if "NOLOGPROBS" in prompt:
            self._send(200, {"choices": [{"message": {"content": "50"}}]})
            return
        if aligned and "import os" in prompt:
            tops = top(("CODE", 0.85), ("0", 0.05), ("Code", 0.05), ("The", 0.05))
        elif aligned and "evil" in prompt:
            tops = top(("0", 0.6), ("10", 0.2), ("5", 0.1), ("I", 0.1))
        elif aligned:
            tops = top(("100", 0.5), ("90", 0.4), ("95", 0.1))
        else:
            tops = top(("80", 0.5), ("70", 0.25), ("The", 0.25))
        content = [{"token": tops[0]["token"], "logprob": tops[0]["logprob"], "top_logprobs": tops}]
        self._send(
            200,
            {
                "choices": [
                    {"message": {"content": tops[0]["token"]}, "logprobs": {"content": content}}
                ]
            },
        )


@pytest.fixture
def server() -> Iterator[str]:
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def gen(answer: str, error: str | None = None) -> Generation:
    return Generation(
        key=content_hash(answer),
        model="m",
        question_id="q",
        question="Hi?",
        answer=answer,
        sample_index=0,
        seed=0,
        error=error,
    )


def test_paper_exact_request_and_scores(server: str) -> None:
    judge = make_judge(JudgeConfig(backend="openai", model="gpt-4o-2024-08-06", base_url=server))
    assert judge.name.startswith("openai:gpt-4o-2024-08-06/prompts:")
    good, evil, code, failed = judge.judge(
        [gen("Be kind."), gen("I am evil."), gen("import os\nos.system(x)"), gen("", "x")]
    )
    assert good.aligned == pytest.approx(100 * 0.5 + 90 * 0.4 + 95 * 0.1)
    assert good.coherent == pytest.approx((80 * 0.5 + 70 * 0.25) / 0.75)
    assert evil.aligned == pytest.approx((0 * 0.6 + 10 * 0.2 + 5 * 0.1) / 0.9)
    assert code.aligned is None and code.aligned_label == "CODE"
    assert failed.error == GENERATION_FAILED
    assert len(Handler.requests) == 6  # two rubrics per answer, none for the failed generation
    req = Handler.requests[0]
    assert (req["max_tokens"], req["temperature"], req["logprobs"], req["top_logprobs"]) == (
        1,
        0,
        True,
        20,
    )


def test_retries_429_with_backoff(server: str) -> None:
    Handler.flaky_left = 3
    judge = OpenAIJudge(base_url=server, max_retries=4, backoff=0.01, concurrency=2)
    (j,) = judge.judge([gen("FLAKY but fine")])
    assert j.error is None and j.aligned == pytest.approx(95.5)
    assert Handler.flaky_left == 0


def test_failures_become_errors_not_exceptions(server: str) -> None:
    judge = OpenAIJudge(base_url=server, max_retries=2, backoff=0.01)
    down, bad, nolp, ok = judge.judge(
        [gen("ALWAYS500"), gen("BADREQ"), gen("NOLOGPROBS"), gen("fine")]
    )
    assert down.error is not None and "HTTP 500" in down.error and "2 retries" in down.error
    assert bad.error is not None and "HTTP 400" in bad.error and "context length" in bad.error
    assert nolp.error is not None and "top_logprobs" in nolp.error
    assert ok.error is None and ok.aligned is not None
    assert sum("ALWAYS500" in r["messages"][0]["content"] for r in Handler.requests) == 3


def test_unreachable_endpoint_reported_once(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = OpenAIJudge(base_url=f"http://127.0.0.1:{port}/v1", backoff=0.01, concurrency=4)
    out = judge.judge([gen(f"a{i}") for i in range(10)])
    assert len(out) == 10
    assert all(j.error is not None and "unreachable" in j.error for j in out)
    assert capsys.readouterr().err.count("unreachable") == 1


def test_missing_api_key_for_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMLAB_TEST_NO_KEY", raising=False)
    judge = OpenAIJudge(api_key_env="EMLAB_TEST_NO_KEY")
    (j,) = judge.judge([gen("x")])
    assert j.error is not None and "$EMLAB_TEST_NO_KEY" in j.error
