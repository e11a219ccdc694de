"""A small normalizing flow on small RGB patches: the PatchNR prior (Altekrueger et al. 2023).

The image-level Glow (``glow.py``) models 64x64 patches and is used through a latent MAP; this
flow models tiny patches (6x6x3 = 108 values by default) as flat vectors, so the restoration can
evaluate ``-log p`` on every (or a random subset of) overlapping patch position(s) of the image
and optimise the pixels directly (``benchmarks/patchnr_solver.py``: an experiment; not an engine
option, because it loses to BM3D on the test split).

Patches are float tensors in [-0.5, 0.5] like the Glow's, flattened in ``F.unfold`` order
(channel, row, column), i.e. ``patches_nchw.reshape(N, -1)``. The direction ``forward`` maps a
patch x to its latent z; ``log_prob`` is exact: log N(z; 0, I) + sum of the layers' log|det|.

Each block: ActNorm (data-initialised) -> invertible linear map (LU-parametrised) -> affine
coupling whose scale is bounded, ``exp(c * tanh(raw / c))`` with c = ``scale_bound``, so the
restoration's gradients stay finite wherever the pixels wander.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from restorer_app.flow.layers import LUWeight


@dataclass(frozen=True)
class PatchFlowConfig:
    channels: int = 3
    patch_size: int = 6
    blocks: int = 6
    hidden: int = 128
    scale_bound: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PatchFlowConfig":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @property
    def dims(self) -> int:
        return self.channels * self.patch_size**2


class VecActNorm(nn.Module):
    """Per-dimension affine normalisation, initialised from the first training batch."""

    def __init__(self, dims: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dims))
        self.log_scale = nn.Parameter(torch.zeros(dims))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        self.loc.copy_(-x.mean(0))
        self.log_scale.copy_(-torch.log(x.std(0) + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x):
        if not self.initialized and self.training:
            self.initialize(x)
        return (x + self.loc) * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def reverse(self, z):
        return z * torch.exp(-self.log_scale) - self.loc


class LULinear(LUWeight):
    """y = W x with W in LU form (shared with the image flow's 1x1 convolution)."""

    def forward(self, x):
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def reverse(self, y):
        return y @ self.inverse_weight(y.dtype).T


class VecCoupling(nn.Module):
    """Affine coupling on the second half given the first: (xb + t(xa)) * s(xa), s bounded."""

    def __init__(self, dims: int, hidden: int, scale_bound: float):
        super().__init__()
        self.half = dims // 2
        self.bound = scale_bound
        rest = dims - self.half
        self.net = nn.Sequential(
            nn.Linear(self.half, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * rest)
        )
        self.net[-1].weight.data.zero_()  # start as the identity
        self.net[-1].bias.data.zero_()

    def _shift_log_scale(self, xa):
        shift, raw = self.net(xa).chunk(2, 1)
        return shift, self.bound * torch.tanh(raw / self.bound)

    def forward(self, x):
        xa, xb = x[:, : self.half], x[:, self.half :]
        shift, log_s = self._shift_log_scale(xa)
        return torch.cat([xa, (xb + shift) * torch.exp(log_s)], 1), log_s.sum(1)

    def reverse(self, y):
        ya, yb = y[:, : self.half], y[:, self.half :]
        shift, log_s = self._shift_log_scale(ya)
        return torch.cat([ya, yb * torch.exp(-log_s) - shift], 1)


class PatchFlow(nn.Module):
    def __init__(self, config: PatchFlowConfig = PatchFlowConfig(), seed: int = 0):
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(seed)
        dims = config.dims
        layers = []
        for _ in range(config.blocks):
            layers += [VecActNorm(dims), LULinear(dims, generator), VecCoupling(dims, config.hidden, config.scale_bound)]
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor):
        """Flat patches [N, D] -> (latents [N, D], sum of log|det dz/dx| per patch [N])."""
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total

    def reverse(self, z: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            z = layer.reverse(z)
        return z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density (nats) of flat patches [N, D] or NCHW patches [N, C, p, p]."""
        x = x.reshape(x.shape[0], -1)
        z, logdet = self(x)
        return logdet - 0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    def bits_per_dim(self, log_p: torch.Tensor) -> torch.Tensor:
        """Bits/dim of 8-bit data from the log-density of dequantised patches in [-0.5, 0.5]."""
        return (-log_p / self.config.dims + math.log(256.0)) / math.log(2.0)

    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.dims, generator=generator) * temperature
        return self.reverse(z)


# -- weight files (same convention as flow/weights.py: safetensors + JSON "restorer" metadata) --

def save_patch_flow(model: PatchFlow, path, info: dict | None = None) -> None:
    import json
    import os
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    metadata = {"kind": "patchnr", "config": model.config.to_dict(), **(info or {})}
    tensors = {k: v.detach().float().contiguous().cpu() if v.is_floating_point() else v.contiguous().cpu()
               for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"restorer": json.dumps(metadata, sort_keys=True)})
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_patch_flow(path, device="cpu") -> PatchFlow:
    from restorer_app.flow.weights import WeightsError, load_tensors, read_metadata

    metadata = read_metadata(path)
    if metadata.get("kind") != "patchnr":
        raise WeightsError(path, "not a PatchNR patch-flow model")
    model = load_tensors(PatchFlow(PatchFlowConfig.from_dict(metadata["config"])), path)
    model.info = metadata
    return model.eval().to(device)
