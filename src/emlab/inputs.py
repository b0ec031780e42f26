"""Reading the data files a user hands emlab (chat JSONL, judgment CSV/JSONL), safely.

One place decides how such a file is opened, so every reader refuses the same things the same
way, with the file (and line) named: gzip is recognised by its magic bytes, not its name (a
``.gz`` that is plain text is read as text; one with the magic but broken data is an error),
decompression stops at a size cap (a gzip bomb of a few KB can expand to terabytes), and text
that is not UTF-8 names its line. A leaf module: data and judge stages both use it.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from emlab.errors import EmlabError

MAX_INPUT_BYTES = 4 << 30
"""Largest data file after decompression (4 GiB). The largest reference judgment file is ~60 MB
and the paper's training sets are a few MB; the cap only stops a gzip bomb from filling memory."""

GZIP_MAGIC = b"\x1f\x8b"


def read_input(path: str | Path, error: type[EmlabError], limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a data file, gunzipped if it is gzip (by content, whatever its name)."""
    path = Path(path)
    try:
        if path.is_dir():
            raise error(f"{path}: is a folder, not a data file")
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                data = f.read(limit + 1)
            else:
                try:
                    with gzip.GzipFile(fileobj=f) as z:
                        data = z.read(limit + 1)
                except (OSError, EOFError, zlib.error) as e:
                    raise error(f"{path}: broken gzip file: {e}") from None
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > limit:
        raise error(f"{path}: over {limit >> 20} MiB (uncompressed); not a data file emlab reads")
    return data


def decode_line(raw: bytes) -> str:
    """One line as text; ValueError says where the first byte that is not UTF-8 sits."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.start + 1]
        raise ValueError(f"not UTF-8 (byte {e.start} of the line: {bad!r})") from None
