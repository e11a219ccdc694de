"""MAP restoration in the flow's latent space (paper, equations 10-13 and section 3.3).

For a batch of patches, minimise per patch
    lambda * || m * (x_hat - T(u)) ||^2 - log p(T(u))
with Adam over the latents, coarse to fine: the deepest latent first (finer levels held at their
predicted means), then one finer level at a time, then all together. Losses are summed over
patches, never averaged, and Adam works element-wise, so a patch's result does not depend on
which other patches share its batch. Non-finite patches are retried alone from their start
point with half the step; a patch that still fails keeps its start point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from restorer_app.flow.glow import Glow


@dataclass
class SolveResult:
    x: torch.Tensor  # restored patches in [-0.5, 0.5], NCHW
    loss: torch.Tensor  # final objective per patch
    retries: torch.Tensor  # how often each patch had to be restarted (int)
    failed: torch.Tensor  # bool: fell back to the start point


def _objective(model: Glow, latents, x_hat, valid, lam):
    x, log_p = model.decode(latents, with_log_p=True)
    data = (valid * (x_hat - x) ** 2).flatten(1).sum(1)
    return lam * data - log_p, x


def _optimise(model, start, x_hat, valid, lam, stages, lr, fp32_tail, autocast_dtype):
    """One coarse-to-fine run for a batch; returns (x, loss, finite per patch)."""
    with torch.no_grad():
        deepest, _ = model.encode(start)
        latents = [deepest[0].clone()] + [None] * (len(deepest) - 1)
    total_steps = sum(steps for _, steps in stages)
    done = 0
    finite = torch.ones(start.shape[0], dtype=torch.bool, device=start.device)
    loss = torch.zeros(start.shape[0], device=start.device)
    for active, steps in stages:
        with torch.no_grad():
            filled = model.complete_latents(latents[:active] + [None] * (len(latents) - active))
        latents = [z.detach().clone() for z in filled]
        params = [z.requires_grad_(True) for z in latents[:active]]
        optimiser = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            if done in (0, total_steps - fp32_tail):  # switch precision only where it changes
                low_precision = autocast_dtype is not None and done < total_steps - fp32_tail
                model.set_autocast(autocast_dtype if low_precision else None)
            loss, _ = _objective(model, latents, x_hat, valid, lam)
            finite &= torch.isfinite(loss)
            optimiser.zero_grad(set_to_none=True)
            torch.where(finite, loss, torch.zeros_like(loss)).sum().backward()
            for p in params:
                p.grad[~finite] = 0
            optimiser.step()
            done += 1
    model.set_autocast(None)
    with torch.no_grad():
        loss, x = _objective(model, latents, x_hat, valid, lam)
        finite &= torch.isfinite(loss) & torch.isfinite(x).flatten(1).all(1)
    return x.detach(), loss.detach(), finite


def solve_batch(
    model: Glow,
    x_hat: torch.Tensor,
    valid: torch.Tensor,
    start: torch.Tensor,
    lam: torch.Tensor,
    stages,
    lr: float = 1e-2,
    fp32_tail: int = 50,
    autocast_dtype: torch.dtype | None = None,
    max_retries: int = 2,
) -> SolveResult:
    """Restore a batch of patches (x_hat, start: N3PP in [-0.5, 0.5]; valid: N1PP; lam: N)."""
    model.requires_grad_(False)
    with torch.enable_grad():
        x, loss, finite = _optimise(model, start, x_hat, valid, lam, stages, lr, fp32_tail, autocast_dtype)
        retries = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        step = lr
        for _ in range(max_retries):
            bad = (~finite).nonzero().flatten()
            if len(bad) == 0:
                break
            step /= 2
            retries[bad] += 1
            x_r, loss_r, finite_r = _optimise(
                model, start[bad], x_hat[bad], valid[bad], lam[bad], stages, step, fp32_tail, autocast_dtype
            )
            x[bad], loss[bad], finite[bad] = x_r, loss_r, finite_r
    failed = ~finite
    x[failed] = start[failed]
    return SolveResult(x.clamp(-0.5, 0.5), loss, retries, failed)

