"""The root of every snnzoo error, and the one format errors are printed in.

The ``snnzoo`` entry point (:mod:`snnzoo.cli`) prints any :class:`SnnzooError` a command raises
as one line, ``snnzoo: error: MESSAGE``, and exits with its ``exit_code``: 1 when what was asked
failed (a file, a model, an input), 2 for usage (:class:`UsageError`, and click's own).
Subclasses keep a builtin base (``ValueError``, ``FileNotFoundError``...) where callers catch it.
"""
from __future__ import annotations

import sys


class SnnzooError(Exception):
    """A failure the user can act on; ``str()`` is the message."""

    exit_code = 1


class UsageError(SnnzooError):
    """The command line asks for something that cannot be done (exit status 2)."""

    exit_code = 2


def one_line(text: object) -> str:
    """``text`` with its whitespace runs, newlines included, collapsed to single spaces."""
    return " ".join(str(text).split())


def error_line(message: object) -> str:
    """``snnzoo: error: MESSAGE`` on one line."""
    return f"snnzoo: error: {one_line(message)}"


def report(message: object) -> None:
    """Print :func:`error_line` on stderr: for a failed item of a run that goes on (one file of many)."""
    print(error_line(message), file=sys.stderr, flush=True)
