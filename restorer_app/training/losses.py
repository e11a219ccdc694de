"""The training losses of equation 18 of the paper.

nll is reported in bits per dimension; the three regularisers are mean squared errors
(per pixel or per latent dimension), so the paper's weights (100, 1, 100) balance them
against an nll of a few bits/dim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass
class LossWeights:
    nll: float = 1.0
    latent_noise: float = 100.0
    autoencoder: float = 1.0
    image_noise: float = 0.0
    latent_noise_amplitude: float = 0.5  # xi ~ U(-a, a), the paper's a = 0.5
    latent_noise_warmup: int = 2000  # steps over which a ramps up from 0 (stability)
    image_noise_sigma: float = 4.0 / 255.0

    def to_dict(self) -> dict:
        return asdict(self)

    def active(self) -> list[str]:
        names = ["nll", "latent_noise", "autoencoder", "image_noise"]
        return [name for name in names if getattr(self, name) > 0]


def flow_losses(model, x: torch.Tensor, weights: LossWeights, step: int, generator=None) -> dict:
    """All loss terms for one batch of dequantised patches x in [-0.5, 0.5].

    Returns a dict of scalar tensors: the terms that are switched on, ``bpd`` (always, for
    logging) and ``total``.
    """
    latents, log_p = model.encode(x)
    bpd = model.bits_per_dim(log_p).mean()
    terms = {"bpd": bpd}
    total = weights.nll * bpd if weights.nll > 0 else torch.zeros((), device=x.device)
    if weights.latent_noise > 0:
        ramp = min(1.0, (step + 1) / max(1, weights.latent_noise_warmup))
        amplitude = weights.latent_noise_amplitude * ramp
        noisy = [u + (torch.rand(u.shape, generator=generator, device=u.device) * 2 - 1) * amplitude for u in latents]
        terms["latent_noise"] = ((model.decode(noisy) - x) ** 2).mean()
        total = total + weights.latent_noise * terms["latent_noise"]
    if weights.autoencoder > 0:
        terms["autoencoder"] = ((model.decode_deepest(latents[0]) - x) ** 2).mean()
        total = total + weights.autoencoder * terms["autoencoder"]
    if weights.image_noise > 0:
        eta = torch.randn(x.shape, generator=generator, device=x.device) * weights.image_noise_sigma
        noisy_latents, _ = model.encode(x + eta)
        diffs = [((a - b) ** 2).flatten(1).sum(1) for a, b in zip(latents, noisy_latents)]
        terms["image_noise"] = (sum(diffs) / model.config.dims).mean()
        total = total + weights.image_noise * terms["image_noise"]
    terms["total"] = total
    return terms
