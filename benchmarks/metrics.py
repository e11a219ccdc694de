"""Image quality metrics for the benchmarks, all on float images in [0, 1] (data range 1).

PSNR of identical images is ``inf``; SSIM and MS-SSIM return ``nan`` where the image is too small
for their windows, so a table shows "not measurable" instead of a misleading number.
"""

from __future__ import annotations

import math

import numpy as np

#: pytorch-msssim's default: 5 scales with an 11-pixel window need a smaller side above 160 px.
MSSSIM_MIN_SIDE = (11 - 1) * 2**4 + 1


def _mse(ref: np.ndarray, test: np.ndarray) -> float:
    diff = np.asarray(ref, dtype=np.float64) - np.asarray(test, dtype=np.float64)
    return float(np.mean(diff * diff))


def _psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def psnr(ref: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    return _psnr_from_mse(_mse(ref, test))


def masked_psnr(ref: np.ndarray, test: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the damaged pixels only (mask bool HxW, True = damaged): the inpainting score."""
    if not mask.any():
        return math.nan
    return _psnr_from_mse(_mse(ref[mask], test[mask]))


def ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM (scikit-image defaults: uniform 7x7 window, channels averaged)."""
    from skimage.metrics import structural_similarity

    if min(ref.shape[:2]) < 7:
        return math.nan
    return float(
        structural_similarity(
            np.asarray(ref, np.float64),
            np.asarray(test, np.float64),
            data_range=1.0,
            channel_axis=2,
        )
    )


def ms_ssim(ref: np.ndarray, test: np.ndarray) -> float:
    """Multi-scale SSIM (pytorch-msssim defaults); nan when a side is under 161 pixels."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(ref.shape[:2]) < MSSSIM_MIN_SIDE:
        return math.nan

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]

    return float(_ms_ssim(to_tensor(ref), to_tensor(test), data_range=1.0, size_average=True))
