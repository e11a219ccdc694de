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
    """Robust noise standard deviation of an HxWxC image in [0, 1] (Donoho & Johnstone).

    Estimated per channel (averaging channels first would divide independent noise by
    sqrt(C)) and averaged; large images are read on a regular sample of 2x2 blocks.
    """
    planes = image[:, :, :, None] if image.ndim == 3 else image[:, :, None, None]
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    if h < 2 or w < 2:
        return 0.0
    stride = max(1, int(np.sqrt(h * w / max_pixels)))
    blocks = planes[:h, :w, :, 0].reshape(h // 2, 2, w // 2, 2, -1)[::stride, :, ::stride].astype(np.float64)
    diagonal = (blocks[:, 0, :, 0] - blocks[:, 0, :, 1] - blocks[:, 1, :, 0] + blocks[:, 1, :, 1]) / 2.0
    if mask is not None:
        m = mask[:h, :w].reshape(h // 2, 2, w // 2, 2)[::stride, :, ::stride].any(axis=(1, 3))
        diagonal = diagonal[~m]
    else:
        diagonal = diagonal.reshape(-1, diagonal.shape[-1])
    if diagonal.size == 0:
        return 0.0
    return float(np.mean(np.median(np.abs(diagonal), axis=0)) / 0.6745)


def auto_lambda(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(lambda, estimated sigma) for the MAP data term."""
    sigma = estimate_noise_sigma(image, mask)
    return lambda_for_sigma(sigma), sigma


def lambda_for_sigma(sigma: float) -> float:
    return FACTOR / (2.0 * max(sigma, SIGMA_FLOOR) ** 2)
