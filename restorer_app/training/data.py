"""Random training patches from folders of photos, and fixed held-out patches.

Images are decoded once and kept as uint8 tensors on the training device; each batch is cut
from them with a seeded generator so a resumed run draws exactly the batches it would have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}  # WebP: packed lossless


def find_images(folders) -> list[Path]:
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder of images")
        paths += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images (PNG, JPEG, TIFF) found in {', '.join(map(str, folders))}")
    return paths


def load_rgb_uint8(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


#: Lossy sources (JPEG) carry 8x8 blocks and sensor noise at native scale; downscaling them by
#: 2-3x with antialiasing averages both away, so the prior never learns them as "natural".
LOSSY_SUFFIXES = {".jpg", ".jpeg"}
LOSSY_SCALE = (2.0, 3.0)


class PatchSampler:
    """Draws batches of clean random patches with flips and random downscaling.

    All images sit zero-padded in one uint8 tensor on the device, so a group of patches is cut
    with a single gather instead of one slice per patch (the GPU would otherwise wait on Python).
    Patches from lossy (JPEG) sources are always cut from a region ``LOSSY_SCALE`` times larger
    and resized down (antialiased). Patches from lossless sources are taken at native scale, or,
    for ``downscale_prob`` of the batches, from a region up to 2x larger, because scans arrive at
    many resolutions.
    """

    def __init__(self, folders, patch_size: int, device, seed: int = 0, downscale_prob: float = 0.3):
        self.patch_size = patch_size
        self.device = torch.device(device)
        self.downscale_prob = downscale_prob
        images, lossy = [], []
        for path in find_images(folders):
            is_lossy = path.suffix.lower() in LOSSY_SUFFIXES
            image = load_rgb_uint8(path)
            needed = int(np.ceil(LOSSY_SCALE[1] * patch_size)) if is_lossy else 2 * patch_size
            if min(image.shape[:2]) >= needed:
                images.append(image)
                lossy.append(is_lossy)
        if not images:
            raise ValueError(f"no image is large enough (lossless >= {2 * patch_size} px, JPEG >= {int(LOSSY_SCALE[1] * patch_size)} px a side)")
        height = max(image.shape[0] for image in images)
        width = max(image.shape[1] for image in images)
        stack = torch.zeros(len(images), 3, height, width, dtype=torch.uint8)
        for index, image in enumerate(images):
            stack[index, :, : image.shape[0], : image.shape[1]] = torch.from_numpy(image.copy()).permute(2, 0, 1)
        self.stack = stack.to(self.device)
        self.sizes = torch.tensor([image.shape[:2] for image in images])
        self.lossy = torch.tensor(lossy)
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch: int) -> torch.Tensor:
        """A batch of uint8-valued patches as float32 in [0, 255], NCHW, on the device."""
        g = self.generator
        which = torch.randint(len(self.sizes), (batch,), generator=g)
        lossless_size = self.patch_size
        if float(torch.rand(1, generator=g)) < self.downscale_prob:
            lossless_size = int(self.patch_size * (1 + float(torch.rand(1, generator=g))))
        low, high = LOSSY_SCALE
        lossy_size = int(self.patch_size * (low + (high - low) * float(torch.rand(1, generator=g))))
        from_lossy = self.lossy[which]
        groups = [self._cut(which[~from_lossy], lossless_size), self._cut(which[from_lossy], lossy_size)]
        return torch.cat([group for group in groups if group is not None])

    def _cut(self, which: torch.Tensor, size: int) -> torch.Tensor | None:
        """Random ``size`` crops of images ``which``, flipped at random, resized to the patch size."""
        if len(which) == 0:
            return None
        g = self.generator
        count = len(which)
        room = self.sizes[which] - size + 1
        top = (torch.rand(count, generator=g) * room[:, 0]).long()
        left = (torch.rand(count, generator=g) * room[:, 1]).long()
        flips = torch.randint(2, (count, 2), generator=g).bool()
        offsets = torch.arange(size)
        rows = torch.where(flips[:, :1], offsets.flip(0), offsets) + top[:, None]
        cols = torch.where(flips[:, 1:], offsets.flip(0), offsets) + left[:, None]
        rows, cols, which = rows.to(self.device), cols.to(self.device), which.to(self.device)
        channels = torch.arange(3, device=self.device)
        patches = self.stack[
            which[:, None, None, None], channels[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ].float()
        if size != self.patch_size:
            patches = F.interpolate(patches, size=self.patch_size, mode="bilinear", antialias=True, align_corners=False)
            patches = patches.round().clamp(0, 255)
        return patches

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def dequantize(patches_255: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantisation to the flow's range [-0.5, 0.5]."""
    noise = torch.rand(patches_255.shape, generator=generator, device=patches_255.device)
    return (patches_255 + noise) / 256.0 - 0.5


def grid_patches(pixels: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The non-overlapping patch_size x patch_size patches of a 3xHxW image, row by row."""
    grid = pixels.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)
    return grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, patch_size, patch_size)


def heldout_patches(folder, patch_size: int, per_image: int | None = None) -> torch.Tensor:
    """Non-overlapping grid patches of every image in ``folder`` (uint8 values as float)."""
    patches = []
    for path in find_images([folder]):
        grid = grid_patches(torch.from_numpy(load_rgb_uint8(path).copy()).permute(2, 0, 1), patch_size)
        if per_image is not None and len(grid) > per_image:
            step = len(grid) / per_image
            grid = grid[[int(i * step) for i in range(per_image)]]
        patches.append(grid)
    return torch.cat(patches).float()
