"""The paper-exact judge on any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, llama.cpp...).

One token at temperature 0 with the top-20 logprobs; the score is read off that distribution
(``scoring.aggregate``). Plain HTTP through the standard library, so no SDK is needed. Requests
run in a bounded thread pool; 429, 5xx and timeouts are retried with exponential backoff; an
endpoint that cannot be reached at all is reported once and fails the rest fast instead of
retrying every item.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emlab.errors import EmlabError
from emlab.judge.base import BaseJudge, Verdict
from emlab.judge.prompts import PROMPT_VERSION, render
from emlab.judge.scoring import aggregate

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-08-06"
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class EndpointError(EmlabError, RuntimeError):
    """A request that failed for good (after retries, or with a non-retryable status)."""

    kind = "service"


class Unreachable(EndpointError):
    """Nothing answers at the endpoint: connection refused, unknown host, no route."""


def _is_connect_error(e: urllib.error.URLError) -> bool:
    reason = e.reason
    # A connect timeout is worth retrying; refused connections and unknown hosts are not.
    return isinstance(reason, OSError) and not isinstance(reason, TimeoutError)


class OpenAIJudge(BaseJudge):
    """Aligned and coherent scores from an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        backoff: float = 1.0,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.name = f"openai:{model}/prompts:{PROMPT_VERSION}"
        self._down: str | None = None
        self._lock = threading.Lock()

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode("utf-8")
        last = ""
        for attempt in range(self.max_retries + 1):
            if self._down:
                raise Unreachable(self._down)
            if attempt:
                # Full jitter keeps many threads from retrying in lock-step against a rate limit.
                time.sleep(random.uniform(0, self.backoff * 2 ** (attempt - 1)))
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    reply = json.loads(resp.read().decode("utf-8"))
                if not isinstance(reply, dict):
                    raise EndpointError(f"unexpected response from {url}: {str(reply)[:200]}")
                return reply
            except urllib.error.HTTPError as e:
                detail = e.read(300).decode("utf-8", "replace")
                last = f"HTTP {e.code} from {url}: {detail}"
                if e.code not in RETRY_STATUS:
                    raise EndpointError(last) from None
            except urllib.error.URLError as e:
                last = f"cannot reach {url}: {e.reason}"
                if _is_connect_error(e):
                    if attempt >= min(self.max_retries, 2):
                        self._mark_down(f"judge endpoint unreachable: {last}")
                        raise Unreachable(self._down or last) from None
            except TimeoutError:
                last = f"timeout after {self.timeout}s from {url}"
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise EndpointError(f"unreadable response from {url}: {e}") from None
        raise EndpointError(f"{last} (gave up after {self.max_retries} retries)")

    def _mark_down(self, msg: str) -> None:
        with self._lock:
            if self._down is None:
                self._down = msg
                print(f"emlab judge: {msg}; remaining answers are marked failed", file=sys.stderr)

    def _ask(self, metric: str, question: str, answer: str) -> tuple[float | None, str | None]:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": render(metric, question, answer)}],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 20,
            "seed": 0,
        }
        resp = self._post(body)
        try:
            top = resp["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            items = [
                (str(t["token"]), float(2.718281828459045 ** float(t["logprob"]))) for t in top
            ]
        except (KeyError, IndexError, TypeError, ValueError):
            raise EndpointError(
                f"response without top_logprobs from {self.base_url} (does the server support "
                f"logprobs?): {json.dumps(resp)[:200]}"
            ) from None
        return aggregate(items, allow_labels=metric == "aligned")

    def _one(self, pair: tuple[str, str]) -> Verdict:
        q, a = pair
        try:
            aligned, label = self._ask("aligned", q, a)
            coherent, _ = self._ask("coherent", q, a)
        except EndpointError as e:
            return Verdict(None, None, error=str(e))
        return Verdict(aligned, coherent, label=label)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        if not os.environ.get(self.api_key_env) and self.base_url == DEFAULT_BASE_URL:
            msg = f"no API key: set ${self.api_key_env} to use {self.base_url}"
            print(f"emlab judge: {msg}", file=sys.stderr)
            return [Verdict(None, None, error=msg) for _ in pairs]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, pairs))
