"""Loading the evaluation sets (Kodak24, McMaster18, CBSD68) from the shared data folder.

The photos live outside the repository (``../shared/data/eval`` next to it, or the folder named
by ``RESTORER_EVAL_DATA``) and are read in place, never copied into the project.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

EVAL_SETS = ("kodak24", "mcmaster18", "cbsd68")
_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


class EvalImage(NamedTuple):
    name: str  # file stem, e.g. "kodim01"
    image: np.ndarray  # float32 HxWx3 in [0, 1]


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


def load_eval_set(name: str, crop: int | None = None, limit: int | None = None) -> list[EvalImage]:
    """Read an evaluation set as RGB float32, in natural file order, optionally cropped/limited."""
    if name not in EVAL_SETS:
        raise ValueError(f"unknown eval set {name!r}; expected one of {EVAL_SETS}")
    folder = eval_root() / name
    paths = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in _SUFFIXES), key=_natural_key
    )
    if not paths:
        raise FileNotFoundError(f"no images in {folder}")
    images = []
    for path in paths[:limit]:
        with Image.open(path) as pil:
            img = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0
        if crop is not None:
            img = np.ascontiguousarray(centre_crop(img, crop))
        images.append(EvalImage(path.stem, img))
    return images
