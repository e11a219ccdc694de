"""Real debris shapes: the hand-annotated dust, dirt, hairs and scratches of the damage_shapes data.

The folder (``../shared/data/damage_shapes``, see its SOURCE.md) holds one label map per film
frame (``labels/scan_NN_labels.png``: 1 dust, 2 dirt, 3 short hair, 4 long hair, 5 scratch) and
``artefacts.csv`` (scan, label name, bbox_x/y/w/h in pixels). Each artefact's shape is the crop of
its bounding box (1 px margin) keeping only the pixels of its label, minus any connected piece
that touches the crop border (a neighbour reaching in); if that leaves nothing, every label pixel
of the crop is kept.

Reading the ten 17-MP label maps takes a few seconds, so the crops are cached as one compressed
.npz in ``platformdirs.user_cache_dir("flow-restorer")``, named by the SHA-256 of the csv and the
extraction version; a later load with the same csv reads only that file. Nothing of the data is
stored in the repository.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SHAPE_CLASSES: tuple[str, ...] = ("dust", "dirt", "short_hair", "long_hair", "scratch")
_CSV_LABELS = {"dust": 1, "dirt": 2, "short hair": 3, "long hair": 4, "scratch": 5}
_EXTRACTION_VERSION = 1
ENV_VAR = "RESTORER_DAMAGE_SHAPES"


class ShapeLibrary:
    """Binary crops (bool arrays) of real debris, by class (:data:`SHAPE_CLASSES`)."""

    def __init__(self, shapes: dict[str, list[np.ndarray]]):
        self.shapes = {name: [np.asarray(s, bool) for s in shapes.get(name, [])] for name in SHAPE_CLASSES}

    def __len__(self) -> int:
        return sum(len(v) for v in self.shapes.values())

    def count(self, name: str) -> int:
        return len(self.shapes[name])

    def sample(self, name: str, rng: np.random.Generator) -> np.ndarray | None:
        """One shape of class ``name`` drawn uniformly, or None when the class is empty."""
        items = self.shapes[name]
        return items[int(rng.integers(len(items)))] if items else None

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
             use_cache: bool = True) -> "ShapeLibrary":
        """Read a damage_shapes folder, through the .npz cache unless ``use_cache`` is False."""
        folder = Path(folder)
        csv_bytes = (folder / "artefacts.csv").read_bytes()
        digest = hashlib.sha256(csv_bytes).hexdigest()
        cache = None
        if use_cache:
            if cache_dir is None:
                import platformdirs

                cache_dir = platformdirs.user_cache_dir("flow-restorer")
            cache = Path(cache_dir) / f"damage_shapes_{digest[:32]}_v{_EXTRACTION_VERSION}.npz"
            if cache.is_file():
                try:
                    return cls.from_npz(cache)
                except (OSError, ValueError, KeyError):
                    pass  # a damaged cache file: rebuild it
        library = cls(_extract(folder, csv_bytes))
        if cache is not None:
            try:
                library.save_npz(cache)
            except OSError:
                pass  # a read-only cache dir only costs speed
        return library

    def save_npz(self, path: str | os.PathLike) -> None:
        """Write every crop into one compressed .npz (atomically: a temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name in SHAPE_CLASSES:
            items = self.shapes[name]
            arrays[f"{name}_sizes"] = np.array([s.shape for s in items], np.int32).reshape(-1, 2)
            arrays[f"{name}_bits"] = np.packbits(np.concatenate([s.ravel() for s in items])) if items \
                else np.zeros(0, np.uint8)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> "ShapeLibrary":
        """Read crops written by :meth:`save_npz`."""
        shapes: dict[str, list[np.ndarray]] = {}
        with np.load(path) as data:
            for name in SHAPE_CLASSES:
                sizes = data[f"{name}_sizes"]
                total = int(np.prod(sizes, axis=1).sum()) if len(sizes) else 0
                flat = np.unpackbits(data[f"{name}_bits"], count=total).astype(bool)
                ends = np.cumsum(np.prod(sizes, axis=1)) if len(sizes) else []
                starts = np.r_[0, ends[:-1]] if len(sizes) else []
                shapes[name] = [flat[a:b].reshape(hw) for a, b, hw in zip(starts, ends, sizes)]
        return cls(shapes)


def _extract(folder: Path, csv_bytes: bytes) -> dict[str, list[np.ndarray]]:
    """Crop every artefact of the csv out of its label map (see the module docstring)."""
    rows = list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))))
    by_scan: dict[str, list[dict]] = {}
    for row in rows:
        by_scan.setdefault(row["scan"], []).append(row)
    shapes: dict[str, list[np.ndarray]] = {name: [] for name in SHAPE_CLASSES}
    for scan in sorted(by_scan):
        labels = np.asarray(Image.open(folder / "labels" / f"{scan}_labels.png"))
        h, w = labels.shape[:2]
        for row in by_scan[scan]:
            label = _CSV_LABELS.get(row["label"].strip().lower())
            if label is None:
                continue
            x, y = float(row["bbox_x"]), float(row["bbox_y"])
            bw, bh = float(row["bbox_w"]), float(row["bbox_h"])
            top, left = max(int(np.floor(y)) - 1, 0), max(int(np.floor(x)) - 1, 0)
            bottom, right = min(int(np.ceil(y + bh)) + 2, h), min(int(np.ceil(x + bw)) + 2, w)
            crop = _own_pixels(labels[top:bottom, left:right] == label)
            if crop is not None:
                shapes[SHAPE_CLASSES[label - 1]].append(crop)
    return shapes


def _own_pixels(crop: np.ndarray) -> np.ndarray | None:
    """``crop`` without the pieces touching its border, trimmed to its content; None if empty."""
    if not crop.any():
        return None
    count, comp = cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    own = crop & ~np.isin(comp, border[border > 0])
    if not own.any():
        own = crop
    ys, xs = np.nonzero(own)
    return own[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].copy()


def default_shape_library(cache_dir: str | os.PathLike | None = None) -> ShapeLibrary | None:
    """The library from ``$RESTORER_DAMAGE_SHAPES``, else ``<repo>/../shared/data/damage_shapes``
    next to this source tree; None when neither folder exists (callers then draw procedurally)."""
    env = os.environ.get(ENV_VAR)
    folder = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "damage_shapes"
    if not (folder / "artefacts.csv").is_file():
        return None
    return ShapeLibrary.load(folder, cache_dir=cache_dir)
