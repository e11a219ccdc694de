"""MAP restoration in the flow's latent space (paper, equations 10-13 and section 3.3).

For a batch of patches, minimise per patch
    lambda * || m * (x_hat - T(u)) ||^2 - log p(T(u))
with Adam over the latents, coarse to fine: the deepest latent first (finer levels held at their
predicted means), then one finer level at a time, then all together. Non-finite patches are
retried alone from their start point with half the step; a patch that still fails keeps its
start point.

Batch companions, exactly what holds (tests/test_restore.py checks it):
- Mathematically a patch's result does not depend on its batch: losses are summed over patches,
  never averaged, the flow works per sample and Adam works element-wise.
- Bitwise: the same batch (same patches in the same order), settings, device and thread count
  give the identical result. Resume relies on this alone: the pipeline solves fixed slices of the
  tile list, so a resumed run meets every patch with the same companions, and solves them with
  the thread count the job started with (``Plan.threads``). Restoring the same image afresh with
  another batch size or thread count (GUI preference against CLI default) is NOT bit-identical.
- Across batch sizes and thread counts, only a tolerance. On CPU, PyTorch picks the convolution
  kernel from the batch size and thread count (oneDNN for a batch, its native kernel for a single
  patch, and for 1x1 convolutions also for batches under 16 on one thread); their float32
  rounding differs by ~1e-7 per step and the optimisation amplifies it. Measured after the
  ``fast`` schedule (patches in [-0.5, 0.5]; one 8-bit level is 3.9e-3):
  * the stage-2 prior (models/flow-prior.md) with ``fast`` as one 100-step path at a step of
    3e-2, four 64x64 patches of a noisy Kodak crop: alone vs batched, largest pixel difference
    1.1e-2 (mean 5e-4) in float32, 1.4e-2 (mean 1.1e-3) with the CPU's bfloat16 autocast; one
    thread vs two, same batch: 8e-3 (mean 3e-4) / 1.3e-2 (mean 1.2e-3); a batch of 2 vs the same
    patches in a batch of 4 (same kernels): bit-identical;
  * the test flow, 16x16 patches, 22 inputs, alone vs in a batch of 5: largest 1.8e-3, mean at
    most 1.3e-5; a bug that lets patches interact (masks or a loss scale shared across the
    batch) shows 2e-2 to 0.7 there, which is what the test's tolerance separates.
  Retried patches run in a smaller batch, so the same tolerance applies to them. CUDA (cuDNN also
  picks algorithms by shape) was not measured: expect a tolerance of the same kind, not bits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from restorer_app.flow.glow import Glow

#: Within a step the stop flag is also polled between the flow's layers, forward and backward, at
#: most this often: one step of a 64-patch batch takes seconds on a busy CPU.
INNER_POLL_S = 0.05


class SolveStopped(Exception):
    """``should_stop()`` returned true during a batch; nothing of the batch is kept."""

    def __init__(self, steps_done: int, steps_total: int):
        super().__init__(f"stopped after {steps_done} of {steps_total} optimiser steps")
        self.steps_done, self.steps_total = steps_done, steps_total


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


class _StepCounter:
    """Counts optimiser steps over the first run and any retries, reports them, and polls the stop
    flag before each step and (throttled) between the model's layers. Only Python-side
    bookkeeping: hooks that return nothing, so no tensor and no gradient changes."""

    def __init__(self, steps_per_run: int, on_step, should_stop):
        self.done, self.total = 0, steps_per_run
        self.on_step, self.should_stop = on_step, should_stop
        self.next_poll = 0.0

    def before(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise SolveStopped(self.done, self.total)

    def _poll_inside(self, *_) -> None:
        now = time.monotonic()
        if now >= self.next_poll:
            self.next_poll = now + INNER_POLL_S
            self.before()

    @contextlib.contextmanager
    def polling_inside(self, model: torch.nn.Module):
        """Poll between layers: forward hooks on the model's leaf modules with parameters, and from
        them gradient hooks on their outputs for the backward pass (only for this thread's calls)."""
        if self.should_stop is None:
            yield
            return
        me = threading.get_ident()

        def forward_hook(module, inputs, output) -> None:
            if threading.get_ident() != me:  # someone else using the shared model meanwhile
                return
            self._poll_inside()
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(self._poll_inside)

        handles = [m.register_forward_hook(forward_hook) for m in model.modules()
                   if next(m.children(), None) is None and next(m.parameters(recurse=False), None) is not None]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def after(self) -> None:
        self.done += 1
        if self.on_step is not None:
            self.on_step(self.done, self.total)


def _optimise(model, start, x_hat, valid, lam, stages, lr, fp32_tail, autocast_dtype, counter: _StepCounter):
    """One coarse-to-fine run for a batch; returns (x, loss, finite per patch)."""
    with torch.no_grad():
        deepest, _ = model.encode(start)
        latents = [deepest[0].clone()] + [None] * (len(deepest) - 1)
    total_steps = sum(steps for _, steps in stages)
    done = 0
    finite = torch.ones(start.shape[0], dtype=torch.bool, device=start.device)
    loss = torch.zeros(start.shape[0], device=start.device)
    try:  # a stop (or Ctrl-C) between two steps must not leave the shared model in autocast
        for active, steps in stages:
            with torch.no_grad():
                filled = model.complete_latents(latents[:active] + [None] * (len(latents) - active))
            latents = [z.detach().clone() for z in filled]
            params = [z.requires_grad_(True) for z in latents[:active]]
            optimiser = torch.optim.Adam(params, lr=lr)
            for _ in range(steps):
                counter.before()
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
                counter.after()
    finally:
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
    on_step: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SolveResult:
    """Restore a batch of patches (x_hat, start: N3PP in [-0.5, 0.5]; valid: N1PP; lam: N).

    ``on_step(steps_done, steps_total)`` is called after every optimiser step. ``steps_total``
    starts as the schedule's length and grows by one schedule when non-finite patches are retried
    (a retry runs only those patches, so its steps are cheaper). ``should_stop()`` is polled
    before every step and, at most every INNER_POLL_S, between the model's layers (keep it
    cheap); when it returns true the batch ends with :class:`SolveStopped`. Neither changes a
    single bit of the result.
    """
    model.requires_grad_(False)
    per_run = sum(steps for _, steps in stages)
    counter = _StepCounter(per_run, on_step, should_stop)
    with torch.enable_grad(), counter.polling_inside(model):
        x, loss, finite = _optimise(model, start, x_hat, valid, lam, stages, lr, fp32_tail, autocast_dtype, counter)
        retries = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        step = lr
        for _ in range(max_retries):
            bad = (~finite).nonzero().flatten()
            if len(bad) == 0:
                break
            step /= 2
            retries[bad] += 1
            counter.total += per_run
            x_r, loss_r, finite_r = _optimise(
                model, start[bad], x_hat[bad], valid[bad], lam[bad], stages, step, fp32_tail, autocast_dtype, counter
            )
            x[bad], loss[bad], finite[bad] = x_r, loss_r, finite_r
    failed = ~finite
    x[failed] = start[failed]
    return SolveResult(x.clamp(-0.5, 0.5), loss, retries, failed)

