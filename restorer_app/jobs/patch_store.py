"""Finished patches of one job kept on disk, so a cancelled, crashed or killed job resumes
without computing any of them again.

Each patch is one ``.npy`` file written to a temporary name, fsync'ed and moved into place
with ``os.replace``: a reader sees a whole patch or none. The folder itself is not fsync'ed
after each rename: a rename lost in a power cut only means that patch is computed again, and
because restoration is deterministic the result is the same.

It also records the CPU thread count the patches were solved with (``threads.txt``), so a job
resumed in another front end, or after the thread preference changed, solves its remaining
batches with that count and ends with the same bits as an uninterrupted run.

The folder is tied to a key (input, mask, settings, model): if any of them changed since the
patches were stored, the old patches are dropped instead of being blended into a new image.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import numpy as np

KEY_FILE = "key.txt"
THREADS_FILE = "threads.txt"


class DirectoryPatchStore:
    def __init__(self, folder: str | os.PathLike, key: str = ""):
        self.folder = Path(folder)
        key_path = self.folder / KEY_FILE
        if self.folder.exists() and (not key_path.is_file() or key_path.read_text() != key):
            shutil.rmtree(self.folder)
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._write(key_path, key.encode())
        for leftover in self.folder.glob(".*.tmp"):  # from a writer killed mid-write
            leftover.unlink(missing_ok=True)

    @property
    def threads(self) -> int | None:
        """CPU threads the stored patches were solved with; the rest of the job uses the same."""
        try:
            return int((self.folder / THREADS_FILE).read_text()) or None
        except (OSError, ValueError):
            return None

    @threads.setter
    def threads(self, count: int) -> None:
        self._write(self.folder / THREADS_FILE, str(int(count)).encode())

    def _path(self, index: int) -> Path:
        return self.folder / f"patch-{index:07d}.npy"

    def get(self, index: int) -> np.ndarray | None:
        """The stored patch, or None when it is missing or unreadable (then it is recomputed)."""
        try:
            return np.load(self._path(index), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None

    def put(self, index: int, patch: np.ndarray) -> None:
        self._write(self._path(index), patch)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("patch-*.npy"))

    def _write(self, path: Path, data) -> None:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "xb") as f:
                if isinstance(data, bytes):
                    f.write(data)
                else:
                    np.save(f, np.ascontiguousarray(data), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
