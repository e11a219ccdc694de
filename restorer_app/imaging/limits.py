"""Decompression-bomb guard: reject absurd header dimensions before any pixel is decoded."""

from __future__ import annotations

import os

from .errors import ImageError

DEFAULT_MAX_PIXELS = 200_000_000
ENV_MAX_PIXELS = "RESTORER_MAX_PIXELS"


def pixel_limit(max_pixels: int | None = None) -> int:
    """The limit in force: the argument, else $RESTORER_MAX_PIXELS, else 200 megapixels."""
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if not env:
        return DEFAULT_MAX_PIXELS
    try:
        return int(float(env))
    except ValueError:
        raise ImageError(ENV_MAX_PIXELS, f"must be a number of pixels, not {env!r}") from None


def check_dimensions(path, width: int, height: int, limit: int) -> None:
    """Raise ImageError for empty or oversized dimensions read from a file header."""
    if width <= 0 or height <= 0:
        raise ImageError(path, f"image has no pixels ({width}x{height})")
    if width * height > limit:
        raise ImageError(
            path,
            f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the "
            f"limit of {limit / 1e6:.1f} megapixels (set {ENV_MAX_PIXELS} to allow larger)",
        )
