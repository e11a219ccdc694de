"""Alternative MAP start points, for experiment 4 of the quality log (benchmark-only).

The product starts from the Navier-Stokes-filled patch blurred with sigma 1 px
(``restorer_app.restore.prefill``); ``quality.py --start NAME`` swaps in one of these instead:
``raw`` (hole-filled, not blurred), ``blurS`` (Gaussian sigma S px), ``teleaS`` (holes filled
by Telea, radius 5, as before quality log E32, then blurred by S px; ``telea0`` unblurred) or
``nlmH`` (OpenCV non-local means with filter strength H on the 0-255 scale).
"""

from __future__ import annotations

import cv2
import numpy as np

from restorer_app.restore import pipeline, prefill

TELEA_RADIUS = 5  # the product's fill before quality log E32


def start_function(name: str):
    if not (name == "raw" or name[:4] == "blur" or name[:3] == "nlm" or name[:5] == "telea"):
        raise ValueError(f"start point {name!r}: expected raw, blurS, teleaS or nlmH")

    def start(patch: np.ndarray, damaged: np.ndarray) -> np.ndarray:
        if name == "raw":
            return prefill.start_point(patch, damaged, blur_sigma=0)
        if name.startswith("blur"):
            return prefill.start_point(patch, damaged, blur_sigma=float(name[4:]))
        if name.startswith("telea"):
            filled = prefill.fill_holes(patch, damaged, cv2.INPAINT_TELEA, TELEA_RADIUS)
            sigma = float(name[5:])
            return cv2.GaussianBlur(filled, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma else filled
        h = float(name[3:])
        as_bytes = np.clip(np.round(prefill.fill_holes(patch, damaged) * 255), 0, 255).astype(np.uint8)
        return cv2.fastNlMeansDenoisingColored(as_bytes, None, h, h, 7, 21).astype(np.float32) / 255

    return start


def use_start_point(name: str) -> None:
    """Make every following restoration in this process start from ``name``."""
    pipeline.start_point = start_function(name)
