"""``emlab serve``: an OpenAI-compatible chat endpoint over the hf sampler.

Why: the judge and the ``openai`` sampler speak the OpenAI protocol, so serving a local (or
fine-tuned) model this way lets any tool that expects an API (the paper's own scripts, Inspect,
emlab's logprob judge) run against it offline. Concurrent HTTP requests are gathered into one
continuous batch by a single worker thread, which owns the model.

Supported: ``POST /v1/chat/completions`` with ``messages``, ``n``, ``temperature``, ``top_p``,
``max_tokens`` (or ``max_completion_tokens``), ``seed``, ``logprobs``, ``top_logprobs`` (from the
model's next-token distribution, before temperature); ``GET /v1/models``. Not supported (400):
``stream``, ``stop``, ``tools``.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emlab.errors import EmlabError
from emlab.records import content_hash
from emlab.sample.engine import DecodeJob, DecodeResult
from emlab.sample.hf import HFSampler

UNSUPPORTED = ("stream", "stop", "tools", "functions", "tool_choice", "response_format")
MAX_TOP_LOGPROBS = 20
MAX_BODY_BYTES = 32 << 20
"""Largest request body (32 MiB): 128 messages of the longest text emlab reads (100k characters)
fit; a larger or negative ``Content-Length`` is refused before a byte is read, instead of a
handler thread waiting forever for a body that never comes."""
READ_TIMEOUT_S = 60.0
"""A client that announces a body and stops sending gets this long, then its connection closes."""


class BadRequest(EmlabError, ValueError):
    """A request the server refuses with HTTP 400 and this message."""


class BatchWorker:
    """Owns the model; runs every job that arrived meanwhile as one continuous batch."""

    def __init__(self, sampler: HFSampler, gather_s: float = 0.005) -> None:
        self.sampler = sampler
        self.gather_s = gather_s
        self.inbox: queue.Queue[tuple[list[DecodeJob], Future[list[DecodeResult]]] | None] = (
            queue.Queue()
        )
        self.thread = threading.Thread(target=self._loop, name="emlab-serve-worker", daemon=True)
        self.thread.start()

    def submit(self, jobs: list[DecodeJob]) -> Future[list[DecodeResult]]:
        fut: Future[list[DecodeResult]] = Future()
        self.inbox.put((jobs, fut))
        return fut

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            item = self.inbox.get()
            if item is None:
                return
            batch = [item]
            time.sleep(self.gather_s)  # let concurrent requests join this batch
            while True:
                try:
                    nxt = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.inbox.put(None)
                    break
                batch.append(nxt)
            flat = [job for jobs, _ in batch for job in jobs]
            try:
                results: dict[int, DecodeResult] = dict(self.sampler.engine.run(flat))
            except Exception as e:
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            offset = 0
            for jobs, fut in batch:
                fut.set_result([results[offset + i] for i in range(len(jobs))])
                offset += len(jobs)


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise BadRequest(f"`{name}` must be a number in [{lo}, {hi}], got {v!r}")
    return float(v)


class ChatService:
    """Turns OpenAI chat requests into decode jobs and results back into OpenAI responses."""

    def __init__(self, sampler: HFSampler, name: str) -> None:
        self.sampler, self.name = sampler, name
        self.worker = BatchWorker(sampler)

    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "emlab"}],
        }

    def _token_entry(self, token: int, logprob: float) -> dict[str, Any]:
        text = self.sampler.decode_token(token)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("`messages` must be a non-empty list of {role, content}")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise BadRequest(f"messages[{i}] must have a string `content`")
        for key in UNSUPPORTED:
            if body.get(key):
                raise BadRequest(f"`{key}` is not supported by emlab serve")
        n = int(_number(body, "n", 1, 1, 128))
        temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
        top_p = _number(body, "top_p", 1.0, 1e-9, 1.0)
        max_tokens = int(
            _number(body, "max_completion_tokens", _number(body, "max_tokens", 256, 1, 1e6), 1, 1e6)
        )
        want_lp = bool(body.get("logprobs"))
        top_k = int(_number(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS)) if want_lp else None
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadRequest(f"`seed` must be an integer, got {seed!r}")
        msgs = [{"role": str(m.get("role", "user")), "content": m["content"]} for m in messages]
        jobs = []
        for i in range(n):
            # Choice 0 uses the seed itself, so the openai sampler sending a request's seed
            # reproduces the hf sampler's answer exactly; further choices derive from it.
            if seed is None:
                s = secrets.randbits(60)
            else:
                s = seed if i == 0 else int(content_hash([seed, i])[:15], 16)
            try:
                jobs.append(
                    self.sampler.job(
                        msgs,  # type: ignore[arg-type]
                        max_new_tokens=max_tokens,
                        temperature=temperature,
                        top_p=top_p,
                        seed=s % 2**63,
                        top_logprobs=top_k,
                    )
                )
            except ValueError as e:
                raise BadRequest(str(e)) from e
        results = self.worker.submit(jobs).result()
        choices = []
        for i, res in enumerate(results):
            logprobs = None
            if res.logprobs is not None:
                logprobs = {
                    "content": [
                        {
                            **self._token_entry(t.token, t.logprob),
                            "top_logprobs": [self._token_entry(a, b) for a, b in t.top],
                        }
                        for t in res.logprobs
                    ]
                }
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": self.sampler.decode(res.tokens)},
                    "finish_reason": res.finish_reason,
                    "logprobs": logprobs,
                }
            )
        prompt_tokens = len(jobs[0].prompt)
        completion = sum(r.n_tokens for r in results)
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }


def _handler(service: ChatService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S  # socket timeout of every read: no thread blocks forever

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request
            return None

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, message: str, kind: str) -> None:
            self._send(code, {"error": {"message": message, "type": kind, "code": code}})

        def _refuse(self, code: int, message: str) -> None:
            """Answer and close: the unread body (if any) cannot be skipped safely."""
            self.close_connection = True
            data = json.dumps(
                {"error": {"message": message, "type": "invalid_request_error", "code": code}}
            ).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes | None:
            """The request body, or None after refusing a bad ``Content-Length``."""
            raw = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "chunked bodies are not supported; send Content-Length")
                return None
            try:
                length = int(raw) if raw is not None else 0
            except ValueError:
                self._refuse(400, f"Content-Length is not a number: {raw!r}")
                return None
            if length < 0:
                self._refuse(400, f"Content-Length is negative: {length}")
                return None
            if length > MAX_BODY_BYTES:
                self._refuse(413, f"body of {length} bytes is over {MAX_BODY_BYTES} bytes")
                return None
            data = self.rfile.read(length)
            if len(data) < length:  # the client closed (or timed out) before sending it all
                self.close_connection = True
                return None
            return data

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, service.models())
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:
            try:
                raw = self._body()
            except TimeoutError:  # announced a body, then sent too little of it
                self.close_connection = True
                return
            if raw is None:
                return
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}", "not_found")
                return
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise BadRequest("the request body must be a JSON object")
                self._send(200, service.complete(body))
            except (BadRequest, json.JSONDecodeError) as e:
                self._error(400, str(e), "invalid_request_error")
            except Exception as e:  # the model failed: the client should see why and may retry
                self._error(500, f"{type(e).__name__}: {e}", "server_error")

    return Handler


def make_server(
    model_ref: str,
    adapter: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    batch_size: int = 64,
    name: str | None = None,
    sampler: HFSampler | None = None,
    adapter_scale: float = 1.0,
) -> tuple[ThreadingHTTPServer, ChatService]:
    """Build (not start) the server; ``port=0`` picks a free port (``server.server_address``)."""
    sampler = sampler or HFSampler(
        model_ref, adapter=adapter, batch_size=batch_size, adapter_scale=adapter_scale
    )
    service = ChatService(sampler, name or model_ref)
    server = ThreadingHTTPServer((host, port), _handler(service))
    server.daemon_threads = True
    return server, service


def serve(
    model: str,
    adapter: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    batch_size: int = 64,
    name: str | None = None,
    adapter_scale: float = 1.0,
) -> None:
    """Serve MODEL (an emlab model ref) as an OpenAI-compatible API at /v1/chat/completions.

    Runs until interrupted. It is also the ``emlab serve`` command: typer reads this signature,
    so MODEL is an argument and the rest are options (--adapter DIR, --host, --port, ...);
    --adapter-scale multiplies the adapter's update (an amplified adapter).
    """
    server, service = make_server(
        model, adapter, host, port, batch_size, name, adapter_scale=adapter_scale
    )
    addr = f"http://{host}:{server.server_address[1]}/v1"
    print(f"emlab serve: {service.name} at {addr} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.worker.stop()
