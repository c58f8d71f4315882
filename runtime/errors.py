"""The one error for unreadable or invalid event input."""
from __future__ import annotations

from pathlib import Path


class EventFileError(ValueError):
    """``EventFileError(path, reason)``; ``str()`` is the one line ``"PATH: reason"``.

    Raised by every reader and by event validation, so callers (the CLI) can print it as is.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(self.path, self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
