"""The multi-scale Glow prior T: u -> x of the paper (section 3.1).

Image patches are float tensors in [-0.5, 0.5] (engine images in [0, 1] minus 0.5), NCHW.
Latents are listed deepest first: ``latents[0]`` is u_0, the coarsest level (the only one that
is not factored out), ``latents[l]`` for l >= 1 is the level factored out l levels above it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from restorer_app.flow.layers import FlowStep, ZeroConv2d, gaussian_log_density, squeeze2x2, unsqueeze2x2


@dataclass(frozen=True)
class FlowConfig:
    """Architecture of a flow; stored with its weights so a file describes itself."""

    channels: int = 3
    levels: int = 3
    steps_per_level: int = 4
    hidden: int = 128
    patch_size: int = 64
    min_scale: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FlowConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def dims(self) -> int:
        return self.channels * self.patch_size**2


class Glow(nn.Module):
    def __init__(self, config: FlowConfig, seed: int = 0):
        super().__init__()
        if config.patch_size % (2**config.levels):
            raise ValueError(f"patch size {config.patch_size} is not divisible by 2**{config.levels}")
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        self.levels = nn.ModuleList()
        self.priors = nn.ModuleList()
        channels = config.channels
        for level in range(config.levels):
            channels *= 4
            self.levels.append(
                nn.ModuleList(
                    FlowStep(channels, config.hidden, config.min_scale, generator)
                    for _ in range(config.steps_per_level)
                )
            )
            if level < config.levels - 1:
                self.priors.append(ZeroConv2d(channels // 2, channels))
                channels //= 2

    # -- mixed precision -------------------------------------------------------------------
    def set_autocast(self, dtype: torch.dtype | None) -> None:
        """Run the coupling networks (not the invertible algebra) in ``dtype``; None = fp32."""
        for module in self.modules():
            if hasattr(module, "autocast_dtype"):
                module.autocast_dtype = dtype

    # -- the flow --------------------------------------------------------------------------
    def _predicted(self, level: int, h: torch.Tensor):
        mean, log_sd = self.priors[level](h).chunk(2, 1)
        return mean, log_sd

    def encode(self, x: torch.Tensor):
        """x -> (latents deepest first, log p(x) per sample in nats)."""
        h = x
        log_p = torch.zeros(x.shape[0], device=x.device)
        fine_latents = []
        for level, steps in enumerate(self.levels):
            h = squeeze2x2(h)
            for step in steps:
                h, logdet = step(h)
                log_p = log_p + logdet
            if level < len(self.levels) - 1:
                h, z = h.chunk(2, 1)
                mean, log_sd = self._predicted(level, h)
                log_p = log_p + gaussian_log_density(z, mean, log_sd)
                fine_latents.append(z)
        log_p = log_p + gaussian_log_density(h, torch.zeros_like(h), torch.zeros_like(h))
        return [h] + fine_latents[::-1], log_p

    def complete_latents(self, latents) -> list[torch.Tensor]:
        """Fill ``None`` latents with their predicted means (the coarse-to-fine start)."""
        filled = [latents[0]]
        h = latents[0]
        depth = len(self.levels)
        for index, level in enumerate(reversed(range(depth))):
            if level < depth - 1:
                z = latents[index] if index < len(latents) else None
                if z is None:
                    z = self._predicted(level, h)[0]
                filled.append(z)
                h = torch.cat([h, z], 1)
            for step in reversed(self.levels[level]):
                h, _ = step.reverse(h)
            h = unsqueeze2x2(h)
        return filled

    def decode(self, latents, with_log_p: bool = False):
        """Latents (deepest first; ``None`` entries take their predicted mean) -> x.

        With ``with_log_p`` also returns log p(x) per sample in nats, computed along the way,
        which is what the MAP objective needs without a second pass.
        """
        h = latents[0]
        log_p = gaussian_log_density(h, torch.zeros_like(h), torch.zeros_like(h)) if with_log_p else None
        depth = len(self.levels)
        for index, level in enumerate(reversed(range(depth))):
            if level < depth - 1:
                z = latents[index] if index < len(latents) else None
                if z is None or with_log_p:
                    mean, log_sd = self._predicted(level, h)
                if z is None:
                    z = mean
                if with_log_p:
                    log_p = log_p + gaussian_log_density(z, mean, log_sd)
                h = torch.cat([h, z], 1)
            for step in reversed(self.levels[level]):
                h, logdet = step.reverse(h)
                if with_log_p:
                    log_p = log_p + logdet
            h = unsqueeze2x2(h)
        return (h, log_p) if with_log_p else h

    def decode_deepest(self, deepest: torch.Tensor) -> torch.Tensor:
        """The auto-encoder path: every finer level at its predicted mean."""
        return self.decode([deepest] + [None] * (len(self.levels) - 1))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[1]

    def bits_per_dim(self, log_p: torch.Tensor) -> torch.Tensor:
        """Bits per dimension of 8-bit data, from the continuous log-density of dequantised x."""
        dims = self.config.dims
        return (-log_p / dims + math.log(256.0)) / math.log(2.0)

    def latent_shapes(self):
        """Shapes (C, H, W) of the latents, deepest first."""
        c, s = self.config.channels, self.config.patch_size
        shapes = []
        for level in range(self.config.levels):
            c, s = c * 4, s // 2
            if level < self.config.levels - 1:
                shapes.append((c // 2, s, s))
                c //= 2
            else:
                shapes.append((c, s, s))
        return [shapes[-1]] + shapes[:-1][::-1]
