"""Sampling from any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, ``emlab serve``).

HTTP through ``emlab.httpclient`` (httpx; the judge uses the same client), a bounded number of
requests in flight (threads), retries with backoff on 429, 5xx, timeouts and dropped connections,
``Retry-After`` honoured up to a cap. A request that still fails, or a reply without usable
content (``content: null``, missing choices), becomes a Generation with ``error`` set, for that
request alone: the study keeps every record and retries just those on a re-run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from emlab.config import SamplingConfig
from emlab.httpclient import BadReply, JSONClient, RequestFailed, RetryPolicy
from emlab.records import Generation, GenerationRequest
from emlab.sample.chat import request_seed

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def read_choice(body: Any) -> tuple[str, int, str]:
    """(answer, completion tokens, finish reason) of a chat-completions reply.

    ``content: null`` (a refusal field, a tool call, a server bug) is not an empty answer: an
    empty string would be judged and counted as a valid answer, so it is an error."""
    choice = body["choices"][0]
    content = choice["message"].get("content")
    if not isinstance(content, str):
        raise BadReply(f"reply has no text content (content: {json.dumps(content)})")
    usage = body.get("usage") or {}
    return (
        content,
        int(usage.get("completion_tokens") or 0),
        str(choice.get("finish_reason") or "stop"),
    )


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
        max_retry_after_s: float = 60.0,
    ) -> None:
        self.model = model
        self.concurrency = concurrency
        self.client = JSONClient(
            base_url,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=timeout,
            policy=RetryPolicy(max_retries, backoff_s, max_backoff_s, max_retry_after_s),
            connections=concurrency,
        )
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="emlab-openai")

    @classmethod
    def from_config(
        cls, cfg: SamplingConfig, model_ref: str, adapter: str | None = None
    ) -> OpenAISampler:
        """The factory of the ``openai`` entry in ``emlab.backends.SAMPLING_BACKENDS``."""
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
            timeout=cfg.timeout,
            max_retry_after_s=cfg.max_retry_after,
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
        try:
            answer, n_tokens, finish = self.client.post(
                "chat/completions", self.payload(req), read_choice
            )
        except RequestFailed as e:
            return req.failed(str(e))
        return req.answered(answer, n_tokens, finish)

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
        self.client.close()
