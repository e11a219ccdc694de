"""``--strength auto``: choose the data weight lambda from the image itself.

The MAP data term is the Gaussian log-likelihood lambda * ||x_hat - x||^2 with
lambda = 1 / (2 sigma^2) for noise of standard deviation sigma (x in [0, 1] units, log p in
nats). The flow's prior is under-confident on real photos, so the best lambda is a calibrated
multiple of that value (FINDINGS: ~8x for noise 25, 4x for mixed damage, 16x for JPEG).
sigma is estimated with Donoho's robust median rule on the finest diagonal wavelet band of the
undamaged pixels; a floor stands for the quantisation and compression error that every file has.
"""

from __future__ import annotations

import numpy as np

#: Calibration of lambda = FACTOR / (2 * max(sigma, SIGMA_FLOOR)^2); see benchmarks/results.
FACTOR = 8.0
SIGMA_FLOOR = 3.0 / 255.0


def estimate_noise_sigma(image: np.ndarray, mask: np.ndarray | None = None, max_pixels: int = 4_000_000) -> float:
    """Robust noise standard deviation of an HxWxC image in [0, 1] (Donoho & Johnstone)."""
    grey = image.mean(axis=2) if image.ndim == 3 else image
    stride = max(1, int(np.sqrt(grey.size / max_pixels)))
    if stride > 1:  # subsample whole 2x2 blocks so the estimate stays local
        grey = grey[: grey.shape[0] // (2 * stride) * 2 * stride, : grey.shape[1] // (2 * stride) * 2 * stride]
    h, w = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    if h < 2 or w < 2:
        return 0.0
    g = grey[:h, :w].astype(np.float64)
    diagonal = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
    if mask is not None:
        m = mask[:h, :w]
        damaged = m[0::2, 0::2] | m[0::2, 1::2] | m[1::2, 0::2] | m[1::2, 1::2]
        diagonal = diagonal[~damaged]
    if diagonal.size == 0:
        return 0.0
    return float(np.median(np.abs(diagonal)) / 0.6745)


def auto_lambda(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(lambda, estimated sigma) for the MAP data term."""
    sigma = estimate_noise_sigma(image, mask)
    return lambda_for_sigma(sigma), sigma


def lambda_for_sigma(sigma: float) -> float:
    return FACTOR / (2.0 * max(sigma, SIGMA_FLOOR) ** 2)
