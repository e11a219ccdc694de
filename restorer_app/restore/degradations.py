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
- "scratches" imitates dust and scratches on a scanned print or film: film grain (noise sigma 5 on
  the whole image) first, then defects painted over it until about 1-3 % of the pixels are hit
  (a target drawn from U(1.2 %, 2.8 %), roughly half scratches, half dust):
  * scratches: long smooth curves (cubic Bezier with a slight sine wobble) spanning 30-100 % of
    the longer side, 1-3 px wide;
  * dust: irregular blobs 1-6 px across, and hair-like fibres (short, strongly bent curves, 1 px);
  * each defect is near white (0.82-0.97) or near black (0.03-0.18), the same in every channel
    (dust is neutral), with a little per-pixel variation (std 0.02). Its polarity contrasts with
    the image under it (light on dark, dark on light), flipped for one defect in five, as real
    scans show both. Edges are hard (no anti-aliasing), so the mask is exact.
  The returned mask holds the defect pixels that changed the grainy image by at least 0.1 in some
  channel: a light speck on a white sky leaves nothing to find or to repair.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from restorer_app.damage_sim.geometry import curve

SCRATCH_GRAIN_SIGMA = 5  # film grain under the dust and scratches (0..255 scale)

#: Parameters of each named degradation; benchmarks pass these to baselines as ``info``.
DEGRADATIONS: dict[str, dict] = {
    "noise15": {"sigma": 15, "jpeg_quality": None, "holes": False, "scratches": False},
    "noise25": {"sigma": 25, "jpeg_quality": None, "holes": False, "scratches": False},
    "noise50": {"sigma": 50, "jpeg_quality": None, "holes": False, "scratches": False},
    "jpeg10": {"sigma": None, "jpeg_quality": 10, "holes": False, "scratches": False},
    "jpeg20": {"sigma": None, "jpeg_quality": 20, "holes": False, "scratches": False},
    "jpeg40": {"sigma": None, "jpeg_quality": 40, "holes": False, "scratches": False},
    "holes": {"sigma": None, "jpeg_quality": None, "holes": True, "scratches": False},
    "multi": {"sigma": 15, "jpeg_quality": 40, "holes": True, "scratches": False},
    "scratches": {"sigma": SCRATCH_GRAIN_SIGMA, "jpeg_quality": None, "holes": False, "scratches": True},
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


_LIGHT_LEVELS = (0.82, 0.97)
_DARK_LEVELS = (0.03, 0.18)
VISIBLE = 0.1  # a defect pixel is damage when it moved the image by this much
SAME_AS_PICTURE = 0.2  # share of defects as light as a light picture under them, or as dark as a dark one


def defect_levels(labels: np.ndarray, img: np.ndarray, rng: np.random.Generator,
                  light: tuple[float, float] = _LIGHT_LEVELS, dark: tuple[float, float] = _DARK_LEVELS,
                  same_as_picture: float = SAME_AS_PICTURE) -> np.ndarray:
    """A level per defect label: light debris where the picture under it is dark and dark debris
    where it is light (as it shows on a scan), a ``same_as_picture`` share the other way round."""
    count = int(labels.max()) + 1
    luminance = img.reshape(*labels.shape, -1).mean(axis=2).ravel()
    under = np.bincount(labels.ravel(), luminance, count) / np.maximum(np.bincount(labels.ravel(), minlength=count), 1)
    is_light = (under < 0.5) ^ (rng.random(count) < same_as_picture)
    return np.where(is_light, rng.uniform(*light, count), rng.uniform(*dark, count))


def _stroke(points: np.ndarray, width: int) -> tuple[np.ndarray, int, int]:
    """Rasterise a curve ``width`` px wide: (bool patch, top, left) of its bounding box."""
    top, left = np.floor(points.min(axis=0)[::-1]).astype(int) - 2
    bottom, right = np.ceil(points.max(axis=0)[::-1]).astype(int) + 3
    patch = np.zeros((bottom - top, right - left), np.uint8)
    local = np.round((points - [left, top]) * 16).astype(np.int32)
    cv2.polylines(patch, [local], False, 1, thickness=1, lineType=cv2.LINE_8, shift=4)
    if width > 1:  # 2: a 2x2 square brush; 3: a 3x3 cross (cv2's thickness 2 is already 3 px)
        brush = np.ones((2, 2), np.uint8) if width == 2 else cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        patch = cv2.dilate(patch, brush)
    return patch.astype(bool), top, left


def _blob(diameter: int, rng: np.random.Generator) -> np.ndarray:
    """An irregular speck about ``diameter`` px across: a disc with a ragged random edge."""
    side = diameter + 2
    y, x = np.mgrid[0:side, 0:side] - (side - 1) / 2
    ragged = np.hypot(y, x) + rng.uniform(-0.6, 0.6, (side, side))
    blob = ragged <= diameter / 2
    blob[side // 2, side // 2] = True
    return blob


def _paste(labels: np.ndarray, patch: np.ndarray, top: int, left: int, label: int) -> int:
    """Write ``label`` where ``patch`` is set (clipped to the image); returns new damaged pixels."""
    h, w = labels.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + patch.shape[0], h), min(left + patch.shape[1], w)
    if y0 >= y1 or x0 >= x1:
        return 0
    region = labels[y0:y1, x0:x1]
    hit = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    new = int(np.count_nonzero(hit & (region == 0)))
    region[hit] = label
    return new


def scratch_defects(h: int, w: int, rng: np.random.Generator | int, coverage: float | None = None) -> np.ndarray:
    """Int32 HxW label image of scratches, specks and fibres (0 = clean, k = k-th defect).

    ``coverage`` (default: drawn from U(1.2 %, 2.8 %)) is the fraction of pixels to hit; about
    half goes to scratches. Later defects overwrite earlier ones.
    """
    rng = np.random.default_rng(rng)
    coverage = rng.uniform(0.012, 0.028) if coverage is None else coverage
    labels = np.zeros((h, w), np.int32)
    target, scratch_target = coverage * h * w, coverage * h * w * rng.uniform(0.4, 0.6)
    damaged, label = 0, 0
    while damaged < target and label < 100_000:
        label += 1
        start = rng.uniform([0, 0], [w, h])
        if damaged < scratch_target:
            points = curve(start, rng.uniform(0.3, 1.0) * max(h, w), 0.15, rng, wobble=rng.uniform(0, 1.5))
            patch, top, left = _stroke(points, int(rng.integers(1, 4)))
        elif rng.random() < 0.25:  # a hair-like fibre
            points = curve(start, rng.uniform(6, 30), 0.4, rng)
            patch, top, left = _stroke(points, 1)
        else:
            patch = _blob(int(rng.integers(1, 7)), rng)
            top, left = int(start[1]) - patch.shape[0] // 2, int(start[0]) - patch.shape[1] // 2
        damaged += _paste(labels, patch, top, left, label)
    return labels


def scratch_mask(h: int, w: int, rng: np.random.Generator | int, coverage: float | None = None) -> np.ndarray:
    """Bool HxW mask (True = damaged) of the defects :func:`scratch_defects` draws."""
    return scratch_defects(h, w, rng, coverage) > 0


def paint_scratches(img: np.ndarray, rng: np.random.Generator | int,
                    same_as_picture: float = SAME_AS_PICTURE) -> tuple[np.ndarray, np.ndarray]:
    """Paint light and dark scratches and dust over ``img`` (no grain added here);
    ``same_as_picture``: see :func:`defect_levels`.

    Returns (damaged image, bool mask of the pixels the defects visibly changed).
    """
    rng = np.random.default_rng(rng)
    h, w = img.shape[:2]
    labels = scratch_defects(h, w, rng)
    levels = defect_levels(labels, img, rng, same_as_picture=same_as_picture)
    defect = labels > 0
    out = img.astype(np.float32, copy=True)
    painted = levels[labels[defect]]
    if out.ndim == 3:
        painted = painted[:, None]  # the same level in every channel
    out[defect] = _quantize8(painted + rng.normal(0.0, 0.02, out[defect].shape))
    change = np.abs(out - img.astype(np.float32)).reshape(h, w, -1)
    return out, change.max(axis=2) >= VISIBLE


def add_scratches(img: np.ndarray, rng: np.random.Generator | int) -> tuple[np.ndarray, np.ndarray]:
    """The "scratches" degradation: film grain (sigma 5), then dust and scratches over it.

    Returns (degraded float32 image, bool HxW mask of the damage); same as ``degrade(img,
    "scratches", rng)``.
    """
    rng = np.random.default_rng(rng)
    return paint_scratches(add_gaussian_noise(img, SCRATCH_GRAIN_SIGMA, rng), rng)


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
    if info["scratches"]:
        out, mask = paint_scratches(out, rng)
    return out, mask
