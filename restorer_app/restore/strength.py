"""``--strength auto``: choose the data weight lambda from the image itself.

The MAP data term is the Gaussian log-likelihood lambda * ||x_hat - x||^2 with
lambda = 1 / (2 sigma^2) for noise of standard deviation sigma (x in [0, 1] units, log p in
nats). The flow's prior is under-confident on real photos, so the best lambda is a calibrated
multiple of that value (FINDINGS: ~8x for noise 25, 4x for mixed damage, 16x for JPEG).
sigma is estimated with Donoho's robust median rule on the finest diagonal wavelet band of the
undamaged pixels; a floor stands for the quantisation and compression error that every file has.
JPEG removes exactly that band, so compression is detected separately from the excess step
across the 8x8 block grid ("blockiness"), which maps linearly to the compression error; the
larger of the two error levels sets lambda.
"""

from __future__ import annotations

import numpy as np

#: Calibration of lambda = FACTOR / (2 * max(sigma, SIGMA_FLOOR)^2); see benchmarks/results.
FACTOR = 8.0
SIGMA_FLOOR = 3.0 / 255.0
#: JPEG: blockiness above BLOCKY (clean and noisy images stay within +-0.7/255) means
#: compression; its RMS error is ~ JPEG_INTERCEPT + JPEG_SLOPE * blockiness (fit on 18 crops
#: at quality 10/20/40: 14.5, 11.3, 9.0 /255).
BLOCKY = 1.5 / 255.0
JPEG_INTERCEPT = 5.1 / 255.0
JPEG_SLOPE = 1.24
#: Calibrated for the bundled prior at its steps (validation split, ``standard``, factor
#: 11.3 / 8 / 5.66 / 4 / 2.83: JPEG q20 27.29 / 27.37 / 27.43 / 27.47 / 27.45 dB, holes + noise 15
#: + JPEG 40 26.22 / 26.36 / 26.54 / 26.71 / 26.84). JPEG is flat from 4 down, mixed damage still
#: gains: it carries noise too.
JPEG_FACTOR = 2.83


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


#: Rows of the image measured at once (a multiple of the 8-px block): whole-image float64 copies
#: of a 50-megapixel scan would take GBs.
BLOCKINESS_BAND_ROWS = 512


def estimate_blockiness(image: np.ndarray) -> float:
    """Excess luminance step across the 8x8 JPEG block grid over the step inside blocks.

    About 0 for uncompressed or noisy images; 3/255 at JPEG quality 40, 5/255 at 20, 7.6/255
    at 10 (Kodak24/McMaster18 crops).
    """
    height, width = image.shape[:2]
    if min(height, width) < 16:
        return 0.0
    sums, counts = np.zeros(4), np.zeros(4)  # steps across x, inside x, across y, inside y
    for top in range(0, height, BLOCKINESS_BAND_ROWS):
        rows = image[top : top + BLOCKINESS_BAND_ROWS + 1]  # one more row: the step into the next band
        grey = (rows.mean(axis=2) if rows.ndim == 3 else rows).astype(np.float64)
        dx, dy = np.abs(np.diff(grey[:BLOCKINESS_BAND_ROWS], axis=1)), np.abs(np.diff(grey, axis=0))
        for k, (steps, across) in enumerate(((dx, dx[:, 7::8]), (dy, dy[7::8]))):
            sums[2 * k : 2 * k + 2] += across.sum(), steps.sum() - across.sum()
            counts[2 * k : 2 * k + 2] += across.size, steps.size - across.size
    across_x, inside_x, across_y, inside_y = sums / counts
    return float(((across_x - inside_x) + (across_y - inside_y)) / 2)


def jpeg_sigma(blockiness: float) -> float:
    """RMS error of a JPEG-compressed image from its blockiness (linear fit, see module doc)."""
    if blockiness < BLOCKY:
        return 0.0
    return JPEG_INTERCEPT + JPEG_SLOPE * blockiness


def auto_lambda(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(lambda, effective sigma) for the MAP data term."""
    noise = estimate_noise_sigma(image, mask)
    compression = jpeg_sigma(estimate_blockiness(image))
    if compression > noise:
        return JPEG_FACTOR / (2.0 * compression**2), compression
    return lambda_for_sigma(noise), noise


def lambda_for_sigma(sigma: float) -> float:
    return FACTOR / (2.0 * max(sigma, SIGMA_FLOOR) ** 2)
