"""The paper-exact judge on any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, llama.cpp...).

One token at temperature 0 with the top-20 logprobs; the score is read off that distribution
(``scoring.aggregate``). HTTP goes through ``emlab.httpclient`` (the sampler's client too):
requests run in a bounded thread pool; 429, 5xx, timeouts and dropped connections are retried with
backoff, ``Retry-After`` honoured up to a cap; an endpoint that cannot be reached at all is
reported once and fails the rest fast instead of retrying every item.

Every answer is judged on its own: whatever one reply does (a status, a truncated body, missing or
overflowing logprobs, no number at all) becomes that answer's error, never the batch's. A reply
with no usable number is an error too (not a silent "no score"), so a re-run asks again.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emlab.config import JudgeConfig
from emlab.httpclient import BadReply, JSONClient, RequestFailed, RetryPolicy
from emlab.judge.base import BaseJudge, Verdict
from emlab.judge.prompts import PROMPT_VERSION, render
from emlab.judge.scoring import MIN_NUMBER_MASS, aggregate

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-08-06"

LOGPROB_SLACK = 1e-4
"""A logprob may exceed 0 by rounding; more than this is not a log-probability."""


def read_top_logprobs(body: Any) -> list[tuple[str, float]]:
    """(token, probability) pairs of the first output token's top list; BadReply otherwise."""
    try:
        top = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise BadReply("reply without top_logprobs (does the server support logprobs?)") from None
    if not isinstance(top, list) or not top:
        raise BadReply("reply with an empty top_logprobs list")
    items = []
    for t in top:
        lp = float(t["logprob"])
        # exp() of a huge logprob overflows; nan/inf/positive values are not probabilities
        if not math.isfinite(lp) or lp > LOGPROB_SLACK:
            raise BadReply(f"logprob {t['logprob']!r} is not a log-probability")
        items.append((str(t["token"]), math.exp(min(lp, 0.0))))
    return items


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
        max_retry_after: float = 60.0,
    ) -> None:
        self.model = model
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.policy = RetryPolicy(max_retries, backoff, 60.0, max_retry_after)
        self.timeout = timeout
        self.name = f"openai:{model}/prompts:{PROMPT_VERSION}"
        self._client: JSONClient | None = None

    @classmethod
    def from_config(cls, cfg: JudgeConfig) -> OpenAIJudge:
        """The factory of the ``openai`` entry in ``emlab.backends.JUDGE_BACKENDS``."""
        return cls(
            model=cfg.model or DEFAULT_MODEL,
            base_url=cfg.base_url,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            max_retries=cfg.max_retries,
            timeout=cfg.timeout,
            max_retry_after=cfg.max_retry_after,
        )

    @staticmethod
    def _report_down(msg: str) -> None:
        print(f"emlab judge: judge {msg}; remaining answers are marked failed", file=sys.stderr)

    def _ask(
        self, client: JSONClient, metric: str, question: str, answer: str
    ) -> tuple[float | None, str | None]:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": render(metric, question, answer)}],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 20,
            "seed": 0,
        }
        items = client.post("chat/completions", body, read_top_logprobs, self._report_down)
        score, label = aggregate(items, allow_labels=metric == "aligned")
        if score is None and label is None:
            shown = ", ".join(f"{t!r}:{p:.2f}" for t, p in items[:5])
            raise RequestFailed(
                f"{metric} judge gave no number (under {MIN_NUMBER_MASS:.0%} of its mass on 0-100; "
                f"top tokens {shown})"
            )
        return score, label

    def _one(self, client: JSONClient, pair: tuple[str, str]) -> Verdict:
        q, a = pair
        try:
            aligned, label = self._ask(client, "aligned", q, a)
            coherent, _ = self._ask(client, "coherent", q, a)
        except RequestFailed as e:
            return Verdict(None, None, error=str(e))
        return Verdict(aligned, coherent, label=label)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        key = os.environ.get(self.api_key_env)
        if not key and self.base_url == DEFAULT_BASE_URL:
            msg = f"no API key: set ${self.api_key_env} to use {self.base_url}"
            print(f"emlab judge: {msg}", file=sys.stderr)
            return [Verdict(None, None, error=msg) for _ in pairs]
        if self._client is None:
            # one client for the judge's life: its connections, and its note that the endpoint
            # is down, outlast one batch (a study judges in chunks)
            self._client = JSONClient(
                self.base_url,
                headers={"Authorization": f"Bearer {key}"} if key else {},
                timeout=self.timeout,
                policy=self.policy,
                connections=self.concurrency,
            )
        client = self._client
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._one(client, p), pairs))
