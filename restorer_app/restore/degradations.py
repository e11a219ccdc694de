"""The standard synthetic degradations (DESIGN.md, "Standard degradations for benchmarks").

Tests, benchmarks and ``restorer selftest`` all damage clean images through this one module, so a
number reported anywhere means the same damage. Images are float32 HxWxC in [0, 1]; masks are bool
HxW with True = damaged. Every random choice comes from a numpy Generator (or an int seed), so the
same seed gives the same damage bit for bit.

Choices, stated once:
- Noise is added on the 0..255 scale, then clipped to [0, 1] and rounded to 8-bit levels, as a
  real 8-bit file would store it (so the measured sigma is a little below nominal at 0 and 1).
- JPEG goes through Pillow with its default 4:2:0 chroma subsampling, decoded back to float.
- Hole masks are 10x10 squares at uniform random positions, fully inside the image and allowed to
  overlap, added until at least ``coverage`` of the pixels are damaged.
- "multi" applies noise sigma 15, then JPEG 40, then the holes: the known pixels carry exactly the
  noise + JPEG damage and the damaged pixels hold the fill value (0), nothing of the image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

#: Parameters of each named degradation; benchmarks pass these to baselines as ``info``.
DEGRADATIONS: dict[str, dict] = {
    "noise15": {"sigma": 15, "jpeg_quality": None, "holes": False},
    "noise25": {"sigma": 25, "jpeg_quality": None, "holes": False},
    "noise50": {"sigma": 50, "jpeg_quality": None, "holes": False},
    "jpeg10": {"sigma": None, "jpeg_quality": 10, "holes": False},
    "jpeg20": {"sigma": None, "jpeg_quality": 20, "holes": False},
    "jpeg40": {"sigma": None, "jpeg_quality": 40, "holes": False},
    "holes": {"sigma": None, "jpeg_quality": None, "holes": True},
    "multi": {"sigma": 15, "jpeg_quality": 40, "holes": True},
}


def degradation_info(name: str) -> dict:
    """The parameters of a named degradation plus its name (a fresh dict, safe to modify)."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; expected one of {sorted(DEGRADATIONS)}")
    return {"name": name, **DEGRADATIONS[name]}


def _quantize8(img: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(img, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def add_gaussian_noise(
    img: np.ndarray, sigma_255: float, rng: np.random.Generator | int
) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma_255`` (0..255 scale), clip, round to 8-bit levels."""
    rng = np.random.default_rng(rng)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma_255 / 255.0)
    return _quantize8(img + noise)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG with Pillow (4:2:0 subsampling for colour, baseline)."""
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    grey = u8.ndim == 3 and u8.shape[2] == 1
    pil = Image.fromarray(u8[:, :, 0] if grey else u8)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=int(quality), subsampling=2)
    out = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
    return out[:, :, None] if grey else out


def random_square_mask(
    h: int,
    w: int,
    size: int = 10,
    coverage: float = 0.10,
    *,
    rng: np.random.Generator | int,
) -> np.ndarray:
    """Bool HxW mask (True = damaged) of random ``size`` x ``size`` squares covering ``coverage``."""
    if size > h or size > w:
        raise ValueError(f"a {size}x{size} square does not fit a {h}x{w} image")
    rng = np.random.default_rng(rng)
    mask = np.zeros((h, w), dtype=bool)
    target = coverage * h * w
    damaged = 0
    while damaged < target:
        y = int(rng.integers(0, h - size + 1))
        x = int(rng.integers(0, w - size + 1))
        window = mask[y : y + size, x : x + size]
        damaged += size * size - int(window.sum())
        window[...] = True
    return mask


def apply_mask(img: np.ndarray, mask: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Replace damaged pixels by ``fill``: their true values must not leak to a restorer."""
    out = img.astype(np.float32, copy=True)
    out[mask] = fill
    return out


def degrade(
    img: np.ndarray, name: str, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the named standard degradation; returns (degraded image, damage mask or None)."""
    info = degradation_info(name)
    rng = np.random.default_rng(rng)
    out = img.astype(np.float32, copy=True)
    if info["sigma"] is not None:
        out = add_gaussian_noise(out, info["sigma"], rng)
    if info["jpeg_quality"] is not None:
        out = jpeg_compress(out, info["jpeg_quality"])
    mask = None
    if info["holes"]:
        mask = random_square_mask(img.shape[0], img.shape[1], rng=rng)
        out = apply_mask(out, mask)
    return out, mask
