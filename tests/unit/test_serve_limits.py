"""``emlab serve`` refuses a bad ``Content-Length`` at once instead of blocking a thread on it.

Against the real server (tiny model) on 127.0.0.1, with raw sockets: an HTTP client library would
refuse to send these requests in the first place.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from emlab.sample import serve
from emlab.sample.hf import HFSampler
from emlab.sample.serve import MAX_BODY_BYTES, make_server


@pytest.fixture(scope="module")
def hf(tiny_model: str) -> HFSampler:
    return HFSampler(tiny_model, batch_size=2, dtype="fp32")


@contextmanager
def running(hf: HFSampler) -> Iterator[tuple[str, int]]:
    server, service = make_server("tiny", port=0, name="tiny", sampler=hf)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        service.worker.stop()


@pytest.fixture(scope="module")
def address(hf: HFSampler) -> Iterator[tuple[str, int]]:
    with running(hf) as addr:
        yield addr


def _exchange(address: tuple[str, int], head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send one raw request; return status, JSON error body and whatever followed (b"" = closed)."""
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while True:
            chunk = s.recv(65536)  # the server must close: a hang here fails via the timeout
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    headers, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload), headers


def _head(length: str) -> str:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
    )


@pytest.mark.parametrize(
    ("length", "status"),
    [("-1", 400), ("-99999999999", 400), ("abc", 400), (str(MAX_BODY_BYTES + 1), 413)],
)
def test_bad_content_length_is_refused_and_closed(
    address: tuple[str, int], length: str, status: int
) -> None:
    code, body, headers = _exchange(address, _head(length))
    assert code == status
    assert "Content-Length" in body["error"]["message"] or "bytes" in body["error"]["message"]
    assert b"Connection: close" in headers


def test_huge_announced_body_is_not_waited_for(address: tuple[str, int]) -> None:
    code, body, _ = _exchange(address, _head(str(10**15)), b'{"messages": []}')
    assert code == 413 and body["error"]["code"] == 413


def test_short_body_times_out_instead_of_blocking(
    hf: HFSampler, address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve, "READ_TIMEOUT_S", 0.5)
    with running(hf) as quick, socket.create_connection(quick, timeout=10) as s:
        s.sendall((_head("100") + "\r\n").encode() + b'{"mess')  # 6 of 100 bytes, then silence
        t0 = time.monotonic()
        assert s.recv(65536) == b""  # the server closed the connection...
        assert time.monotonic() - t0 < 5  # ...after its read timeout, not never
    # and the server still answers a good request
    ok = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    with socket.create_connection(address, timeout=60) as s:
        s.sendall((_head(str(len(ok))) + "\r\n").encode() + ok)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
