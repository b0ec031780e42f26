"""A fault-injecting OpenAI-compatible server on 127.0.0.1 (a real socket server, not a mock).

Each request's fault is picked by a marker in its last message: ``[[S:name]]`` for sampling
requests, ``[[J:name]]`` for judge requests (those asking for logprobs), so one question can carry
a sampling fault and its answer (which echoes the question) a judge fault. ``[[S:name*2]]`` faults
the first two calls of that prompt and then answers normally; without ``*N`` it faults every call.
``healed = True`` turns every fault off (for re-runs). Raw sockets, so replies can be truncated,
not HTTP at all, or never come.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"\[\[([SJ]):([a-z0-9-]+)(?:\*(\d+))?\]\]")

OK_TOP = [("90", 0.7), ("80", 0.3)]
"""The judge's answer when nothing is faulted: a score of 87 on both rubrics."""


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", "Connection: close"]
    head += [f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> bytes:
    return _response(status, json.dumps(obj).encode(), headers)


def _completion(content: Any, top: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"message": {"content": content}, "finish_reason": "stop"}
    if top is not None:
        tl = [{"token": t, "logprob": math.log(p)} for t, p in top]
        choice["logprobs"] = {"content": [{**tl[0], "top_logprobs": tl}]}
    return {"choices": [choice], "usage": {"completion_tokens": 5}}


def _error(status: int, retry_after: str | None = None) -> Callable[[FaultServer], bytes]:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return lambda srv: _json(status, {"error": {"message": f"fault {status}"}}, headers)


def _http_date(srv: FaultServer) -> bytes:
    when = email.utils.formatdate(time.time() + 3600, usegmt=True)  # an hour: must be capped
    return _json(503, {"error": {"message": "later"}}, {"Retry-After": when})


def _truncated(srv: FaultServer) -> bytes:
    full = _json(200, _completion("this reply is cut short", OK_TOP))
    return full[: len(full) - 20]  # Content-Length promises more than comes


def _stall(srv: FaultServer) -> bytes:
    srv.stop.wait(srv.stall_s)  # longer than the client's timeout
    return b""


FAULTS: dict[str, Callable[[FaultServer], bytes]] = {
    "429": _error(429, "0"),
    "500": _error(500),
    "400": _error(400),
    "ra-neg": _error(429, "-1"),
    "ra-nan": _error(429, "nan"),
    "ra-inf": _error(429, "inf"),
    "ra-huge": _error(429, "1e12"),
    "ra-garbage": _error(429, "soon, promise"),
    "ra-date": _http_date,
    "ra-short": _error(429, "0.3"),
    "stall": _stall,
    "truncated": _truncated,
    "badjson": lambda srv: _response(200, b'{"choices": [{"message": '),
    "nonhttp": lambda srv: b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n",
    "drop": lambda srv: b"",
    "null": lambda srv: _json(200, _completion(None, OK_TOP)),
    "nologprobs": lambda srv: _json(200, _completion("90")),
    "overflow": lambda srv: _response(
        200,
        b'{"choices": [{"message": {"content": "90"}, "logprobs": {"content": [{"token": '
        b'"90", "logprob": 1e308, "top_logprobs": [{"token": "90", "logprob": 1e308}]}]}}]}',
    ),
    "nonumber": lambda srv: _json(200, _completion("I", [("I", 0.6), ("As", 0.4)])),
}


class FaultServer:
    """Serve chat completions on 127.0.0.1 with the faults the prompts ask for."""

    def __init__(self, stall_s: float = 2.0) -> None:
        self.stall_s = stall_s
        self.healed = False
        self.calls: Counter[tuple[str, str]] = Counter()
        self.log: list[tuple[float, str, str]] = []  # (time, mode, prompt) of every request
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            if not f.readline():
                return
            length = 0
            while (line := f.readline().strip()) != b"":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = json.loads(f.read(length))
            mode = "J" if payload.get("logprobs") else "S"
            prompt = payload["messages"][-1]["content"]
            with self._lock:
                self.calls[(mode, prompt)] += 1
                n = self.calls[(mode, prompt)]
                self.log.append((time.monotonic(), mode, prompt))
            conn.sendall(self._reply(mode, prompt, n))

    def _reply(self, mode: str, prompt: str, n: int) -> bytes:
        for kind, fault, times in MARKER.findall(prompt):
            if kind == mode and not self.healed and (not times or n <= int(times)):
                return FAULTS[fault](self)
        if mode == "J":
            return _json(200, _completion("90", OK_TOP))
        return _json(200, _completion(f"answer to: {prompt}"))

    def n_calls(self, mode: str, marker: str) -> int:
        """Requests so far whose prompt holds ``marker``."""
        with self._lock:
            return sum(c for (m, p), c in self.calls.items() if m == mode and marker in p)

    def close(self) -> None:
        self.stop.set()
        self._thread.join()
        self._sock.close()
