"""Classical baselines the flow restorer must beat: non-local means, BM3D, OpenCV inpainting.

Every baseline is ``f(degraded, mask, info) -> restored``: float32 HxWx3 in [0, 1], ``mask`` bool
HxW (True = damaged) or None, ``info`` the degradation's parameters from
:func:`restorer_app.restore.degradations.degradation_info`. ``bm3d`` is an optional extra (the
``bench`` extra), so it is imported only when a BM3D baseline runs.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

Baseline = Callable[[np.ndarray, "np.ndarray | None", dict], np.ndarray]

# Non-local means (h, hColor) per degradation. Tuned on 256x256 centre crops of Kodak24 images
# 1-12 (degrade seed 1000 + index), grid h in {0.4, 0.5, ..., 1.0, 1.2} x sigma, hColor in
# {0.5, 1, 1.5} x h, template 7, search 21; best mean PSNR kept (all interior to the grid).
# "multi" was tuned on the Telea-filled input. Mean PSNR input -> NLM: noise15 24.68 -> 29.47,
# noise25 20.36 -> 26.90, noise50 14.78 -> 23.80, multi (filled) 26.77 -> 27.88.
NLM_H: dict[str, tuple[float, float]] = {
    "noise15": (9.0, 9.0),
    "noise25": (15.0, 15.0),
    "noise50": (30.0, 30.0),
    "multi": (7.5, 3.8),
}

# CBM3D noise std (0..255 scale). Noise: the true sigma. JPEG and multi (Telea-filled): the std
# with the best mean PSNR on 128x128 centre crops of Kodak24 images 1-4 (seed 1000 + index),
# grids jpeg10 {4..44}, jpeg20 {3..22}, jpeg40 {2..15}, multi {15, 18, 21, 25}. Input -> CBM3D:
# jpeg10 27.52 -> 28.33, jpeg20 29.74 -> 30.49, jpeg40 31.75 -> 32.34, multi 27.75 -> 29.92.
BM3D_SIGMA: dict[str, float] = {
    "noise15": 15.0,
    "noise25": 25.0,
    "noise50": 50.0,
    "jpeg10": 30.0,
    "jpeg20": 17.0,
    "jpeg40": 12.0,
    "multi": 18.0,
}

# cv2.inpaint neighbourhood radius in pixels, best masked PSNR of {1, 2, 3, 5, 9} on the holes of
# the NLM tuning crops: Telea 22.46 dB at 3, Navier-Stokes 22.85 dB at 1 (spread under 0.3 dB).
INPAINT_RADIUS = {cv2.INPAINT_TELEA: 3, cv2.INPAINT_NS: 1}


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _inpaint(degraded: np.ndarray, mask: np.ndarray, flag: int) -> np.ndarray:
    filled = cv2.inpaint(_to_u8(degraded), mask.astype(np.uint8), INPAINT_RADIUS[flag], flag)
    out = degraded.astype(np.float32, copy=True)
    out[mask] = filled[mask].astype(np.float32) / 255.0  # known pixels stay exactly as given
    return out


def telea(degraded: np.ndarray, mask: np.ndarray, info: dict) -> np.ndarray:
    """Fill damaged pixels by fast marching (Telea 2004); known pixels untouched."""
    return _inpaint(degraded, mask, cv2.INPAINT_TELEA)


def navier_stokes(degraded: np.ndarray, mask: np.ndarray, info: dict) -> np.ndarray:
    """Fill damaged pixels by Navier-Stokes propagation (Bertalmio 2001); known pixels untouched."""
    return _inpaint(degraded, mask, cv2.INPAINT_NS)


def inpaint(baseline: Callable, image: np.ndarray, mask: np.ndarray, info: dict) -> np.ndarray:
    """An RGB inpainting baseline on a colour or greyscale crop (as three equal channels, then back)."""
    if image.shape[2] == 3:
        return baseline(image, mask, info)
    return baseline(np.repeat(image, 3, axis=2), mask, info)[:, :, :1]


def nlm(degraded: np.ndarray, mask: np.ndarray | None, info: dict) -> np.ndarray:
    """OpenCV colour non-local means with the tuned (h, hColor) of this degradation."""
    h, h_color = NLM_H[info["name"]]
    out = cv2.fastNlMeansDenoisingColored(_to_u8(degraded), None, h, h_color, 7, 21)
    return out.astype(np.float32) / 255.0


def bm3d(degraded: np.ndarray, mask: np.ndarray | None, info: dict) -> np.ndarray:
    """CBM3D (bm3d package, opponent colour space) with this degradation's noise std."""
    import bm3d as _bm3d

    sigma = BM3D_SIGMA[info["name"]] / 255.0
    out = _bm3d.bm3d_rgb(degraded.astype(np.float64), sigma)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def telea_nlm(degraded: np.ndarray, mask: np.ndarray, info: dict) -> np.ndarray:
    """Multi-damage chain: fill holes with Telea, then denoise everything with NLM."""
    return nlm(telea(degraded, mask, info), mask, info)


def telea_bm3d(degraded: np.ndarray, mask: np.ndarray, info: dict) -> np.ndarray:
    """Multi-damage chain: fill holes with Telea, then denoise everything with CBM3D."""
    return bm3d(telea(degraded, mask, info), mask, info)


BASELINES: dict[str, Baseline] = {
    "nlm": nlm,
    "bm3d": bm3d,
    "telea": telea,
    "navier_stokes": navier_stokes,
    "telea+nlm": telea_nlm,
    "telea+bm3d": telea_bm3d,
}


def baselines_for(degradation: str) -> list[str]:
    """Names of the baselines that apply to a degradation (keys of :data:`BASELINES`)."""
    if degradation.startswith("noise"):
        return ["nlm", "bm3d"]
    if degradation.startswith("jpeg"):
        return ["bm3d"]
    if degradation == "holes":
        return ["telea", "navier_stokes"]
    if degradation == "multi":
        return ["telea+nlm", "telea+bm3d"]
    raise ValueError(f"no baselines for degradation {degradation!r}")
