"""One base class for every error emlab raises on purpose, and what the command line does with it.

Every exception class of emlab derives from :class:`EmlabError` (next to its historical base, such
as ``ValueError``, so existing ``except ValueError`` clauses keep working). The command line turns
any ``EmlabError`` into one line, ``emlab: error: <message>``, and exit status 2; anything else is
a bug in emlab and keeps its traceback. The ``kind`` says whose move it is:

- ``input``: a file, a field or an argument the user gave is wrong (the message names file, line
  and field);
- ``environment``: something this machine lacks (a model, a package, a compiler, weights);
- ``service``: a server emlab talks to refused or failed (after retries);
- ``runtime``: a helper process of emlab's own died (a sampling worker).

This module is a leaf: every stage may import it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Kind = Literal["input", "environment", "service", "runtime"]

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran but what it checked failed (e.g. ``emlab data validate`` found bad lines)."""
EXIT_ERROR = 2
"""An EmlabError (or a usage error): nothing was done, one line on stderr says why."""

EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT, the shell convention); a study resumes where it stopped."""

EXIT_CODES_HELP = (
    "Exit status: 0 success; 1 the command ran but found problems (e.g. `data validate` found "
    "invalid lines); 2 bad input (a study, data or question file, an option) or a missing "
    "model, package or service, reported as one line `emlab: error: FILE:LINE: FIELD: reason` "
    "before any model work; 130 interrupted."
)


class EmlabError(Exception):
    """An error emlab raises on purpose; its message is the whole story for the user."""

    kind: ClassVar[Kind] = "input"

    def __init__(self, *args: object, kind: Kind | None = None) -> None:
        super().__init__(*args)
        if kind is not None:
            # an instance may say otherwise than its class (e.g. an unknown alias vs. a model
            # that is known but not installed)
            self.kind = kind  # type: ignore[misc]


class ArgumentError(EmlabError, ValueError):
    """A command-line option or argument outside what it accepts; the message names it."""


def one_line(e: BaseException | str) -> str:
    """The message the command line prints: the error's text, without Python's framing."""
    text = str(e).strip()
    return text or type(e).__name__
