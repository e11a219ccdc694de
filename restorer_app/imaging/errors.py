"""The one exception the imaging package raises for files it cannot read or write.

Callers (CLI, job runner, GUI) show ``str(error)`` to the user as is, so ``why`` is a short,
human, one-line reason and the path says which file it is about.
"""

from __future__ import annotations

import os


class ImageError(Exception):
    """A file could not be read or written; ``str(e) == f"{path}: {why}"``."""

    def __init__(self, path: str | os.PathLike, why: str):
        self.path = os.fspath(path)
        self.why = " ".join(str(why).split())  # always one line
        super().__init__(f"{self.path}: {self.why}")
