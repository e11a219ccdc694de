"""One-line messages for errors shown to the user: never a traceback."""

from __future__ import annotations

from restorer_app.flow.weights import WeightsError
from restorer_app.imaging.errors import ImageError


def short_error(exc: BaseException, path=None) -> str:
    """What went wrong, naming the file when known."""
    if isinstance(exc, (ImageError, WeightsError)):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename or path
        return f"{where}: {exc.strerror or exc}" if where else str(exc.strerror or exc)
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if not isinstance(exc, ValueError):
        text = f"{type(exc).__name__}: {text}"
    return f"{path}: {text}" if path else text
