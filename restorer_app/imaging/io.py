"""Read scans into engine arrays and write restored derivatives that keep the original's
bit depth, alpha, ICC profile, EXIF, XMP and resolution. Every failure with a file becomes
an ImageError with a one-line reason; the input file is only ever opened for reading."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .atomic import atomic_output
from .errors import ImageError
from .limits import pixel_limit
from .pillow_codec import read_pillow, write_jpeg, write_png
from .raster import Raster
from .tiff_codec import read_tiff, write_tiff
from .xmp import InvalidXmp, add_history

log = logging.getLogger(__name__)

_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF", b"II+\x00": "TIFF", b"MM\x00+": "TIFF"}
_EXTENSIONS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_WRITERS = {"PNG": write_png, "JPEG": write_jpeg, "TIFF": write_tiff}


@dataclass(eq=False)
class ScanImage:
    """A decoded scan. ``pixels``: float32 HxWxC in [0, 1], C = 1 (grey) or 3 (RGB);
    ``alpha``: float32 HxW or None; ``bit_depth``: 8 or 16, the depth stored in the file;
    ``exif``: TIFF-structured EXIF block without the ``Exif\\0\\0`` prefix;
    ``dpi``: (x, y) pixels per inch or None; ``format``: "PNG", "JPEG" or "TIFF"."""

    path: Path | None  # None for an image made in memory
    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    icc_profile: bytes | None
    exif: bytes | None
    xmp: bytes | None
    dpi: tuple[float, float] | None
    format: str


def read_image(path: str | os.PathLike, max_pixels: int | None = None, page: int = 0) -> ScanImage:
    """Read a PNG, JPEG or TIFF (``page`` picks a page of a multi-page TIFF).

    Header dimensions over ``max_pixels`` (default $RESTORER_MAX_PIXELS, else 200 megapixels)
    are refused before decoding.
    """
    path = Path(path)
    limit = pixel_limit(max_pixels)
    fmt = _sniff(path)
    if page != 0 and fmt != "TIFF":
        raise ImageError(path, f"page {page} requested, but a {fmt} file has only one page")
    try:
        raster = read_tiff(path, limit, page) if fmt == "TIFF" else read_pillow(path, limit)
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(path, "not enough memory to decode this image") from None
    except Exception as exc:  # any decoder failure is a bad file, reported in one line
        raise ImageError(path, _decode_problem(fmt, exc)) from exc
    samples = raster.samples
    scale = np.float32(1.0 / np.iinfo(samples.dtype).max)
    colour = 1 if samples.shape[2] in (1, 2) else 3
    pixels = _scaled(samples[:, :, :colour], scale)
    alpha = _scaled(samples[:, :, colour], scale) if raster.has_alpha else None
    return ScanImage(path=path, pixels=pixels, alpha=alpha, bit_depth=raster.bit_depth,
                     icc_profile=raster.icc_profile, exif=raster.exif, xmp=raster.xmp,
                     dpi=raster.dpi, format=fmt)


def write_image(path: str | os.PathLike, pixels: np.ndarray, like: ScanImage,
                overwrite: bool = False, xmp_history: dict | None = None) -> None:
    """Write ``pixels`` (float HxWxC or HxW in [0, 1]) atomically as a derivative of ``like``.

    The format follows the extension (.png, .jpg/.jpeg, .tif/.tiff). Bit depth, alpha, ICC
    profile, EXIF, XMP and resolution come from ``like``; the one reduction is 16-bit to
    JPEG, which is written in 8 bits (JPEG has no 16-bit mode), and JPEG cannot hold alpha,
    so that combination is refused. ``xmp_history`` (keys: action, when, software,
    parameters, changed, instance_id) is appended to the XMP history.
    """
    path = Path(path)
    fmt = check_output_path(path, like.path, overwrite)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be HxW, HxWx1 or HxWx3, not {pixels.shape}")
    planes = [pixels]
    if like.alpha is not None:
        if fmt == "JPEG":
            raise ImageError(path, "JPEG cannot store the transparency (alpha) of this image; "
                                   "save as .png or .tif")
        if like.alpha.shape != pixels.shape[:2]:
            raise ValueError(f"alpha is {like.alpha.shape} but pixels are {pixels.shape[:2]}")
        planes.append(like.alpha[:, :, None])
    depth = 8 if fmt == "JPEG" else like.bit_depth
    xmp = like.xmp
    if xmp_history:
        try:
            xmp = add_history(like.xmp, xmp_history)
        except InvalidXmp as exc:  # keep the archive's metadata as it is rather than lose it
            log.warning("%s: XMP history not added: %s", path, exc)
    raster = Raster(samples=_to_integers(planes, depth), icc_profile=like.icc_profile,
                    exif=like.exif, xmp=xmp, dpi=like.dpi)
    try:
        with atomic_output(path, overwrite) as f:
            _WRITERS[fmt](f, raster)
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(path, f"cannot write {fmt} file: {exc}") from exc


def read_mask(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """Read a damage mask (any image Pillow reads, taken as greyscale): bool HxW,
    True where the mask is nonzero. Its size must equal ``shape[:2]`` of the image."""
    path = Path(path)
    _check_file(path)
    height, width = shape[:2]
    try:
        with Image.open(path) as im:
            if im.size != (width, height):
                raise ImageError(path, f"mask is {im.width}x{im.height} pixels but the image is "
                                       f"{width}x{height}; they must be the same size")
            grey = im if im.mode in ("I", "I;16", "I;16B", "I;16L", "F", "L") else im.convert("L")
            return np.asarray(grey) != 0
    except ImageError:
        raise
    except MemoryError:
        raise ImageError(path, "not enough memory to read this mask") from None
    except Exception as exc:
        raise ImageError(path, f"cannot read mask: {_first_line(exc)}") from exc


#: Rows converted at once between floats and integers: whole-scan temporaries of a 50-megapixel
#: 16-bit scan would cost GBs (each float copy of it is 600 MB).
BAND_ROWS = 256


def _scaled(samples: np.ndarray, scale: np.float32) -> np.ndarray:
    """Integer samples as float32 x ``scale``, without a second whole-scan float copy."""
    pixels = samples.astype(np.float32)
    pixels *= scale
    return pixels


def _to_integers(planes: list[np.ndarray], depth: int) -> np.ndarray:
    """The planes (float HxWxCi in [0, 1]) side by side as the file's integer levels, band by band."""
    top = np.float32(255 if depth == 8 else 65535)
    height, width = planes[0].shape[:2]
    channels = sum(plane.shape[2] for plane in planes)
    samples = np.empty((height, width, channels), np.uint8 if depth == 8 else np.uint16)
    for y in range(0, height, BAND_ROWS):
        band = np.concatenate([np.asarray(plane[y : y + BAND_ROWS], dtype=np.float32) for plane in planes], axis=2)
        if not np.isfinite(band).all():
            raise ValueError("pixels contain NaN or infinite values")
        np.clip(band, 0.0, 1.0, out=band)
        band *= top
        samples[y : y + BAND_ROWS] = np.rint(band, out=band)
    return samples


def check_output_path(path: Path, source: Path | None, overwrite: bool = False) -> str:
    """Refuse an output before any work is spent on it; returns the format its extension names.

    The write itself re-checks existence atomically (``atomic_output``); this early check is
    what lets the command line and the queue refuse a job in one line instead of after hours.
    """
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(path, f"cannot write {path.suffix or 'files without an extension'}; "
                               "use .png, .jpg, .jpeg, .tif or .tiff")
    _refuse_input(path, source)
    if not overwrite and path.exists():
        raise ImageError(path, "output already exists (use --overwrite to replace it)")
    if not path.parent.is_dir():
        raise ImageError(path, "output folder does not exist")
    return fmt


def _refuse_input(output: Path, source: Path | None) -> None:
    """Never let a derivative replace its original (also through symlinks or hard links)."""
    if source is None:
        return
    same = os.path.normcase(os.path.realpath(output)) == os.path.normcase(os.path.realpath(source))
    if not same and output.exists() and Path(source).exists():
        same = os.path.samefile(output, source)
    if same:
        raise ImageError(output, "output would overwrite the input (originals are never modified); "
                                 "choose another output name")


def _check_file(path: Path) -> bytes:
    """The file's first bytes, or an ImageError saying why it cannot be read at all."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        raise ImageError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageError(path, "is a folder, not an image file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except OSError as exc:
        raise ImageError(path, f"cannot open file: {exc.strerror or exc}") from None
    if not head:
        raise ImageError(path, "file is empty")
    return head


def _sniff(path: Path) -> str:
    head = _check_file(path)
    for signature, fmt in _SIGNATURES.items():
        if head.startswith(signature):
            return fmt
    kind = "a text file" if _looks_like_text(head) else "an unrecognised file type"
    raise ImageError(path, f"not a PNG, JPEG or TIFF image (it is {kind})")


def _looks_like_text(head: bytes) -> bool:
    text = head.decode("utf-8", "ignore")
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


def _decode_problem(fmt: str, exc: Exception) -> str:
    text = _first_line(exc)
    if isinstance(exc, UnidentifiedImageError):
        return f"damaged {fmt} file (its header cannot be read)"
    if isinstance(exc, (EOFError, struct.error, zlib.error)) or "truncat" in text.lower():
        return f"{fmt} file is truncated or damaged ({text})"
    return f"cannot decode {fmt} file: {text}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
