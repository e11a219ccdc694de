"""PatchNR restoration: MAP in pixel space with a patch normalizing-flow prior.

Altekrueger et al. 2023, "PatchNR: learning from very few images by patch normalizing flow
regularization". Unlike the Glow latent MAP (``solver.py``) the image x is optimised directly:

    E(x) = lam * sum_pixels |m * (x - y)|^2 / N_pixels + reg * mean_patches(-log p(P_i x)) / p^2

m = known-pixel mask, y = degraded image, P_i x = the p x p patch at position i (every position of
the image reflect-padded by p-1, so each pixel lies in p^2 patches). The 1/p^2 makes reg = 1 the
EPLL-style Bayesian weighting when lam = 1/(2 sigma^2). Each step evaluates the prior on the
patches of a stride-``stride`` grid with a random offset (an unbiased estimate of the mean over
all positions at 1/stride^2 of the cost); Adam on x with cosine-decayed step size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from restorer_app.flow.patch_flow import PatchFlow

#: Settings chosen on Kodak24 noise25 (benchmarks/patchnr.py); see models/PATCHNR_CARD.md.
DEFAULTS = {"reg": 1.0, "lam_factor": 1.0, "steps": 100, "lr": 0.01, "stride": 3, "aggregate": False}


def telea_fill(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None or not mask.any():
        return image.astype(np.float32, copy=True)
    u8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    filled = cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out = image.astype(np.float32, copy=True)
    out[mask] = filled[mask].astype(np.float32) / 255.0
    return out


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def _prior_term(x: torch.Tensor, model: PatchFlow, stride: int, offset: tuple[int, int], chunk: int, backward_scale: float | None):
    """Mean -log p over the patches of the grid; with ``backward_scale`` also accumulates its
    gradient (times the scale) into ``x.grad``, chunk by chunk so memory stays bounded."""
    p = model.config.patch_size
    padded = F.pad(x - 0.5, (p - 1, p - 1, p - 1, p - 1), mode="reflect") if p > 1 else x - 0.5
    padded = padded[:, :, offset[0] :, offset[1] :]
    patches = F.unfold(padded, p, stride=stride)[0].T  # [L, C*p*p], (channel, row, col) order
    count = patches.shape[0]
    total = 0.0
    if backward_scale is None:
        with torch.no_grad():
            for part in patches.split(chunk):
                total += float(-model.log_prob(part).sum())
        return total / count
    grads = []
    for part in patches.detach().split(chunk):
        part.requires_grad_(True)
        nll = -model.log_prob(part).sum()
        (g,) = torch.autograd.grad(nll, part)
        grads.append(g)
        total += float(nll.detach())
    patches.backward(torch.cat(grads) * (backward_scale / count))
    return total / count


def patchnr_energy(x, y, mask, model: PatchFlow, lam: float, reg: float, stride: int = 1) -> float:
    """E(x) of the module docstring (all patch positions for stride 1), for tests and logging."""
    xt, yt = _to_tensor(x), _to_tensor(y)
    known = torch.ones_like(xt[:, :1]) if mask is None else _to_tensor(~mask[:, :, None]).float()
    data = float((known * (xt - yt) ** 2).sum()) / (x.shape[0] * x.shape[1])
    p = model.config.patch_size
    return lam * data + reg * _prior_term(xt, model, stride, (0, 0), 16384, None) / p**2


def sigma_for(image: np.ndarray, mask: np.ndarray | None) -> float:
    """Effective error std of the degraded image (noise, or JPEG error), as ``--strength auto``."""
    from restorer_app.restore.strength import SIGMA_FLOOR, auto_lambda

    _, sigma = auto_lambda(image, mask)
    return max(sigma, SIGMA_FLOOR)


def restore_patchnr(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    sigma: float | None = None,
    steps: int = DEFAULTS["steps"],
    *,
    model: PatchFlow,
    reg: float = DEFAULTS["reg"],
    lam: float | None = None,
    lam_factor: float = DEFAULTS["lam_factor"],
    lr: float = DEFAULTS["lr"],
    stride: int = DEFAULTS["stride"],
    aggregate: bool = DEFAULTS["aggregate"],
    start: str = "telea",
    seed: int = 0,
    chunk: int = 16384,
    paste_known: bool = False,
    progress=None,
) -> np.ndarray:
    """Restore an HxWx3 float32 image in [0, 1]; ``mask`` bool HxW, True = damaged (unknown).

    ``sigma`` (0..1 units) sets lam = lam_factor / (2 sigma^2); None estimates it from the image
    (noise or JPEG error, :func:`sigma_for`); ``lam`` overrides both. Holes start from an OpenCV
    Telea fill; ``start="nlm"`` then pre-denoises the start with OpenCV non-local means.
    With ``paste_known`` the known pixels are returned untouched (``--scope mask``).

    ``aggregate`` (stride > 1): visit the stride^2 grid offsets in a shuffled cycle and step on
    the sum of the latest prior gradient of every offset (SAG-style incremental aggregated
    gradient) instead of the noisy single-offset estimate. Measured on a Kodak24 crop (noise 25,
    100 steps) it is much WORSE (21.2 dB vs 25.9-27.0 at stride 3): the prior's gradient is stiff,
    so gradients 8 steps stale overshoot. Kept off; the option documents the negative result.
    """
    if image.ndim != 3 or image.shape[2] != model.config.channels:
        raise ValueError(f"expected HxWx{model.config.channels} image, got {image.shape}")
    if lam is None:
        if sigma is None:
            sigma = sigma_for(image, mask)
        lam = lam_factor / (2.0 * sigma**2)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    initial = telea_fill(image, mask)
    if start == "nlm":  # a cheap pre-denoised start point (OpenCV NLM, h = 0.6 sigma as tuned for noise)
        h = 0.6 * 255.0 * (sigma if sigma is not None else math.sqrt(lam_factor / (2.0 * lam)))
        u8 = np.round(np.clip(initial, 0, 1) * 255).astype(np.uint8)
        initial = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21).astype(np.float32) / 255.0
    elif start != "telea":
        raise ValueError(f"unknown start {start!r}: expected 'telea' or 'nlm'")
    y = _to_tensor(image)
    known = torch.ones_like(y[:, :1]) if mask is None else _to_tensor(~mask[:, :, None]).float()
    x = _to_tensor(initial).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    g = torch.Generator().manual_seed(seed)
    npix = image.shape[0] * image.shape[1]
    p = model.config.patch_size
    offsets = [(i, j) for i in range(stride) for j in range(stride)]
    order: list = []
    stored: dict = {}
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))
        opt.zero_grad(set_to_none=True)
        data = lam * (known * (x - y) ** 2).sum() / npix
        data.backward()
        if aggregate and stride > 1:
            if not order:
                order = [offsets[int(i)] for i in torch.randperm(len(offsets), generator=g)]
            offset = order.pop()
            data_grad = x.grad.clone()
            x.grad = None
            prior = _prior_term(x, model, stride, offset, chunk, reg / p**2)
            # each offset's grid holds ~1/stride^2 of all positions: its gradient was scaled by
            # 1/(its count); rescale so the sum over offsets is the mean over all positions
            stored[offset] = x.grad * (1.0 / len(offsets))
            x.grad = data_grad + sum(stored.values()) * (len(offsets) / len(stored))  # first cycle: partial
        else:
            offset = tuple(int(v) for v in torch.randint(stride, (2,), generator=g))
            prior = _prior_term(x, model, stride, offset, chunk, reg / p**2)
        opt.step()
        with torch.no_grad():
            x.clamp_(-0.1, 1.1)
        if progress is not None:
            progress(step + 1, steps, float(data.detach()) + reg * prior / p**2)
    out = x.detach()[0].permute(1, 2, 0).numpy().clip(0.0, 1.0).astype(np.float32)
    if paste_known and mask is not None:
        out = np.where(mask[:, :, None], out, image).astype(np.float32)
    return out
