"""Chat-JSONL reading, validation and writing.

Training sets are the OpenAI chat format, one ``{"messages": [...]}`` object a line, optionally
gzipped (the paper's files are). Validation is strict and names the file and line of every
problem, because a malformed line found after an hour of fine-tuning costs the hour. With
``skip_invalid`` bad lines are moved to a rejects file and counted, never silently dropped.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emlab.config import MAX_TEXT
from emlab.data.pairs import DatasetError
from emlab.inputs import decode_line, read_input
from emlab.records import ROLES, Example, Message
from emlab.store import atomic_write_bytes

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20
"""Longest accepted line (1 MiB). The paper's longest is under 4 KB; a longer one is a broken file
(e.g. a whole dataset on one line), and would not fit a training context anyway."""


@dataclass(frozen=True)
class Reject:
    """A line that failed validation: where, why, and its raw text (for the rejects file)."""

    line: int
    reason: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason, "raw": self.raw}


def _check_messages(obj: Any) -> list[Message]:
    """Validate one parsed line; raise ValueError with the field at fault."""
    if not isinstance(obj, dict):
        raise ValueError(f"a line must be a JSON object, got {type(obj).__name__}")
    if "messages" not in obj:
        raise ValueError("missing field 'messages'")
    msgs = obj["messages"]
    if not isinstance(msgs, list):
        raise ValueError(f"'messages' must be a list, got {type(msgs).__name__}")
    if not msgs:
        raise ValueError("'messages' is empty")
    out: list[Message] = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ValueError(f"{where} must be an object, got {type(m).__name__}")
        if "role" not in m:
            raise ValueError(f"{where}: missing field 'role'")
        if "content" not in m:
            raise ValueError(f"{where}: missing field 'content'")
        role, content = m["role"], m["content"]
        if not isinstance(role, str):
            raise ValueError(f"{where}.role must be a string, got {type(role).__name__}")
        if role not in ROLES:
            raise ValueError(f"{where}.role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"{where}.content must be a string, got {type(content).__name__}")
        if not content.strip():
            raise ValueError(f"{where}.content is empty")
        if len(content) > MAX_TEXT:
            raise ValueError(f"{where}.content is {len(content):,} characters, over {MAX_TEXT:,}")
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        raise ValueError("no assistant turn: nothing to train on")
    if any(m["role"] == "system" for m in out[1:]):
        raise ValueError("a system turn may only come first")
    return out


def _parse_line(raw: bytes) -> Example:
    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line is {len(raw)} bytes, over the limit of {MAX_LINE_BYTES}")
    text = decode_line(raw)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e.msg} at column {e.colno}") from e
    messages = _check_messages(obj)
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError(f"'meta' must be an object, got {type(meta).__name__}")
    # Unknown top-level fields are provenance, not noise: keep them rather than drop them.
    extra = {k: v for k, v in obj.items() if k not in ("messages", "meta")}
    return Example(messages=messages, meta={**extra, **meta})


def scan_jsonl(path: str | Path) -> tuple[list[Example], list[Reject]]:
    """Parse every line; return the valid examples and the rejected lines (blank lines skipped)."""
    path = Path(path)
    data = read_input(path, DatasetError)
    examples: list[Example] = []
    rejects: list[Reject] = []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            examples.append(_parse_line(raw.rstrip(b"\r")))
        except ValueError as e:
            shown = raw[:2000].decode("utf-8", errors="backslashreplace")
            rejects.append(Reject(lineno, str(e), shown))
    return examples, rejects


def default_rejects_path(path: str | Path) -> Path:
    p = Path(path)
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return p.with_name(name + ".rejects.jsonl")


def read_jsonl(
    path: str | Path, skip_invalid: bool = False, rejects_path: Path | None = None
) -> list[Example]:
    """Read a chat-JSONL file (plain or gzipped) into Examples.

    Strict by default: the first bad line raises DatasetError with ``file:line: reason``. With
    ``skip_invalid`` the bad lines go to ``rejects_path`` (default ``<file>.rejects.jsonl``) and a
    warning says how many; the valid ones are returned.
    """
    path = Path(path)
    examples, rejects = scan_jsonl(path)
    if rejects and not skip_invalid:
        first = rejects[0]
        more = f" (and {len(rejects) - 1} more bad lines)" if len(rejects) > 1 else ""
        raise DatasetError(f"{path}:{first.line}: {first.reason}{more}")
    if rejects:
        out = rejects_path or default_rejects_path(path)
        text = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rejects)
        atomic_write_bytes(out, text.encode("utf-8"))
        log.warning("%s: skipped %d invalid lines, written to %s", path, len(rejects), out)
    if not examples:
        raise DatasetError(f"{path}: no valid examples")
    return examples


def dumps_jsonl(examples: Iterable[Example]) -> bytes:
    """The exact bytes ``write_jsonl`` writes (before gzip): what the card's hash is taken of."""
    lines = [
        json.dumps({"messages": list(ex.messages)}, ensure_ascii=False) + "\n" for ex in examples
    ]
    return "".join(lines).encode("utf-8")


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> None:
    """Write examples as chat JSONL (gzipped if the name ends in .gz), atomically.

    Only ``messages`` is written, so any fine-tuning tool reads the file; provenance lives in the
    dataset card next to it. Gzip output has a zero timestamp so the same data gives the same bytes.
    """
    path = Path(path)
    data = dumps_jsonl(examples)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
