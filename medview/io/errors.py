"""The one error type a user can cause by opening a file."""

from __future__ import annotations

from pathlib import Path


class LoadError(Exception):
    """A file or series could not be read. The message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
