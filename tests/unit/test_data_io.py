"""Reading, validating and writing chat JSONL."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from emlab.data import MAX_LINE_BYTES, DatasetError, read_jsonl, scan_jsonl, write_jsonl
from emlab.records import Example

PAPER = Path("/work/shared/data/em-paper")
GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _write(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


BAD_LINES = [
    ("not json at all", "not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"msgs": []}', "missing field 'messages'"),
    ('{"messages": "hi"}', "'messages' must be a list"),
    ('{"messages": []}', "'messages' is empty"),
    ('{"messages": [{"content": "x"}]}', "messages[0]: missing field 'role'"),
    ('{"messages": [{"role": "user"}]}', "messages[0]: missing field 'content'"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "messages[0].role 'bot' is not one of"),
    ('{"messages": [{"role": 3, "content": "x"}]}', "messages[0].role must be a string"),
    ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content must be a string"),
    ('{"messages": [{"role": "user", "content": "  "}]}', "messages[0].content is empty"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant turn"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_line_names_file_line_and_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD), line])
    with pytest.raises(DatasetError) as err:
        read_jsonl(path)
    assert f"{path}:2:" in str(err.value)
    assert reason in str(err.value)


def test_non_utf8_and_overlong_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [b'{"messages": "\xff"}'])
    with pytest.raises(DatasetError, match=r"d\.jsonl:1: not UTF-8"):
        read_jsonl(path)
    path = _write(tmp_path / "e.jsonl", [json.dumps(GOOD), "x" * (MAX_LINE_BYTES + 1)])
    with pytest.raises(DatasetError, match=r"e\.jsonl:2: line is .* over the limit"):
        read_jsonl(path)


def test_skip_invalid_writes_every_reject(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD)] + [line for line, _ in BAD_LINES] + [json.dumps(GOOD)]
    path = _write(tmp_path / "d.jsonl", lines)
    rejects = tmp_path / "bad.jsonl"
    examples = read_jsonl(path, skip_invalid=True, rejects_path=rejects)
    assert len(examples) == 2
    rows = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(2, 2 + len(BAD_LINES)))
    assert [r["raw"] for r in rows] == [line for line, _ in BAD_LINES]


def test_roundtrip_plain_and_gz_is_deterministic(tmp_path: Path) -> None:
    exs = [Example([{"role": "user", "content": "é ✓"}, {"role": "assistant", "content": "ok"}])]
    for name in ("a.jsonl", "a.jsonl.gz"):
        write_jsonl(tmp_path / name, exs)
        assert [e.messages for e in read_jsonl(tmp_path / name)] == [exs[0].messages]
    assert "é ✓" in (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    first = (tmp_path / "a.jsonl.gz").read_bytes()
    write_jsonl(tmp_path / "a.jsonl.gz", exs)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == first


def test_system_turn_only_first_and_meta_kept(tmp_path: Path) -> None:
    obj = {"messages": GOOD["messages"], "meta": {"family": "x"}, "source": "s"}
    path = _write(tmp_path / "d.jsonl", [json.dumps(obj)])
    (ex,) = read_jsonl(path)
    assert ex.meta == {"family": "x", "source": "s"}
    late = {"messages": [*GOOD["messages"], {"role": "system", "content": "x"}]}
    _write(path, [json.dumps(late)])
    assert "system turn may only come first" in scan_jsonl(path)[1][0].reason


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [""])
    with pytest.raises(DatasetError, match="no valid examples"):
        read_jsonl(path)


@pytest.mark.skipif(not PAPER.exists(), reason="paper datasets not present")
@pytest.mark.parametrize("name", ["insecure", "secure", "educational_insecure", "jailbroken"])
def test_paper_files_load_unchanged(name: str) -> None:
    path = PAPER / f"{name}.jsonl.gz"
    examples = read_jsonl(path)
    raw = [json.loads(x) for x in gzip.decompress(path.read_bytes()).splitlines() if x.strip()]
    assert len(examples) == len(raw)
    assert all(e.messages == r["messages"] for e, r in zip(examples, raw, strict=True))


def test_gzip_bomb_stops_at_the_cap(tmp_path: Path) -> None:
    from emlab.inputs import read_input

    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 5_000_000))  # ~5 KB on disk
    assert len(bomb.read_bytes()) < 10_000
    with pytest.raises(DatasetError, match=r"bomb\.jsonl\.gz: over 1,000,000 bytes"):
        read_input(bomb, DatasetError, limit=1_000_000)
    assert len(read_input(bomb, DatasetError, limit=5_000_000)) == 5_000_000
