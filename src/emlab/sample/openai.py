"""Sampling from any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, ``emlab serve``).

Plain HTTP with the standard library (no client package needed), a bounded number of requests in
flight (threads), and retries with exponential backoff on 429, 5xx, timeouts and dropped
connections. A request that still fails becomes a Generation with ``error`` set: the study keeps
every record and can retry just those later.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from emlab.config import SamplingConfig
from emlab.errors import EmlabError
from emlab.records import Generation, GenerationRequest
from emlab.sample.hf import request_seed

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class HTTPFailure(EmlabError, RuntimeError):
    """A request that failed; ``retry`` says whether trying again may help."""

    kind = "service"

    def __init__(self, message: str, retry: bool, wait_s: float | None = None) -> None:
        super().__init__(message)
        self.retry, self.wait_s = retry, wait_s


def post_json(url: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> Any:
    """POST JSON, return the decoded JSON body; raise HTTPFailure saying whether to retry."""
    data = json.dumps(payload).encode("utf-8")
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")[:500]
        after = e.headers.get("Retry-After") if e.headers else None
        try:
            wait_s = float(after) if after else None
        except ValueError:
            wait_s = None
        raise HTTPFailure(f"HTTP {e.code}: {body}", e.code in RETRY_STATUS, wait_s) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        raise HTTPFailure(f"{type(e).__name__}: {reason}", retry=True) from None
    except json.JSONDecodeError as e:
        raise HTTPFailure(f"response is not JSON: {e}", retry=True) from None


class OpenAISampler:
    """Chat completions, one request per sample, ``concurrency`` in flight."""

    def __init__(
        self,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="emlab-openai")

    @classmethod
    def from_config(
        cls, cfg: SamplingConfig, model_ref: str, adapter: str | None = None
    ) -> OpenAISampler:
        if adapter is not None:
            raise ValueError(
                "the openai backend samples a served model by name and cannot load an adapter; "
                "serve it first (`emlab serve MODEL --adapter DIR`, or vLLM's --lora-modules) "
                "and give the served name as the model"
            )
        return cls(
            model_ref,
            base_url=cfg.base_url or DEFAULT_BASE_URL,
            api_key=os.environ.get(cfg.api_key_env),
            concurrency=cfg.concurrency,
            max_retries=cfg.max_retries,
        )

    def payload(self, req: GenerationRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": req.question.messages,
            "temperature": req.params.temperature,
            "top_p": req.params.top_p,
            "max_tokens": req.params.max_new_tokens,
            "seed": request_seed(req),
            "n": 1,
        }

    def _call(self, req: GenerationRequest) -> Generation:
        attempt = 0
        while True:
            try:
                body = post_json(self.url, self.payload(req), self.headers, self.timeout)
                choice = body["choices"][0]
                content = choice["message"].get("content") or ""
                usage = body.get("usage") or {}
                return req.answered(
                    content,
                    int(usage.get("completion_tokens") or 0),
                    str(choice.get("finish_reason") or "stop"),
                )
            except HTTPFailure as e:
                if not e.retry or attempt >= self.max_retries:
                    return req.failed(f"{e} (after {attempt + 1} attempts)")
                # Exponential backoff with jitter, or the server's Retry-After when it says so.
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                time.sleep(e.wait_s if e.wait_s is not None else delay * (0.5 + random.random()))
                attempt += 1
            except (KeyError, IndexError, TypeError, ValueError) as e:
                return req.failed(f"malformed response: {type(e).__name__}: {e}")

    def sample(self, requests: Sequence[GenerationRequest]) -> Iterator[Generation]:
        """Yield Generations as responses arrive; at most ``concurrency`` requests in flight."""
        todo = iter(requests)
        running: set[Future[Generation]] = set()
        for req in todo:
            running.add(self.pool.submit(self._call, req))
            if len(running) >= self.concurrency:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(self.pool.submit(self._call, nxt))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
