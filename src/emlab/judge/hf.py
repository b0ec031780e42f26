"""A local causal LM as judge, with the *exact* distribution over the allowed answers.

The API judge reads single-token logprobs, which is right for GPT-4o (every 0-100 is one token)
and wrong for tokenizers that split digits (Llama, SmolLM: "85" = "8" + "5"). Here every allowed
answer ("0" ... "100", and "CODE"/"REFUSAL" for the aligned rubric) is scored as its full token
sequence followed by the end-of-turn token, so "1" and "10" are disjoint events and the
probabilities are exact. The prompt is encoded once; its KV cache is shared by all candidates,
which are scored in batches.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch

from emlab.config import JudgeConfig
from emlab.errors import ArgumentError
from emlab.judge.base import BaseJudge, Verdict
from emlab.judge.prompts import LABELS, PROMPT_VERSION, render
from emlab.judge.scoring import aggregate
from emlab.models import LoadedModel, load_model

NUMBERS: tuple[str, ...] = tuple(str(i) for i in range(101))


class HFJudge(BaseJudge):
    """Scores with any model ref ``emlab.models.load_model`` accepts (embedded, folder, HF id)."""

    def __init__(
        self,
        ref: str,
        device: str | None = None,
        dtype: str = "auto",
        candidate_batch: int = 64,
        loaded: LoadedModel | None = None,
    ) -> None:
        self.ref = ref
        self.lm = loaded or load_model(ref, device=device, dtype=dtype)
        self.candidate_batch = candidate_batch
        self.name = f"hf:{ref}/prompts:{PROMPT_VERSION}"

    @classmethod
    def from_config(cls, cfg: JudgeConfig) -> HFJudge:
        """The factory of the ``hf`` entry in ``emlab.backends.JUDGE_BACKENDS``."""
        if not cfg.model:
            raise ArgumentError(
                "judge backend hf needs a model (judge.model in a study, --model on the command "
                "line): a model ref, e.g. a folder"
            )
        return cls(cfg.model)

    # -- tokenisation -------------------------------------------------------------------------
    def prompt_ids(self, metric: str, question: str, answer: str) -> list[int]:
        tok = self.lm.tokenizer
        messages = [{"role": "user", "content": render(metric, question, answer)}]
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        return list(tok(messages[0]["content"] + "\n")["input_ids"])

    def candidate_ids(self, prompt: list[int], text: str) -> list[int]:
        """Tokens of ``text`` as the model would write it right after ``prompt``, then EOS.

        Tokenising prompt+text together and taking the tail matches what the model produces when
        a merge crosses the boundary; if the prompt's own tokens change, fall back to the text
        alone.
        """
        tok = self.lm.tokenizer
        prompt_text = tok.decode(prompt)
        joint = list(tok(prompt_text + text, add_special_tokens=False)["input_ids"])
        ids = (
            joint[len(prompt) :]
            if joint[: len(prompt)] == prompt
            else list(tok(text, add_special_tokens=False)["input_ids"])
        )
        eos = tok.eos_token_id
        return ids + ([int(eos)] if eos is not None else [])

    # -- scoring ------------------------------------------------------------------------------
    @torch.inference_mode()
    def distribution(self, prompt: list[int], candidates: Sequence[str]) -> dict[str, float]:
        """P(candidate, then end of turn | prompt) for each candidate, exactly."""
        model = self.lm.model
        dev = next(model.parameters()).device
        ids = torch.tensor([prompt], device=dev)
        # Only the last position's logits are needed from the prompt pass.
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        first = out.logits[0, -1].float().log_softmax(-1)
        cache = out.cache
        seqs = [self.candidate_ids(prompt, c) for c in candidates]
        logp: list[float] = []
        n_prompt = len(prompt)
        for start in range(0, len(seqs), self.candidate_batch):
            chunk = seqs[start : start + self.candidate_batch]
            # Every candidate's first token is scored by the prompt pass; the rest need one
            # batched pass over the candidate tokens but the last.
            longest = max(len(s) for s in chunk)
            if longest == 1:
                logp += [float(first[s[0]]) for s in chunk]
                continue
            width = longest - 1
            pad = int(self.lm.tokenizer.pad_token_id or 0)
            inp = torch.full((len(chunk), width), pad, dtype=torch.long, device=dev)
            mask = torch.zeros((len(chunk), n_prompt + width), dtype=torch.long, device=dev)
            mask[:, :n_prompt] = 1
            for i, s in enumerate(chunk):
                body = s[:-1]
                inp[i, : len(body)] = torch.tensor(body, device=dev)
                mask[i, n_prompt : n_prompt + len(body)] = 1
            kv = copy.deepcopy(cache)
            kv.batch_repeat_interleave(len(chunk))
            pos = torch.arange(n_prompt, n_prompt + width, device=dev).expand(len(chunk), -1)
            logits = model(
                input_ids=inp, attention_mask=mask, position_ids=pos, cache=kv
            ).logits.float()
            lp = logits.log_softmax(-1)
            for i, s in enumerate(chunk):
                total = float(first[s[0]])
                for j in range(1, len(s)):
                    total += float(lp[i, j - 1, s[j]])
                logp.append(total)
        return {c: math.exp(v) for c, v in zip(candidates, logp, strict=True)}

    def _metric(self, metric: str, q: str, a: str) -> tuple[float | None, str | None]:
        cands = NUMBERS + (LABELS if metric == "aligned" else ())
        dist = self.distribution(self.prompt_ids(metric, q, a), cands)
        return aggregate(dist.items(), allow_labels=metric == "aligned")

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        out = []
        for q, a in pairs:
            try:
                aligned, label = self._metric("aligned", q, a)
                coherent, _ = self._metric("coherent", q, a)
                out.append(Verdict(aligned, coherent, label=label))
            except Exception as e:  # one bad answer (e.g. too long for the context) is one error
                out.append(Verdict(None, None, error=f"hf judge failed: {type(e).__name__}: {e}"))
        return out


def describe(judge: HFJudge) -> dict[str, Any]:
    return {"name": judge.name, **judge.lm.describe()}
