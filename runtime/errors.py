"""The runtime's errors: unreadable input, models that cannot be found or run, unusable devices."""
from __future__ import annotations

from pathlib import Path

from ..errors import SnnzooError


class EventFileError(SnnzooError, ValueError):
    """``EventFileError(path, reason)``; ``str()`` is the one line ``"PATH: reason"``.

    Raised by every reader and by event validation, so callers (the CLI) can print it as is.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(self.path, self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ModelError(SnnzooError):
    """A model that cannot be found, loaded or run; the message is one line for the CLI."""


class IntegrityError(ModelError):
    """A weights file whose sha256 differs from the one recorded for it (the file is refused)."""


class DeviceError(SnnzooError, RuntimeError):
    """The requested device is not usable."""
