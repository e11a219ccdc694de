"""Deep Image Prior baseline (Ulyanov, Vedaldi, Lempitsky, CVPR 2018), written from the paper.

DIP is the other "no training data, one generic prior" restorer, so it is the fairest learned
baseline for the flow prior. A randomly initialised encoder-decoder maps a fixed noise tensor to
the image and is fitted to the degraded photo only; the architecture itself is the prior, and
stopping early (a fixed iteration count) is the regulariser.

Settings follow the paper's supplementary material and the authors' released experiments:
- denoising / JPEG: "skip" net, 5 levels of 128 channels down and up, 4-channel skips, bilinear
  upsampling, 32-channel input of U(0, 0.1) noise re-perturbed every step by N(0, (1/30)^2), Adam
  lr 0.01, 3000 steps, output = exponential average of the outputs (weight 0.99);
- inpainting: same net with 128-channel skips and nearest upsampling, input perturbation 0.03,
  6000 steps, loss over known pixels only, output of the last step.
Each level: stride-2 3x3 conv, 3x3 conv (both with BatchNorm and LeakyReLU 0.2, reflection
padding), the deeper levels, upsampling x2, concatenation with a 1x1-conv skip branch, BatchNorm,
3x3 conv and 1x1 conv; a 1x1 conv and a sigmoid give the image. CPU runs are slow, so callers
usually pass a smaller ``iterations`` and must report the number they used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DIPConfig:
    iterations: int
    skip_channels: int
    upsample: str  # "bilinear" or "nearest"
    reg_noise_std: float
    exp_weight: float | None  # None: return the last output instead of the running average
    lr: float = 0.01
    input_depth: int = 32
    input_scale: float = 0.1  # input noise is U(0, input_scale)
    channels: int = 128
    levels: int = 5


DENOISING = DIPConfig(
    iterations=3000, skip_channels=4, upsample="bilinear", reg_noise_std=1 / 30, exp_weight=0.99
)
INPAINTING = DIPConfig(
    iterations=6000, skip_channels=128, upsample="nearest", reg_noise_std=0.03, exp_weight=None
)


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    pad = (kernel - 1) // 2
    return [
        nn.ReflectionPad2d(pad) if pad else nn.Identity(),
        nn.Conv2d(cin, cout, kernel, stride=stride),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    ]


class _Level(nn.Module):
    """One scale of the skip network; holds the deeper scales recursively."""

    def __init__(self, cin: int, cfg: DIPConfig, depth: int) -> None:
        super().__init__()
        ch, skip = cfg.channels, cfg.skip_channels
        self.skip = nn.Sequential(*_conv_bn_act(cin, skip, 1)) if skip else None
        self.down = nn.Sequential(*_conv_bn_act(cin, ch, 3, stride=2), *_conv_bn_act(ch, ch, 3))
        self.deeper = _Level(ch, cfg, depth - 1) if depth > 1 else None
        self.up = nn.Upsample(scale_factor=2, mode=cfg.upsample)
        self.merge = nn.Sequential(
            nn.BatchNorm2d(skip + ch), *_conv_bn_act(skip + ch, ch, 3), *_conv_bn_act(ch, ch, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        y = self.up(y)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.merge(y)


def skip_net(cfg: DIPConfig, out_channels: int) -> nn.Module:
    """The DIP "skip" encoder-decoder: input noise NCHW -> image in (0, 1)."""
    return nn.Sequential(
        _Level(cfg.input_depth, cfg, cfg.levels),
        nn.Conv2d(cfg.channels, out_channels, 1),
        nn.Sigmoid(),
    )


def run_dip(
    degraded: np.ndarray, mask: np.ndarray | None, cfg: DIPConfig, seed: int = 0
) -> np.ndarray:
    """Fit a fresh skip net to ``degraded`` (HxWxC, known pixels only) and return its image.

    The image is reflect-padded to a multiple of 2**levels; padded and damaged pixels get zero
    weight in the loss. The global torch RNG is left as it was.
    """
    h, w, c = degraded.shape
    mult = 2**cfg.levels
    ph, pw = -h % mult, -w % mult
    target = np.pad(degraded, ((0, ph), (0, pw), (0, 0)), mode="reflect")
    weight = np.zeros(target.shape[:2], dtype=np.float32)
    weight[:h, :w] = 1.0 if mask is None else (~mask).astype(np.float32)

    y = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)).permute(2, 0, 1)[None]
    m = torch.from_numpy(weight)[None, None]
    norm = m.sum() * c

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = skip_net(cfg, c)
        z0 = torch.rand(1, cfg.input_depth, h + ph, w + pw) * cfg.input_scale
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        avg = None
        for _ in range(cfg.iterations):
            z = z0 + cfg.reg_noise_std * torch.randn_like(z0) if cfg.reg_noise_std else z0
            out = net(z)
            loss = (m * (out - y) ** 2).sum() / norm
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            out = out.detach()
            if cfg.exp_weight is None or avg is None:
                avg = out
            else:
                avg = avg * cfg.exp_weight + out * (1.0 - cfg.exp_weight)
    return avg[0, :, :h, :w].permute(1, 2, 0).numpy().astype(np.float32)


def _holes_only(info: dict) -> bool:
    return info["holes"] and info["sigma"] is None and info["jpeg_quality"] is None


def config_for(info: dict, iterations: int | None = None) -> DIPConfig:
    """Paper settings for a degradation: inpainting for holes only, denoising otherwise.

    "multi" (holes + noise + JPEG) uses the denoising settings with the masked loss: with noise on
    the known pixels, the averaged, low-skip net is the one that does not fit the noise.
    """
    cfg = INPAINTING if _holes_only(info) else DENOISING
    return cfg if iterations is None else dataclasses.replace(cfg, iterations=iterations)


def dip(
    degraded: np.ndarray,
    mask: np.ndarray | None,
    info: dict,
    iterations: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Baseline entry point; for clean-known-pixel inpainting the known pixels are kept as given."""
    out = run_dip(degraded, mask, config_for(info, iterations), seed)
    if mask is not None and _holes_only(info):
        out[~mask] = degraded[~mask]
    return out
