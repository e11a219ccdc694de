"""The integer samples and metadata a codec reads or writes, before the float conversion
in io.py. Keeping codecs on integers makes lossless round trips exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class Raster:
    """``samples``: uint8 or uint16 HxWxC, C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.

    ``exif`` is the TIFF-structured EXIF block (starting ``II*`` or ``MM*``, no ``Exif\\0\\0``
    prefix); ``dpi`` is (x, y) pixels per inch.
    """

    samples: np.ndarray
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None

    @property
    def has_alpha(self) -> bool:
        return self.samples.shape[2] in (2, 4)

    @property
    def bit_depth(self) -> int:
        return 16 if self.samples.dtype == np.uint16 else 8
