"""A small U-Net that marks damage on a scan pixel by pixel and names its kind.

The network (``DamageSegmenter``) sees the RGB image (a greyscale scan as three equal channels,
alpha ignored), shifted to [-0.5, 0.5], and gives ``1 + len(classes)`` logits per pixel:
channel 0 says damage or not (what a restorer would paint over), channels 1.. score the kind of
damage (``restorer_app.damage_sim.DAMAGE_CLASSES``: dust, hair, scratches, cracks, creases,
tears, stains), read for the provenance's "classes found". It is trained on the training photos
damaged by the simulator (``restorer_app.training.segmenter``), never on the evaluation photos.

Architecture (after milesial/Pytorch-UNet, without its batch norm and its bilinear upsampling):
five levels of two 3x3 convolutions (zero padding, ReLU), 2x2 max pooling between them on the
way down, a 2x2 stride-2 transposed convolution on the way up, concatenated with the skip
connection of the level and followed by two 3x3 convolutions again, and a 1x1 head. Widths
(16, 32, 64, 96, 128): 0.95 M parameters, a 3.8 MB file. There is no normalisation layer:
batch or group norm pools statistics over the whole tile, so a pixel's score would depend on
the tile it sits in; without it every operation is local and the network is exactly shift
equivariant on its stride (16 px). Upsampling by transposed convolution rather than
``Upsample(align_corners=True)`` for the same reason.

Receptive field (``receptive_field``, computed exactly by ``support``): 204 x 204 px at most.
Each 3x3 convolution at stride s widens it by 2 s: encoder 2 x 2 x (1 + 2 + 4 + 8 + 16) = 124,
decoder 2 x 2 x (1 + 2 + 4 + 8) = 60, so 185 px centred on the pixel; pooling and transposed
convolution add 1 + 2 + 4 + 8 px on one side or the other depending on the pixel's position on
the 16-px grid, so the window is 188 to 204 px wide and never centred: a pixel reads at most 107
px (``reach``) on either side, the least mirrored margin for exact tiling; ``margin`` rounds it
up to the stride, 112 px. (The test checks both against input gradients.)

Tiled inference (``segment``): the image is cut into tiles whose origins lie on multiples of the
stride; each tile is read with ``margin`` pixels of context on every side (mirrored
symmetrically past the image's borders, through index maps: the image is never copied whole)
and only its centre is kept. Since the margin exceeds the reach and the pooling grid of every
tile is the grid of the whole, the result equals one forward pass over the whole mirrored image
to float rounding, whatever the tile. Tiles are balanced over each axis (a 2048-px side at the
default 768 is cut in three of 688 px, not 768 + 768 + 512), so the context read around them
costs 1.76x the pixels at 2048 x 2048.

Memory: the outputs (probability float32 and classes uint8, 5 bytes a pixel, plus 4 x classes
bytes when the class probabilities are asked for) and one tile's window and activations (about
0.45 GB at the default tile: a 992 x 992 window). Measured peak RSS for a 7000 x 7000 scan, the
interpreter and torch (0.25 GB) and the caller's scan included: 1.48 GB for float32 RGB (the scan
alone 588 MB), 1.09 GB for uint8.

Speed on one thread of this CPU (channels-last weights and tiles), tiling included: 1.7 s per
megapixel for a 2048 x 2048 image (2.1-2.5 while other work loads the machine's second core),
1.4 with tiles of 1024 px (0.1 GB more); 1.6 for 7000 x 7000.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from restorer_app.bundle import bundled_file
from restorer_app.damage_sim import DAMAGE_CLASSES
from restorer_app.restore.tiling import reflect_indices


DEFAULT_SEGMENTER_NAME = "damage-segmenter.safetensors"
METADATA_KEY = "restorer_segmenter"
WIDTHS = (16, 32, 64, 96, 128)  # filters per level, full resolution first
CHANNELS_LAST = torch.channels_last  # weights and tiles in this layout: faster convolutions on the CPU
TILE = 768  # px of output per forward pass (before balancing the tiles over the image)
DEFAULT_THRESHOLD = 0.5  # probability from which a pixel is damage at sensitivity 0.5 (to be chosen on validation)
SENSITIVITY_SPAN = 4.0  # logits the threshold moves by from sensitivity 0.5 to 0 or to 1
PRIOR = 0.03  # share of damaged pixels the untrained network starts from (the simulator's median is ~2 %)
CLASS_THRESHOLD = 0.5  # probability from which a pixel gets a class in ``SegmentResult.classes``


class SegmentStopped(Exception):
    """Raised by ``segment`` when the caller's ``should_stop()`` said so (polled before each tile)."""


def _double_conv(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.ReLU(inplace=True),
    )


class DamageSegmenter(nn.Module):
    """U-Net: RGB in [0, 1] (Nx3xHxW, H and W multiples of ``stride``) -> Nx(1 + classes)xHxW logits."""

    def __init__(self, widths: Sequence[int] = WIDTHS, classes: Sequence[str] = DAMAGE_CLASSES):
        super().__init__()
        self.widths, self.classes = tuple(int(w) for w in widths), tuple(classes)
        if len(self.widths) < 2:
            raise ValueError("a U-Net needs at least two levels")
        self.down = nn.ModuleList([_double_conv(3, self.widths[0])])
        self.down.extend(_double_conv(a, b) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.merge = nn.ModuleList(_double_conv(2 * a, a) for a in self.widths[:-1])
        self.head = nn.Conv2d(self.widths[0], 1 + len(self.classes), 1)
        self.pool = nn.MaxPool2d(2)
        self.info: dict = {}  # the training record, when loaded from a file
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation (zero biases): with no normalisation layer, PyTorch's default shrinks
        the signal through the 23 layers until the scores hardly vary, and training sat at the
        base rate (soft Dice 0.88 after 300 steps on a fixed pool of examples, against 0.59 so).
        The head starts near zero with the damage logit at the prior (``PRIOR``)."""
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        with torch.no_grad():
            self.head.bias[0] = math.log(PRIOR / (1.0 - PRIOR))

    @property
    def stride(self) -> int:
        """Total downsampling: input sizes and tile origins are multiples of it."""
        return 2 ** (len(self.widths) - 1)

    def support(self, x: int) -> tuple[int, int]:
        """First and last input px (along one axis) that output px ``x`` depends on: the exact
        interval, through each 3x3 convolution (+-1 px of its level), each pooling (coarse px k
        holds fine px 2k and 2k + 1) and each transposed convolution (fine px x comes from
        coarse px x // 2)."""
        levels = len(self.widths)

        def encoder(level: int, low: int, high: int) -> tuple[int, int]:  # output of the level's convolutions
            low, high = low - 2, high + 2
            return (low, high) if level == 0 else encoder(level - 1, 2 * low, 2 * high + 1)

        def decoder(level: int, low: int, high: int) -> tuple[int, int]:  # output of the level's merge
            low, high = low - 2, high + 2
            skip = encoder(level, low, high)
            below = (decoder if level + 2 < levels else encoder)(level + 1, low // 2, high // 2)
            return min(skip[0], below[0]), max(skip[1], below[1])

        return decoder(0, x, x)

    @property
    def receptive_field(self) -> int:
        """Widest input window, in px, that one output pixel depends on (204 for five levels; the
        width varies with the pixel's position on the stride, 188 to 204)."""
        return max(high - low + 1 for low, high in map(self.support, range(self.stride)))

    @property
    def reach(self) -> int:
        """Most px an output pixel reads on one side of itself (107 for five levels)."""
        return max(max(x - low, high - x) for x in range(self.stride) for low, high in [self.support(x)])

    @property
    def margin(self) -> int:
        """Context read around each tile: the reach rounded up to the stride (112)."""
        return self.stride * math.ceil(self.reach / self.stride)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = self.down[0](rgb - 0.5)
        skips = []
        for block in self.down[1:]:
            skips.append(x)
            x = block(self.pool(x))
        for level in reversed(range(len(skips))):
            x = torch.cat([skips.pop(), self.up[level](x)], dim=1)  # the skip is released once used
            x = self.merge[level](x)
        return self.head(x)

    def config(self) -> dict:
        return {"widths": list(self.widths), "classes": list(self.classes)}


@dataclass
class SegmentResult:
    probability: np.ndarray  # float32 HxW: the network's probability that each pixel is damage
    classes: np.ndarray  # uint8 HxW: 1 + index of the likeliest class where probability >= CLASS_THRESHOLD, else 0
    class_probabilities: np.ndarray | None = None  # float32 HxWxK softmax over the classes, when asked for
    class_names: tuple[str, ...] = DAMAGE_CLASSES  # the network's classes, in the order of their ids 1..K

    def classes_found(self, mask: np.ndarray | None = None, min_pixels: int = 1) -> list[str]:
        """Names of the classes with at least ``min_pixels`` pixels (inside ``mask`` if given)."""
        labels = self.classes if mask is None else self.classes[mask]
        counts = np.bincount(labels.ravel(), minlength=len(self.class_names) + 1)
        return [name for name, count in zip(self.class_names, counts[1:]) if count >= min_pixels]


def _spans(size: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """(start, stop) of the output tiles along one axis: as many as ``tile`` needs, made equal and
    rounded up to the stride so the last one is not a sliver; every start is a multiple of the stride."""
    count = max(1, math.ceil(size / tile))
    step = stride * math.ceil(math.ceil(size / count) / stride)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def _channel_picker(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image as HxWxC and the channels that make its RGB (a grey one three times; alpha dropped)."""
    if image.ndim == 2:
        return image[:, :, None], np.zeros(3, np.intp)
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an HxW or HxWxC image (C = 1, 2, 3 or 4), got shape {image.shape}")
    return image, (np.zeros(3, np.intp) if image.shape[2] <= 2 else np.arange(3))


def _as_unit_float(window: np.ndarray) -> np.ndarray:
    if window.dtype == np.uint8:
        return window.astype(np.float32) / 255.0
    if window.dtype == np.uint16:
        return window.astype(np.float32) / 65535.0
    return window.astype(np.float32, copy=False)


@torch.no_grad()
def segment(net: DamageSegmenter, image: np.ndarray, tile: int = TILE,
            on_tile: Callable[[int, int], None] | None = None, should_stop: Callable[[], bool] | None = None,
            class_threshold: float = CLASS_THRESHOLD, class_probabilities: bool = False) -> SegmentResult:
    """The network's damage probability and classes over ``image`` (HxW or HxWxC, C = 1-4, float
    in [0, 1], or uint8 / uint16 read as such; any size), tile by tile.

    Equal, to float rounding, to one forward pass over the image mirrored (symmetrically) by
    ``net.margin`` and padded on to a multiple of ``net.stride``. ``should_stop()`` is polled
    before each tile (``SegmentStopped``); ``on_tile(done, total)`` is called after each.
    ``class_probabilities``: also return the classes' softmax (4 x classes bytes a pixel)."""
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    image, channels = _channel_picker(np.asarray(image))
    height, width = image.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"image of {width}x{height} pixels has nothing to segment")
    margin, stride = net.margin, net.stride

    def window_size(start: int, stop: int) -> int:  # the tile and its context, rounded up to the stride
        return stride * math.ceil((stop - start + 2 * margin) / stride)

    rows, cols = _spans(height, tile, stride), _spans(width, tile, stride)
    total = len(rows) * len(cols)
    kinds = len(net.classes)
    probability = np.empty((height, width), np.float32)
    classes = np.empty((height, width), np.uint8)
    softmax = np.empty((height, width, kinds), np.float32) if class_probabilities else None
    done = 0
    for top, bottom in rows:
        row_index = reflect_indices(top - margin, window_size(top, bottom), height)
        for left, right in cols:
            if should_stop is not None and should_stop():
                raise SegmentStopped(f"stopped after {done} of {total} tiles")
            col_index = reflect_indices(left - margin, window_size(left, right), width)
            window = image[row_index[:, None, None], col_index[None, :, None], channels]  # one tile-sized copy
            window = np.ascontiguousarray(_as_unit_float(window))
            rgb = torch.from_numpy(window)[None].permute(0, 3, 1, 2)  # NCHW view, channels-last in memory
            logits = net(rgb)[0, :, margin : margin + bottom - top, margin : margin + right - left]
            damage = torch.sigmoid(logits[0])
            probability[top:bottom, left:right] = damage.numpy()
            kind = logits[1:].argmax(dim=0).to(torch.uint8) + 1
            classes[top:bottom, left:right] = torch.where(damage >= class_threshold, kind, 0).numpy()
            if softmax is not None:
                softmax[top:bottom, left:right] = torch.softmax(logits[1:], dim=0).permute(1, 2, 0).numpy()
            del logits, damage, kind
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    return SegmentResult(probability, classes, softmax, net.classes)


def sensitivity_threshold(sensitivity: float) -> float:
    """The probability threshold for a sensitivity in [0, 1]: 0.5 gives ``DEFAULT_THRESHOLD``;
    each step away moves the threshold's logit linearly, by ``SENSITIVITY_SPAN`` logits at the
    ends: threshold = sigmoid(logit(DEFAULT_THRESHOLD) + SENSITIVITY_SPAN * (1 - 2 * sensitivity)).
    With the default 0.5, sensitivity 0 -> 0.982 (only the surest damage), 0.25 -> 0.881,
    0.75 -> 0.119, 1 -> 0.018 (nearly anything the network doubts). Strictly decreasing."""
    sensitivity = float(sensitivity)
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must lie in [0, 1], got {sensitivity}")
    logit = math.log(DEFAULT_THRESHOLD / (1.0 - DEFAULT_THRESHOLD))
    return 1.0 / (1.0 + math.exp(-(logit + SENSITIVITY_SPAN * (1.0 - 2.0 * sensitivity))))


def save_segmenter(net: DamageSegmenter, path: str | os.PathLike, info: dict | None = None) -> None:
    """Write the weights with their configuration and training record, atomically."""
    path = Path(path)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    metadata = {METADATA_KEY: json.dumps({"config": net.config(), **(info or {})}, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_segmenter(path: str | os.PathLike | None = None) -> DamageSegmenter:
    """The segmenter from ``path`` (default: the bundled one), in eval mode on the CPU, with its
    training record (the file's metadata less the config) in ``net.info``."""
    path = Path(path) if path is not None else default_segmenter_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: damage segmenter weights not found")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if METADATA_KEY not in metadata:
            raise ValueError(f"{path}: not damage segmenter weights (no {METADATA_KEY} metadata)")
        record = json.loads(metadata[METADATA_KEY])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    config = record.pop("config")
    net = DamageSegmenter(config["widths"], config["classes"])
    net.load_state_dict(tensors)
    net.info = record
    return net.to(memory_format=CHANNELS_LAST).eval()


def default_segmenter_path() -> Path:
    """models/ beside the package, in a source checkout or a frozen bundle."""
    return bundled_file("models", DEFAULT_SEGMENTER_NAME)
