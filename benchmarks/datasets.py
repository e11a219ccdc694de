"""Loading the evaluation sets (Kodak24, McMaster18, CBSD68) from the shared data folder.

The photos live outside the repository (``../shared/data/eval`` next to it, or the folder named
by ``RESTORER_EVAL_DATA``) and are read in place, never copied into the project.

Splits (DESIGN.md, "Data"): Kodak24 is the validation set, the only one any setting may be tuned
on; McMaster18 and CBSD68 are the test sets. :func:`eval_crops` makes the benchmark crops: each
photo downscaled (antialiased Lanczos) by an integer factor >= 2, which averages away the
demosaicing, sharpening and compression residue of the originals so the "clean" reference is
clean, then centre-cropped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

EVAL_SETS = ("kodak24", "mcmaster18", "cbsd68")
SPLITS: dict[str, tuple[str, ...]] = {
    "validation": ("kodak24",),
    "test": ("mcmaster18", "cbsd68"),
    "both": ("kodak24", "mcmaster18", "cbsd68"),
}
_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp"}


class EvalImage(NamedTuple):
    name: str  # file stem, e.g. "kodim01"
    image: np.ndarray  # float32 HxWx3 in [0, 1]


class EvalCrop(NamedTuple):
    set: str  # "kodak24", ...
    name: str  # unique within the set: file stem, plus "@256" for the extra 256x256 crops
    photo: str  # file stem of the source photo
    image: np.ndarray  # float32 HxWx3 in [0, 1], the crop
    crop: int  # requested side (the crop is smaller where the source is)
    scale: int  # downscale factor of the source the crop was cut from (1 = native)


def eval_root() -> Path:
    """Folder holding one sub-folder per evaluation set."""
    override = os.environ.get("RESTORER_EVAL_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)]


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central size x size window (the whole side where the image is smaller)."""
    h, w = img.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return img[top : top + size, left : left + size]


def load_eval_set(name: str, crop: int | None = None, limit: int | None = None, first: int = 0) -> list[EvalImage]:
    """Read an evaluation set as RGB float32, in natural file order, optionally cropped, and only
    its photos ``first`` to ``limit`` (0-based, end excluded)."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown eval set {name!r}; expected one of {EVAL_SETS}")
    folder = eval_root() / name
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES), key=_natural_key
    )
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    images = []
    for path in paths[first:limit]:
        with Image.open(path) as pil:
            img = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0
        if crop is not None:
            img = np.ascontiguousarray(centre_crop(img, crop))
        images.append(EvalImage(path.stem, img))
    return images


def split_sets(split: str) -> tuple[str, ...]:
    """The evaluation sets of a split: ``validation`` (tune here), ``test`` (report), ``both``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLITS)}")
    return SPLITS[split]


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Shrink by an integer ``factor`` with Pillow's antialiased Lanczos (on 8-bit levels).

    The result stays on the 8-bit grid like the photos themselves; sides are rounded down.
    ``factor`` 1 returns the image unchanged.
    """
    if factor == 1:
        return img
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"downscale factor {factor}: expected a positive integer")
    h, w = img.shape[:2]
    u8 = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    small = Image.fromarray(u8).resize((w // factor, h // factor), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float32) / 255.0


def eval_crops(
    name: str, crop: int = 128, scale: int = 2, limit: int | None = None, extra_256: int = 0
) -> list[EvalCrop]:
    """The benchmark crops of one set, in natural file order.

    One ``crop`` x ``crop`` centre crop of every photo (at most ``limit`` photos) downscaled by
    ``scale``; then ``extra_256`` centre crops of 256x256 from the first photos of the set, cut
    from the downscaled photo where it has 256 pixels a side and from the native photo where it
    has not (CBSD68, McMaster18 at scale 2). ``crop`` 0 keeps the whole downscaled photo.
    """
    photos = load_eval_set(name, limit=None if limit is None else max(limit, extra_256))
    crops = []
    for item in photos[:limit]:
        small = downscale(item.image, scale)
        img = small if not crop else centre_crop(small, crop)
        crops.append(EvalCrop(name, item.name, item.name, np.ascontiguousarray(img), crop, scale))
    for item in photos[:extra_256]:
        small = downscale(item.image, scale)
        source, factor = (small, scale) if min(small.shape[:2]) >= 256 else (item.image, 1)
        img = np.ascontiguousarray(centre_crop(source, 256))
        crops.append(EvalCrop(name, f"{item.name}@256", item.name, img, 256, factor))
    return crops
