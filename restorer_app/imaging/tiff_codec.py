"""TIFF through tifffile: pages, 8/16-bit samples, ICC (tag 34675), XMP (tag 700),
resolution and EXIF tags."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile
from tifffile import PHOTOMETRIC, RESUNIT

from .errors import ImageError
from .limits import check_dimensions
from .metadata import append_tiff_sub_ifds, exif_from_tiff_ifd, tiff_exif_tags
from .raster import Raster

_ICC, _XMP, _EXIF_IFD = 34675, 700, 34665
_COLOUR_CHANNELS = {PHOTOMETRIC.MINISBLACK: 1, PHOTOMETRIC.MINISWHITE: 1, PHOTOMETRIC.RGB: 3,
                    PHOTOMETRIC.PALETTE: 1}
_BIGTIFF_BYTES = 2**32 - 2**25  # tifffile switches to BigTIFF above this


def read_tiff(path: Path, limit: int, page: int) -> Raster:
    with tifffile.TiffFile(path) as tif:
        count = len(tif.pages)
        if not count:
            raise ImageError(path, "damaged TIFF file (no readable image in it)")
        if not 0 <= page < count:
            raise ImageError(path, f"page {page} does not exist; the file has {count} page(s)")
        p = tif.pages[page]
        check_dimensions(path, p.imagewidth, p.imagelength, limit)
        _check_supported(path, p, tif.filehandle.size)
        samples = _samples(p)
        tags = p.tags
        exif = None
        if not tif.is_bigtiff:
            exif = exif_from_tiff_ifd(tif.filehandle, p.offset, tif.byteorder)
        return Raster(samples=samples, icc_profile=_bytes(tags.valueof(_ICC)),
                      exif=exif, xmp=_bytes(tags.valueof(_XMP)), dpi=_dpi(p))


def _check_supported(path: Path, p, file_size: int) -> None:
    if p.photometric == PHOTOMETRIC.SEPARATED:
        raise ImageError(path, "CMYK images are not supported; convert the scan to RGB first")
    if p.photometric not in _COLOUR_CHANNELS:
        raise ImageError(path, f"unsupported colour model {p.photometric.name}")
    if p.dtype is None or (p.dtype.kind, p.dtype.itemsize) not in {("u", 1), ("u", 2), ("b", 1)}:
        raise ImageError(path, f"unsupported {p.bitspersample}-bit "
                               f"{tifffile.SAMPLEFORMAT(p.sampleformat).name.lower()} samples "
                               "(only 8- and 16-bit integer images)")
    if p.axes not in ("YX", "YXS", "SYX"):
        raise ImageError(path, f"unsupported image layout {p.axes!r} (expected a flat 2-D image)")
    ends = [o + n for o, n in zip(p.dataoffsets, p.databytecounts) if n]
    if not ends or max(ends) > file_size:
        raise ImageError(path, "file is truncated (image data ends past the end of the file)")


def _samples(p) -> np.ndarray:
    data = p.asarray()
    if p.axes == "SYX":
        data = np.moveaxis(data, 0, -1)
    elif p.axes == "YX":
        data = data[:, :, None]
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    if p.photometric == PHOTOMETRIC.PALETTE:
        cmap = p.colormap
        cmap = cmap if cmap.max() <= 255 else np.rint(cmap / 257.0)
        return np.ascontiguousarray(cmap.astype(np.uint8).T[data[:, :, 0]])
    colour = _COLOUR_CHANNELS[p.photometric]
    data = data[:, :, : colour + 1]  # keep the first extra sample as alpha, drop others
    if p.photometric == PHOTOMETRIC.MINISWHITE:
        data = data.copy()
        data[:, :, 0] = np.iinfo(data.dtype).max - data[:, :, 0]
    if data.shape[2] > colour and p.extrasamples and p.extrasamples[0] == 1:
        data = _unpremultiply(data)
    return np.ascontiguousarray(data)


def _unpremultiply(data: np.ndarray) -> np.ndarray:
    """Associated (premultiplied) alpha -> straight alpha, as the engine expects."""
    top = np.iinfo(data.dtype).max
    alpha = data[:, :, -1:].astype(np.float64)
    colour = np.where(alpha > 0, data[:, :, :-1] * (top / np.maximum(alpha, 1)), 0)
    out = data.copy()
    out[:, :, :-1] = np.clip(np.rint(colour), 0, top)
    return out


def _bytes(value) -> bytes | None:
    if value is None:
        return None
    data = value.tobytes() if isinstance(value, np.ndarray) else bytes(value)
    return data or None


def _dpi(p) -> tuple[float, float] | None:
    x, y = p.tags.valueof(282), p.tags.valueof(283)
    unit = p.tags.valueof(296, RESUNIT.INCH)
    if not x or not y or not x[1] or not y[1] or unit not in (RESUNIT.INCH, RESUNIT.CENTIMETER):
        return None
    scale = 2.54 if unit == RESUNIT.CENTIMETER else 1.0
    return (round(x[0] / x[1] * scale, 4), round(y[0] / y[1] * scale, 4))


def write_tiff(f: BinaryIO, raster: Raster) -> None:
    """Deflate-compressed TIFF with horizontal predictor (lossless), unassociated alpha."""
    samples = raster.samples
    channels = samples.shape[2]
    bigtiff = samples.nbytes > _BIGTIFF_BYTES
    # sub-IFD linking (metadata.append_tiff_sub_ifds) is written for classic TIFF only
    extratags, sub_ifds = tiff_exif_tags(raster.exif, sub_ifds=not bigtiff)
    if raster.xmp:
        extratags.append((_XMP, "B", len(raster.xmp), raster.xmp, True))
    tifffile.imwrite(
        f,
        samples[:, :, 0] if channels == 1 else samples,
        bigtiff=bigtiff,
        photometric="rgb" if channels >= 3 else "minisblack",
        planarconfig="contig",
        extrasamples=("unassalpha",) if channels in (2, 4) else None,
        compression="zlib",
        predictor=True,
        iccprofile=raster.icc_profile,
        resolution=raster.dpi,
        resolutionunit="inch" if raster.dpi else None,
        metadata=None,
        software=False,
        extratags=extratags,
    )
    append_tiff_sub_ifds(f, sub_ifds)
