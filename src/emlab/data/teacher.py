"""The numbers domain's teacher: a local model that continues number lists, constrained.

A second way emlab generates text, apart from the sample stage's engine: it runs
``model.generate`` with a grammar (:class:`ListGrammar`) and a stopping rule, because it writes
*training data* (a few thousand short lists, once per dataset) rather than evaluation answers,
and needs token-level constraints the continuous batcher does not have. Kept out of the domain
module, which holds only what the numbers domain is (prompts, checks, options).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

NUMBER = re.compile(r"[0-9]+")
"""One number in a teacher's answer."""


class Prompt(Protocol):
    """What the teacher is asked: a user turn, and how many numbers it asks for."""

    @property
    def text(self) -> str: ...

    @property
    def count(self) -> int: ...


class ListGrammar:
    """Which tokens may come next so that the answer stays a well-formed list of 0-999 numbers.

    Tokens made only of digits, commas and single spaces are candidates; a number has at most
    three digits; after a comma comes a space or a digit, after a space a digit, and end-of-turn
    only after a digit. Without these rules a constrained small model fills its budget with runs
    of spaces or four-digit numbers. How many numbers to write is left to the teacher.
    """

    _SHAPE = re.compile(r"[0-9, ]+")
    _BAD = re.compile(r"  |,,| ,|[0-9]{4}")

    def __init__(self, pieces: Sequence[str], eos: Sequence[int]) -> None:
        self.eos = frozenset(eos)
        self.pieces: dict[int, str] = {
            i: p
            for i, p in enumerate(pieces)
            if i not in self.eos and self._SHAPE.fullmatch(p) and not self._BAD.search(p)
        }
        lead = {i: len(p) - len(p.lstrip("0123456789")) for i, p in self.pieces.items()}
        spaced = sorted(i for i, p in self.pieces.items() if p[0] == " ")
        commas = sorted(i for i, p in self.pieces.items() if p[0] == ",")
        # digits[r]: tokens starting with a digit that keep a number begun with r digits <= 3.
        digits = [sorted(i for i, d in lead.items() if 0 < d <= 3 - r) for r in range(4)]
        self.start = digits[0]
        self.after_comma = sorted(digits[0] + spaced)
        self.after_digits = [
            sorted(digits[r] + spaced + commas + sorted(self.eos)) for r in range(4)
        ]

    def _trailing_digits(self, ids: Sequence[int]) -> int:
        run = 0
        for t in reversed(ids):
            piece = self.pieces.get(t, "")
            tail = len(piece) - len(piece.rstrip("0123456789"))
            run += tail
            if tail < len(piece) or not piece:
                break
        return min(run, 3)

    def allowed(self, ids: Any, width: int) -> list[int]:
        """Allowed next tokens for one row; ``width`` is where generation began."""
        new = ids[width:].tolist()
        if not new:
            return self.start
        last = new[-1]
        if last in self.eos:
            return self.after_digits[0]  # a finished row is padded by generate; moot
        piece = self.pieces.get(last, "0")
        if piece[-1] == " ":
            return self.start
        if piece[-1] == ",":
            return self.after_comma
        return self.after_digits[self._trailing_digits(new[-4:])]


def too_many_numbers(tok: Any, width: int, limits: Sequence[int], cut: set[int]) -> Any:
    """Stop a row once it has started more numbers than it may hold: it is rejected anyway, and
    the rest of the batch should not wait on it. Rows stopped here are added to ``cut``: generate
    pads them with the pad token, which may be end-of-turn, so the output alone cannot tell."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class TooMany(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            rows = input_ids[:, width:].tolist()
            done = [
                len(NUMBER.findall(tok.decode(row, skip_special_tokens=True))) > limit
                for row, limit in zip(rows, limits, strict=True)
            ]
            cut.update(i for i, d in enumerate(done) if d)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([TooMany()])


class Teacher:
    """A loaded teacher that continues batches of prompts under one system prompt."""

    def __init__(
        self,
        ref: str,
        device: str | None,
        dtype: str,
        constrain: bool,
        trim: bool,
        max_extra: int,
    ) -> None:
        """``constrain``: decode inside :class:`ListGrammar`; ``trim``: answers longer than
        asked will be cut by the caller, so a row may stop as soon as it has more than the
        asked count; else at ``max_extra`` more (it is rejected past that anyway)."""
        from emlab.models import load_model

        self.trim = trim
        self.max_extra = max_extra
        self.lm = load_model(ref, device=device, dtype=dtype)
        tok = self.lm.tokenizer
        if not getattr(tok, "chat_template", None):
            raise ValueError(f"teacher {ref!r}: tokenizer has no chat template")
        tok.padding_side = "left"
        eos = {tok.eos_token_id}
        cfg_eos = getattr(self.lm.model.generation_config, "eos_token_id", None)
        eos |= set(cfg_eos) if isinstance(cfg_eos, list) else {cfg_eos}
        self.eos = sorted(e for e in eos if e is not None)
        self.grammar: ListGrammar | None = None
        if constrain:
            pieces = tok.batch_decode([[i] for i in range(len(tok))])
            self.grammar = ListGrammar(pieces, self.eos)
            if not self.grammar.start:
                raise ValueError(f"teacher {ref!r}: vocabulary has no digit tokens to constrain to")

    def budget(self, count: int) -> int:
        """Tokens for the longest legal answer, plus end-of-turn: anything longer is rejected."""
        longest = ", ".join(["999"] * (count + self.max_extra))
        return len(self.lm.tokenizer.encode(longest, add_special_tokens=False)) + 2

    def continue_batch(
        self, prompts: Sequence[Prompt], system: str, temperature: float, seed: int
    ) -> list[tuple[str, bool]]:
        """(answer, stopped) per prompt; sampling is seeded without touching the global RNG."""
        import torch

        tok, model = self.lm.tokenizer, self.lm.model
        texts = [
            tok.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": p.text}],
                add_generation_prompt=True,
                tokenize=False,
            )
            for p in prompts
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.lm.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(self.budget(p.count) for p in prompts),
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": self.eos,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
        else:
            kwargs.update(do_sample=False)
        width = enc["input_ids"].shape[1]
        if self.grammar is not None:
            grammar = self.grammar
            kwargs["prefix_allowed_tokens_fn"] = lambda _b, ids: grammar.allowed(ids, width)
        limits = [p.count + (0 if self.trim else self.max_extra) for p in prompts]
        cut: set[int] = set()
        kwargs["stopping_criteria"] = too_many_numbers(tok, width, limits, cut)
        cuda = str(self.lm.device).startswith("cuda")
        with torch.random.fork_rng(devices=None if cuda else []), torch.no_grad():
            torch.manual_seed(seed)
            out = model.generate(**enc, **kwargs)
        results: list[tuple[str, bool]] = []
        for i, row in enumerate(out[:, width:].tolist()):
            end = next((j for j, t in enumerate(row) if t in self.eos), None)
            body = row if end is None else row[:end]
            stopped = end is not None and i not in cut
            results.append((tok.decode(body, skip_special_tokens=True).strip(), stopped))
        return results
