"""Atomic file creation: a reader never sees a half-written output, and a crash never
leaves one behind. Data goes to a temporary file in the destination folder, is flushed and
fsync'ed, then moved into place in one step."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import ImageError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file (readable, writable, seekable) that becomes ``path`` on success.

    Without ``overwrite`` an existing ``path`` is refused, and the final step uses a hard
    link so a file created meanwhile by someone else is never replaced.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise ImageError(path, "output file already exists (choose overwrite to replace it)")
    folder = path.parent
    # named by hand rather than tempfile.mkstemp, whose 0600 mode would ignore the umask
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.part"
    try:
        f = open(tmp, "x+b")
    except OSError as exc:
        raise ImageError(path, f"cannot create a file in {folder}: {exc.strerror or exc}") from None
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_folder(folder)


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile, unlike os.replace
    except FileExistsError:
        raise ImageError(path, "output file already exists (choose overwrite to replace it)") from None
    except OSError:  # file system without hard links
        if path.exists():
            raise ImageError(path, "output file already exists (choose overwrite to replace it)") from None
        os.replace(tmp, path)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; folders cannot be opened on Windows)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
