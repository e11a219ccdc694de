"""Choosing the compute device: ``auto`` means CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA GPU is available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device mps: Apple Metal is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name}: expected auto, cpu, cuda or mps")
    return torch.device(name)


#: GPU memory one tile takes while it is solved: its four mirrored views through the flow with a
#: step's autograd graph. On the CPU a patch costs 7.3 MB in bf16 (0.60 GB for 32 patches, 2.23 GB
#: for 256; benchmarks/batch_size.py); this allows twice that per view, for the fp32 finish.
GPU_BYTES_PER_TILE = 4 * 15 * 2**20
#: Share of the card's memory that one batch may take (the rest: the model, cuDNN's workspaces,
#: the blending buffers, other processes; a batch that still runs out is split by the solver).
GPU_MEMORY_SHARE = 0.5
GPU_BATCH_TILES = (16, 4096)  # fewest and most tiles in a GPU batch


def gpu_batch_tiles(device: torch.device) -> int:
    """Tiles per batch on a CUDA card: as many as half its memory holds, within
    ``GPU_BATCH_TILES``. The GPU waits on the optimiser's sequential steps more than on arithmetic
    (PERFORMANCE.md), so fewer, larger batches take fewer steps in all. Read from the card's
    total memory, not what is free now, so that a job resumed on the same card is sliced into
    the same batches and gives the same image."""
    total = torch.cuda.get_device_properties(device).total_memory
    low, high = GPU_BATCH_TILES
    return max(low, min(high, int(total * GPU_MEMORY_SHARE // GPU_BYTES_PER_TILE)))


def describe_devices() -> list[str]:
    """Human-readable list of what was found, for settings dialogs and selftest."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return found


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 couplings pay off here (CUDA with bf16, or a CPU with native bf16 units)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        with contextlib.suppress(Exception):
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@contextlib.contextmanager
def cpu_threads(count: int):
    """Run the block with ``count`` torch CPU threads in this thread (0: leave them as they are),
    then restore the previous count. A job's batches are solved under the count it started with:
    with another count, CPU kernels sum in another order and the last bits of a patch change, so
    a job resumed in another front end or after a change of preference would not equal an
    uninterrupted run."""
    before = torch.get_num_threads()
    if count <= 0 or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
