"""Shared fixtures: tiny flows and small synthetic photos made on the fly (no ../shared data)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from restorer_app import runtime  # noqa: E402

runtime.configure()

from restorer_app.flow.glow import FlowConfig, Glow  # noqa: E402


def make_tiny_flow(patch_size: int = 16, hidden: int = 16, levels: int = 3, steps: int = 2, seed: int = 0) -> Glow:
    """A small initialised flow with every zero-initialised layer nudged off zero."""
    torch.manual_seed(seed)
    model = Glow(FlowConfig(hidden=hidden, patch_size=patch_size, levels=levels, steps_per_level=steps), seed=seed)
    model.train()
    with torch.no_grad():
        model.encode(torch.rand(16, 3, patch_size, patch_size) - 0.5)
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture
def tiny_flow() -> Glow:
    return make_tiny_flow()


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth picture with edges and texture: gradients, discs and stripes, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [x / max(width, 1), y / max(height, 1), 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)], axis=2
    )
    for _ in range(3):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(4, 20)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, 3)
    return np.clip(image, 0, 1).astype(np.float32)


class DictStore:
    """An in-memory patch store that counts its writes."""

    def __init__(self):
        self.patches, self.puts = {}, 0
        self.threads = None

    def get(self, index):
        return self.patches.get(index)

    def put(self, index, patch):
        self.puts += 1
        self.patches[index] = patch.copy()


def _threads_with_nothing_set() -> int:
    """torch's thread count in a process started without OMP_NUM_THREADS / MKL_NUM_THREADS (a
    fresh machine's, and the queue tests' child processes'), whatever this one was started with."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


#: torch's thread count on this machine with nothing set (a fresh machine has no OMP_NUM_THREADS).
DEFAULT_THREADS = _threads_with_nothing_set()


@pytest.fixture(params=[DEFAULT_THREADS, 1], ids=["default-threads", "1-thread"])
def thread_count(request):
    """Run the test with the machine's default torch threads, then with one: the thread counts
    users have (the command line's default, the GUI's preference, one per cluster worker)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; more only spin against other busy processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
