"""Invertible building blocks of the Glow flow.

Every layer maps ``x -> (y, logdet)`` in ``forward`` and ``y -> (x, logdet_of_forward)`` in
``reverse``; log-determinants are per sample (shape ``[N]``), always computed in float32.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn import functional as F


def squeeze2x2(x: torch.Tensor) -> torch.Tensor:
    """Space-to-depth: [N, C, H, W] -> [N, 4C, H/2, W/2]."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, c * 4, h // 2, w // 2)


def unsqueeze2x2(x: torch.Tensor) -> torch.Tensor:
    """Depth-to-space, the exact inverse of :func:`squeeze2x2`."""
    n, c, h, w = x.shape
    x = x.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, h * 2, w * 2)


class ActNorm(nn.Module):
    """Per-channel affine normalisation, initialised from the first batch it sees.

    The ``initialized`` flag is a buffer so it travels with the weights: a loaded model must
    never re-initialise itself from whatever batch it meets first.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x):
        if not self.initialized and self.training:
            self.initialize(x)
        y = (x + self.loc) * torch.exp(self.log_scale)
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def reverse(self, y):
        x = y * torch.exp(-self.log_scale) - self.loc
        logdet = y.shape[2] * y.shape[3] * self.log_scale.sum()
        return x, logdet.expand(y.shape[0])


class LUWeight(nn.Module):
    """An invertible square matrix W = P L U (P fixed permutation, L unit lower, U upper) from a
    random rotation: log|det W| is the sum of log|diag(U)|, cheap and exact."""

    def __init__(self, dims: int, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dims, dims, generator=generator))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(diag))
        self.register_buffer("lower_mask", torch.tril(torch.ones(dims, dims), -1))
        self.register_buffer("eye", torch.eye(dims))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(diag)))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def inverse_weight(self, dtype: torch.dtype) -> torch.Tensor:
        return torch.linalg.inv(self.weight().double()).to(dtype)


class InvConv1x1(LUWeight):
    """Invertible 1x1 convolution in LU form: log|det| is the sum of log|diag(U)| per pixel."""

    def forward(self, x):
        y = F.conv2d(x, self.weight()[:, :, None, None])
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return y, logdet.expand(x.shape[0])

    def reverse(self, y):
        x = F.conv2d(y, self.inverse_weight(y.dtype)[:, :, None, None])
        logdet = y.shape[2] * y.shape[3] * self.log_s.sum()
        return x, logdet.expand(y.shape[0])


class ZeroConv2d(nn.Module):
    """3x3 convolution that starts at exactly zero output (Glow's trick for identity start)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.scale = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x):
        return self.conv(x) * torch.exp(self.scale * 3)


class AffineCoupling(nn.Module):
    """Affine coupling with a bounded scale in ``[min_scale, 1]``.

    The lower bound keeps the reverse pass (which divides by the scale) from exploding when
    latents are pushed off the data manifold, the instability the probe saw in the
    latent-noise loss.
    """

    def __init__(self, channels: int, hidden: int, min_scale: float):
        super().__init__()
        self.min_scale = min_scale
        self.net = nn.Sequential(
            nn.Conv2d(channels // 2, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            ZeroConv2d(hidden, channels),
        )
        for conv in (self.net[0], self.net[2]):
            conv.weight.data.normal_(0, 0.05)
            conv.bias.data.zero_()
        self.autocast_dtype: torch.dtype | None = None

    def _shift_scale(self, xa):
        ctx = (
            torch.autocast(xa.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            h = self.net(xa)
        h = h.float()
        shift, raw = h[:, 0::2], h[:, 1::2]
        scale = self.min_scale + (1 - self.min_scale) * torch.sigmoid(raw + 2.0)
        return shift, scale

    def forward(self, x):
        xa, xb = x.chunk(2, 1)
        shift, scale = self._shift_scale(xa)
        yb = (xb + shift) * scale
        return torch.cat([xa, yb], 1), torch.log(scale).flatten(1).sum(1)

    def reverse(self, y):
        ya, yb = y.chunk(2, 1)
        shift, scale = self._shift_scale(ya)
        xb = yb / scale - shift
        return torch.cat([ya, xb], 1), torch.log(scale).flatten(1).sum(1)


class FlowStep(nn.Module):
    """ActNorm -> invertible 1x1 conv -> affine coupling."""

    def __init__(self, channels: int, hidden: int, min_scale: float, generator=None):
        super().__init__()
        self.layers = nn.ModuleList(
            [ActNorm(channels), InvConv1x1(channels, generator), AffineCoupling(channels, hidden, min_scale)]
        )

    def forward(self, x):
        total = 0
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total

    def reverse(self, y):
        total = 0
        for layer in reversed(self.layers):
            y, logdet = layer.reverse(y)
            total = total + logdet
        return y, total


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, log_sd: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of log N(x; mean, exp(log_sd)^2)."""
    log_p = -0.5 * (math.log(2 * math.pi) + 2 * log_sd + (x - mean) ** 2 * torch.exp(-2 * log_sd))
    return log_p.flatten(1).sum(1)
