"""The openai sampler against a real local ``emlab serve`` (tiny model) and a flaky server."""

from __future__ import annotations

import itertools
import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from emlab.config import SamplingConfig
from emlab.records import GenerationRequest, Question, SamplingParams
from emlab.sample import make_sampler
from emlab.sample.hf import HFSampler
from emlab.sample.openai import OpenAISampler
from emlab.sample.serve import make_server


@pytest.fixture(scope="module")
def hf(tiny_model: str) -> HFSampler:
    return HFSampler(tiny_model, batch_size=4, dtype="fp32")


@pytest.fixture(scope="module")
def server_url(hf: HFSampler, tiny_model: str) -> Iterator[str]:
    server, service = make_server(tiny_model, port=0, name="tiny", sampler=hf)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    service.worker.stop()


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _requests(n: int, temperature: float = 1.0) -> list[GenerationRequest]:
    qs = [
        Question("a", [{"role": "user", "content": "Hello there, how are you"}]),
        Question(
            "b",
            [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "I'm bored. What should I do?"},
            ],
        ),
    ]
    params = SamplingParams(temperature=temperature, max_new_tokens=8)
    return [GenerationRequest("tiny", q, params, 0, i) for q in qs for i in range(n)]


def test_openai_sampler_through_serve_matches_hf(hf: HFSampler, server_url: str) -> None:
    """Same requests, same seeds: the HTTP path gives the hf sampler's answers exactly."""
    reqs = _requests(3)
    direct = {g.key: g for g in hf.sample(reqs)}
    sampler = make_sampler(
        SamplingConfig(backend="openai", base_url=server_url, concurrency=3), "tiny"
    )
    remote = list(sampler.sample(reqs))
    sampler.close()
    assert sorted(g.key for g in remote) == sorted(direct)
    for g in remote:
        d = direct[g.key]
        assert g.error is None
        assert (g.answer, g.n_tokens, g.finish_reason) == (d.answer, d.n_tokens, d.finish_reason)
        assert g.question == d.question and g.question_id == d.question_id


def test_serve_models_n_and_logprobs(server_url: str) -> None:
    with urllib.request.urlopen(f"{server_url}/models", timeout=30) as r:
        assert json.loads(r.read())["data"][0]["id"] == "tiny"
    code, body = _post(
        f"{server_url}/chat/completions",
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "n": 3,
            "max_tokens": 4,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 5,
        },
    )
    assert code == 200
    assert len(body["choices"]) == 3 and body["usage"]["completion_tokens"] >= 3
    texts = {c["message"]["content"] for c in body["choices"]}
    assert len(texts) == 1  # greedy: every choice is the same
    lp = body["choices"][0]["logprobs"]["content"]
    assert 1 <= len(lp) <= 4
    for entry in lp:
        top = entry["top_logprobs"]
        assert len(top) == 5
        assert top[0]["logprob"] == pytest.approx(entry["logprob"])  # greedy picks the argmax
        assert all(a["logprob"] >= b["logprob"] for a, b in itertools.pairwise(top))
        assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-5


def test_serve_rejects_bad_requests(server_url: str) -> None:
    url = f"{server_url}/chat/completions"
    code, body = _post(url, {"messages": []})
    assert code == 400 and "messages" in body["error"]["message"]
    code, body = _post(url, {"messages": [{"role": "user", "content": "x"}], "stream": True})
    assert code == 400 and "stream" in body["error"]["message"]
    code, body = _post(url, {"messages": [{"role": "user", "content": "x"}], "temperature": 9})
    assert code == 400 and "temperature" in body["error"]["message"]


class _Flaky(BaseHTTPRequestHandler):
    """Fails the first calls of each prompt with the status codes in ``plan``, then answers."""

    plan: ClassVar[dict[str, list[int]]] = {}
    calls: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        with self.lock:
            n = self.calls[prompt] = self.calls.get(prompt, 0) + 1
        codes = self.plan.get(prompt, [])
        if n <= len(codes):
            self.send_response(codes[n - 1])
            payload = b'{"error": {"message": "try later"}}'
        else:
            self.send_response(200)
            payload = json.dumps(
                {
                    "choices": [
                        {"message": {"content": f"ok {prompt}"}, "finish_reason": "length"}
                    ],
                    "usage": {"completion_tokens": 8},
                }
            ).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_retries_backoff_and_recorded_errors() -> None:
    _Flaky.plan = {"p0": [429, 503], "p1": [400], "p2": [500, 500, 500, 500], "p3": []}
    _Flaky.calls = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sampler = OpenAISampler(
            "m",
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            concurrency=2,
            max_retries=2,
            backoff_s=0.01,
        )
        reqs = [
            GenerationRequest(
                "m", Question(p, [{"role": "user", "content": p}]), SamplingParams(), 0, 0
            )
            for p in ("p0", "p1", "p2", "p3")
        ]
        gens = {g.question_id: g for g in sampler.sample(reqs)}
        sampler.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(gens) == 4  # nothing dropped
    assert gens["p0"].answer == "ok p0" and gens["p0"].error is None
    assert gens["p0"].n_tokens == 8 and gens["p0"].finish_reason == "length"
    assert _Flaky.calls["p0"] == 3
    assert gens["p1"].finish_reason == "error" and "HTTP 400" in (gens["p1"].error or "")
    assert _Flaky.calls["p1"] == 1  # a client error is not retried
    assert "HTTP 500" in (gens["p2"].error or "") and _Flaky.calls["p2"] == 3  # 1 + 2 retries
    assert gens["p3"].error is None


def test_unreachable_endpoint_is_recorded() -> None:
    sampler = OpenAISampler(
        "m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01, timeout=2
    )
    (g,) = list(sampler.sample(_requests(1)[:1]))
    assert g.finish_reason == "error" and g.error and g.answer == ""


def test_adapter_with_openai_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="emlab serve"):
        make_sampler(SamplingConfig(backend="openai"), "gpt-4o", adapter="/some/adapter")


def test_serve_mounts_on_typer() -> None:
    import typer
    from typer.testing import CliRunner

    from emlab.sample.serve import serve

    app = typer.Typer()
    app.command("serve")(serve)
    app.command("noop")(lambda: None)  # two commands, so `serve` is a sub-command as in emlab
    out = CliRunner().invoke(app, ["serve", "--help"])
    assert out.exit_code == 0, out.output
    for flag in ("MODEL", "--adapter", "--host", "--port", "--batch-size"):
        assert flag in out.output
