"""One HTTP client for every OpenAI-compatible endpoint emlab talks to (sampler and judge).

Shared by stages like ``emlab.store`` (a leaf: it imports only ``emlab.errors``). It posts JSON with
``httpx`` and owns the failure policy, so both paths behave the same:

* every request is isolated: whatever one reply does (a status, a truncated body, a dropped
  connection, a reply that is not HTTP, a stall) ends as a ``RequestFailed`` for that request
  only, never an exception that takes a batch with it;
* 408/409/429/5xx, timeouts, dropped connections and unreadable bodies are retried with
  exponential backoff and jitter; a ``Retry-After`` header (seconds or an HTTP-date) is honoured
  up to ``max_retry_after_s``, and values that mean nothing (negative, nan, inf, garbage) fall
  back to the backoff, so a header can neither raise nor hang a run;
* an endpoint that refuses connections after a few tries is marked down: later requests fail
  at once with one message instead of each retrying against nothing.
"""

from __future__ import annotations

import email.utils
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from emlab.errors import EmlabError

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Statuses that mean "not now" rather than "never": worth another try."""

CONNECT_TRIES = 3
"""Refused connections in a row (for one request) before the endpoint is declared down."""

T = TypeVar("T")


class RequestFailed(EmlabError, RuntimeError):
    """A request that failed for good, after retries where they could help."""

    kind = "service"


class EndpointDown(RequestFailed):
    """Nothing answers at the endpoint (connection refused, unknown host, no route)."""


class BadReply(EmlabError, ValueError):
    """A reply that arrived but cannot be used (missing fields, null content...).

    Raised by a caller's ``read`` function; not retried within the run (the server would most
    likely say the same again) but recorded as the item's error, so a re-run retries it."""

    kind = "service"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying a request again."""

    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): the server's wish if it gave a
        usable one (capped), else exponential backoff with jitter (many threads must not retry
        in lock-step against a rate limit)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        base = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return base * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, or None when it says nothing usable.

    RFC 9110 allows a non-negative number of seconds or an HTTP-date; a date in the past means
    "now" (0). Negative, nan, inf and anything unparsable give None (the caller backs off).
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT; a date without a zone is read as such
            return None
        now = time.time() if now is None else now
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class JSONClient:
    """POST JSON to one endpoint from many threads, with ``RetryPolicy`` and per-request
    isolation. ``post(path, payload, read)`` returns ``read(decoded_json)`` or raises
    RequestFailed (BadReply from ``read`` becomes a RequestFailed naming the reply)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
        policy: RetryPolicy | None = None,
        connections: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self._client = httpx.Client(
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections),
            # the endpoint is given explicitly; a proxy from the environment would only surprise
            trust_env=False,
        )
        self._down: str | None = None
        self._lock = threading.Lock()

    @property
    def down(self) -> str | None:
        """Why the endpoint was declared unreachable, or None."""
        return self._down

    def _mark_down(self, msg: str) -> bool:
        """Record the endpoint as down; True for the first caller (who reports it)."""
        with self._lock:
            if self._down is None:
                self._down = msg
                return True
            return False

    def post(
        self,
        path: str,
        payload: dict[str, Any],
        read: Callable[[Any], T],
        on_down: Callable[[str], None] | None = None,
    ) -> T:
        url = f"{self.base_url}/{path.lstrip('/')}"
        body = json.dumps(payload).encode("utf-8")
        refused = 0
        attempt = 0
        while True:
            if self._down:
                raise EndpointDown(self._down)
            retry_after: float | None = None
            try:
                resp = self._client.post(url, content=body)
                raw = resp.read()
            except httpx.ConnectError as e:
                refused += 1
                last = f"cannot reach {url}: {e}"
                if refused >= min(CONNECT_TRIES, self.policy.max_retries + 1):
                    msg = f"endpoint unreachable: {last}"
                    if self._mark_down(msg) and on_down is not None:
                        on_down(msg)
                    raise EndpointDown(self._down or msg) from None
            except httpx.TimeoutException:
                last = f"timeout after {self.timeout:g}s from {url}"
            except httpx.HTTPError as e:  # dropped connection, a reply that is not HTTP...
                last = f"{type(e).__name__} from {url}: {e or 'connection closed'}"
            else:
                if resp.status_code in RETRY_STATUS:
                    last = f"HTTP {resp.status_code} from {url}: {_snippet(raw)}"
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                elif resp.status_code >= 400:
                    raise RequestFailed(f"HTTP {resp.status_code} from {url}: {_snippet(raw)}")
                else:
                    try:
                        decoded = json.loads(raw)
                    except (ValueError, UnicodeDecodeError) as e:
                        last = f"unreadable reply from {url} ({e}): {_snippet(raw)}"
                    else:
                        try:
                            return read(decoded)
                        except (BadReply, KeyError, IndexError, TypeError, ValueError) as e:
                            raise RequestFailed(
                                f"unusable reply from {url}: {e}: {_snippet(raw)}"
                            ) from None
            if attempt >= self.policy.max_retries:
                raise RequestFailed(f"{last} (gave up after {self.policy.max_retries} retries)")
            time.sleep(self.policy.delay(attempt, retry_after))
            attempt += 1

    def close(self) -> None:
        self._client.close()


def _snippet(raw: bytes, n: int = 200) -> str:
    return raw[:n].decode("utf-8", "replace").replace("\n", " ")
