"""PNG and JPEG through Pillow (header, metadata, 8-bit pixels) and imagecodecs (16-bit PNG
pixels and all PNG encoding: Pillow has no 16-bit RGB mode and would silently drop to 8 bits).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import imagecodecs
import numpy as np
from PIL import Image

from .errors import ImageError
from .limits import check_dimensions
from .metadata import EXIF_PREFIX, insert_png_chunks, normalize_exif, png_metadata_chunks
from .raster import Raster

# Our own guard (limits.py) runs on every format before decoding and is configurable;
# Pillow's fixed global one would refuse images the user allowed.
Image.MAX_IMAGE_PIXELS = None

JPEG_QUALITY = 95

_MODES = {"1": "L", "L": "L", "LA": "LA", "La": "LA", "PA": "RGBA", "RGB": "RGB",
          "RGBA": "RGBA", "RGBa": "RGBA", "P": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}
_WITH_ALPHA = {"L": "LA", "RGB": "RGBA"}


def read_pillow(path: Path, limit: int) -> Raster:
    """Read a PNG or JPEG file (format already checked by its signature)."""
    with Image.open(path, formats=["PNG", "JPEG"]) as im:
        check_dimensions(path, im.width, im.height, limit)
        if im.mode == "CMYK":
            raise ImageError(path, "CMYK images are not supported; convert the scan to RGB first")
        im.load()  # also reads metadata chunks stored after the pixel data
        if im.format == "PNG" and _png_bit_depth(path) == 16:
            # Pillow's decode above was 8-bit for colour; decode again at full depth
            samples = imagecodecs.png_decode(path.read_bytes())
        else:
            samples = _pillow_samples(path, im)
        info = im.info
    if samples.ndim == 2:
        samples = samples[:, :, None]
    xmp = info.get("xmp")
    dpi = info.get("dpi")
    return Raster(
        samples=np.ascontiguousarray(samples),
        icc_profile=info.get("icc_profile") or None,
        exif=normalize_exif(info.get("exif")),
        xmp=(xmp.encode("utf-8") if isinstance(xmp, str) else xmp) or None,
        dpi=(round(float(dpi[0]), 2), round(float(dpi[1]), 2)) if dpi and all(dpi) else None,
    )


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(25)  # signature, IHDR length and type, width, height, bit depth
    return header[24]


def _pillow_samples(path: Path, im: Image.Image) -> np.ndarray:
    target = _MODES.get(im.mode)
    if target is None:
        raise ImageError(path, f"unsupported pixel format {im.mode!r}")
    if "transparency" in im.info and target in _WITH_ALPHA:
        target = _WITH_ALPHA[target]
    return np.asarray(im if im.mode == target else im.convert(target))


def write_png(f: BinaryIO, raster: Raster) -> None:
    samples = raster.samples
    png = imagecodecs.png_encode(samples[:, :, 0] if samples.shape[2] == 1 else samples, level=6)
    chunks = png_metadata_chunks(raster.icc_profile, raster.exif, raster.xmp, raster.dpi)
    f.write(insert_png_chunks(png, chunks))


def write_jpeg(f: BinaryIO, raster: Raster) -> None:
    """8-bit baseline JPEG, quality 95 without chroma subsampling (JPEG has no 16-bit mode)."""
    samples = raster.samples
    im = Image.fromarray(samples[:, :, 0] if samples.shape[2] == 1 else samples)
    options = {"quality": JPEG_QUALITY, "subsampling": 0}
    if raster.icc_profile:
        options["icc_profile"] = raster.icc_profile
    if raster.exif:
        options["exif"] = EXIF_PREFIX + raster.exif
    if raster.xmp:
        options["xmp"] = raster.xmp
    if raster.dpi:
        options["dpi"] = tuple(round(v) for v in raster.dpi)
    im.save(f, "JPEG", **options)
