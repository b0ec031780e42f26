"""Run directory and content-addressed cache.

Everything a study computes is keyed by a content hash of what determines it and stored here, so
re-running skips finished work and a killed run loses at most the request in flight. Records go
into SQLite in WAL mode (safe for several processes on one run directory); larger artefacts
(datasets, adapters) go into ``artifacts/<kind>/<key>/`` and appear only once complete, by an
atomic rename of a finished temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emlab.errors import ArgumentError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS logs (
    stream TEXT NOT NULL,
    step INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (stream, step)
);
"""

DONE_MARKER = ".done"
_HOST = socket.gethostname().replace("@", "_")


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks, sends nothing)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def check_output(path: str | os.PathLike[str], what: str, folder: bool = False) -> Path:
    """Refuse an output path that cannot be written, before the work that would fill it.

    A command that trains for an hour and then finds its ``-o`` is an existing file loses the
    hour; this check costs a stat. ``folder`` says whether the output is a folder or a file.
    """
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise ArgumentError(f"{what}: {p} exists and is not a folder")
    if not folder and p.is_dir():
        raise ArgumentError(f"{what}: {p} is a folder; give a file name")
    parent = next((a for a in p.absolute().parents if a.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ArgumentError(f"{what}: {parent} is a file, so {p} cannot be created")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ArgumentError(f"{what}: {parent} is not writable")
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a file so that readers see the old content or the new, never half of it."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """A run directory: ``cache.sqlite`` (records, logs) plus ``artifacts/``.

    One connection per thread; writes are single statements or short transactions, so a
    ``kill -9`` can only lose the statement in flight, which SQLite rolls back.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "cache.sqlite"
        self._local = threading.local()
        with self._conn() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.executescript(_SCHEMA)
        self.clean_stale_tmp()

    # -- temporary folders --------------------------------------------------------------------
    def _tmp_name(self, kind: str, key: str) -> str:
        # Host and pid in the name say who owns a temporary folder, so a later run can tell the
        # leftovers of a killed process from the work of a live one sharing this run directory.
        return f"{kind}-{key}-{uuid.uuid4().hex[:8]}@{_HOST}@{os.getpid()}"

    def clean_stale_tmp(self) -> list[Path]:
        """Remove temporary folders whose process (on this host) is gone; return them.

        A killed run leaves its half-built artefact in ``tmp/``; nothing else would ever remove
        it. Only folders this host's dead processes own are touched: a live process (another run
        or shard on this directory) keeps its folder, and so does any other host's on a shared
        file system, which this host cannot ask about.
        """
        removed = []
        tmp_root = self.root / "tmp"
        for d in sorted(tmp_root.glob("*@*@*")) if tmp_root.is_dir() else []:
            _, host, pid = d.name.rsplit("@", 2)
            if host == _HOST and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        return removed

    # -- connection -------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        yield self._connection()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- records ----------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = (
            self._connection()
            .execute("SELECT value FROM records WHERE kind=? AND key=?", (kind, key))
            .fetchone()
        )
        return None if row is None else json.loads(row[0])

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Fetch many records at once (chunked: SQLite limits bound parameters)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        conn = self._connection()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT key, value FROM records WHERE kind=? AND key IN ({marks})",
                (kind, *chunk),
            )
            out.update((k, json.loads(v)) for k, v in rows)
        return out

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Insert or replace one record (a retried failure replaces its error record)."""
        self.put_many(kind, [(key, value)])

    def put_many(self, kind: str, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        rows = [
            (kind, k, json.dumps(v, ensure_ascii=False, sort_keys=True), time.time())
            for k, v in items
        ]
        if not rows:
            return
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO records(kind, key, value, created) VALUES (?,?,?,?)", rows
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, kind: str) -> int:
        row = (
            self._connection()
            .execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,))
            .fetchone()
        )
        return int(row[0])

    def all(self, kind: str) -> list[dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT value FROM records WHERE kind=? ORDER BY created, key", (kind,)
        )
        return [json.loads(v) for (v,) in rows]

    # -- step logs (training curves) ----------------------------------------------------------
    def log(self, stream: str, step: int, value: dict[str, Any]) -> None:
        self._connection().execute(
            "INSERT OR REPLACE INTO logs(stream, step, value) VALUES (?,?,?)",
            (stream, step, json.dumps(value, sort_keys=True)),
        )

    def logs(self, stream: str) -> list[dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT step, value FROM logs WHERE stream=? ORDER BY step", (stream,)
        )
        return [{"step": s, **json.loads(v)} for s, v in rows]

    # -- artefacts ----------------------------------------------------------------------------
    def artifact_dir(self, kind: str, key: str) -> Path:
        return self.root / "artifacts" / kind / key

    def has_artifact(self, kind: str, key: str) -> bool:
        return (self.artifact_dir(kind, key) / DONE_MARKER).exists()

    def work_dir(self, kind: str, key: str) -> Path:
        """A scratch folder that survives a kill (e.g. training checkpoints for resume)."""
        d = self.root / "work" / kind / key
        d.mkdir(parents=True, exist_ok=True)
        return d

    def write_artifact(self, kind: str, key: str, writer: Callable[[Path], None]) -> Path:
        """Build an artefact in a temporary folder, then publish it atomically.

        If another process published the same key meanwhile, its copy wins (same inputs, same
        content) and ours is discarded.
        """
        final = self.artifact_dir(kind, key)
        if self.has_artifact(kind, key):
            return final
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        tmp = tmp_root / self._tmp_name(kind, key)
        tmp.mkdir()
        try:
            writer(tmp)
            (tmp / DONE_MARKER).write_text("")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists() and not self.has_artifact(kind, key):
                shutil.rmtree(final)  # a half-published leftover from a crash
            try:
                os.rename(tmp, final)
            except OSError:
                if not self.has_artifact(kind, key):
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final
