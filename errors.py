"""The root of every snnzoo error.

``snnzoo.cli.main`` prints any :class:`SnnzooError` as one line, ``snnzoo: error: MESSAGE``,
and exits with its ``exit_code`` (1: a file or input failed; usage errors are click's, 2).
Subclasses keep a builtin base (``ValueError``, ``FileNotFoundError``...) where callers catch it.
"""
from __future__ import annotations


class SnnzooError(Exception):
    """A failure the user can act on; ``str()`` is the one-line message."""

    exit_code = 1
