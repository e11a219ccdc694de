"""The scan's finish, applied identically to the damaged and the clean picture.

Order: film grain (Gaussian, std on the 0..255 scale; one draw per pixel shared by the three
channels on a toned (monochrome) picture, one per channel on a "keep" picture), then the
scanner's Gaussian blur, then rounding to 8-bit levels, then the optional JPEG round trip through
Pillow (4:2:0). The same noise draw goes into both pictures, so ``image - clean`` holds only the
damage (blurred and compressed as the scan would have it).
"""

from __future__ import annotations

import cv2
import numpy as np

from .spec import SimSpec


def _quantize8(img: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels in [0, 1] (float32)."""
    x = np.clip(img, 0.0, 1.0) * np.float32(255.0)
    np.rint(x, out=x)
    x *= np.float32(1.0 / 255.0)
    return x


def draw_finish(spec: SimSpec, rng: np.random.Generator) -> dict:
    """The finish parameters for one image: grain sigma, blur sigma (0 = none), JPEG quality."""
    grain = float(rng.uniform(*spec.grain)) if spec.grain[1] > 0 else 0.0
    blur = float(rng.uniform(*spec.blur)) if spec.blur[1] > 0 else 0.0
    quality = None
    if spec.jpeg is not None and rng.random() < spec.jpeg_prob:
        quality = int(rng.integers(spec.jpeg[0], spec.jpeg[1] + 1))
    return {"grain": grain, "blur": blur if blur >= 0.2 else 0.0, "jpeg": quality}


def apply_finish(images: list[np.ndarray], finish: dict, mono: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Grain, blur, 8-bit rounding and JPEG of ``finish`` on each of ``images`` (same noise)."""
    h, w = images[0].shape[:2]
    noise = None
    if finish["grain"] > 0:
        noise = rng.standard_normal((h, w, 1) if mono else (h, w, 3), dtype=np.float32)
        noise *= np.float32(finish["grain"] / 255.0)
    out = []
    for img in images:
        x = img + noise if noise is not None else img
        if finish["blur"] > 0:
            x = cv2.GaussianBlur(x, (0, 0), sigmaX=finish["blur"], borderType=cv2.BORDER_REFLECT)
        x = _quantize8(x)
        if finish["jpeg"] is not None:
            from ..restore.degradations import jpeg_compress  # here: degradations draws its curves from this package

            x = jpeg_compress(x, finish["jpeg"])
        out.append(x)
    return out
