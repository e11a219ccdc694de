"""A small convolutional network that scores every pixel as debris or picture.

The hand-made detector (``detect.py``) finds most dust and scratches but misses compact specks
inside texture: their contrast sits under the bar that texture raises so that texture highlights
are not flagged. What tells the two apart there is context (a highlight has siblings, a speck is
flat, neutral and sharp-edged), which a few layers of learned filters read better than a fixed
threshold. The network sees three planes that do not depend on the order of the colour channels
(the darkest and the brightest channel and their mean, so a greyscale scan is the same picture
three times) through 35 x 35 px, and gives a damage logit per pixel. It is trained on the
training photos with synthetic damage (``restorer_app.training.detector``), never on the
evaluation photos.

Convolutions are unpadded and the image is mirrored by the network's reach beforehand, so a
pixel's score depends only on its neighbourhood, whatever the tile or image size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from restorer_app.bundle import bundled_file

DEFAULT_DETECTOR_NAME = "damage-net.safetensors"
GREY_DETECTOR_NAME = "damage-net-grey.safetensors"  # the same network fine-tuned on greyscale crops only
CHANNELS_LAST = torch.channels_last  # weights and tiles in this layout: 1.7x faster convolutions on this CPU
TILE = 128  # px of output per forward pass: small enough to skip most of an image, large enough to
# keep the mirrored border (17 px a side) a small overhead


class DamageNet(nn.Module):
    """Unpadded 3x3 convolutions with growing dilation, ReLU between, a 1x1 logit at the end."""

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 1, 2, 4, 8, 1)):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for dilation in dilations:
            layers += [nn.Conv2d(channels, width, 3, dilation=dilation), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 1))
        self.body = nn.Sequential(*layers)
        self.width, self.dilations = width, tuple(dilations)
        self.reach = sum(dilations)  # px the output shrinks by on each side

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        return self.body(planes - 0.5)

    def config(self) -> dict:
        return {"width": self.width, "dilations": list(self.dilations)}


def debris_planes(image: np.ndarray) -> np.ndarray:
    """3xHxW float32: darkest channel, brightest channel, mean (alpha ignored)."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    colour = image[:, :, :1] if image.shape[2] <= 2 else image[:, :, :3]
    return np.stack([colour.min(axis=2), colour.max(axis=2), colour.mean(axis=2)])


def damage_probability(net: DamageNet, image: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Float32 HxW probability that each pixel of ``image`` (HxW[xC] in [0, 1]) is damage.

    With ``where`` (bool HxW), only the tiles holding a True pixel are scored (the rest read 0):
    the detector asks about a few candidates, and the network (width 48) costs ~2.6 s per megapixel
    on one thread of this CPU (4.2 s with its tensors in the default layout instead of channels-last).
    """
    return TileScores(net, image).at(where)


class TileScores:
    """The network's scores over one image, each 128-px tile computed when first asked for:
    the detector asks twice (loose candidates, then the margin's pixels) about mostly the same
    places."""

    def __init__(self, net: DamageNet, image: np.ndarray, before_tile: Callable[[], None] | None = None):
        """``before_tile`` is called before each tile is scored: a stop check may raise there
        (the network takes most of the detector's time)."""
        self.net = net
        self.before_tile = before_tile
        planes = debris_planes(image)
        self.height, self.width = planes.shape[1:]
        reach = net.reach
        self.padded = np.pad(planes, ((0, 0), (reach, reach), (reach, reach)), mode="symmetric")
        self.scores = np.zeros((self.height, self.width), np.float32)
        self.scored = np.zeros((-(-self.height // TILE), -(-self.width // TILE)), bool)

    def after_change(self, image: np.ndarray, changed: np.ndarray) -> "TileScores":
        """Scores of ``image``, which differs from this one's image only where ``changed``: the
        tiles already scored whose window (the tile and the network's reach) holds no changed
        pixel keep their scores instead of being computed again (the detector's second search
        on the image with its first mask filled)."""
        other = TileScores(self.net, image, self.before_tile)
        reach = self.net.reach
        for row, top in enumerate(range(0, self.height, TILE)):
            for column, left in enumerate(range(0, self.width, TILE)):
                window = changed[max(top - reach, 0) : top + TILE + reach, max(left - reach, 0) : left + TILE + reach]
                if self.scored[row, column] and not window.any():
                    tile = (slice(top, top + TILE), slice(left, left + TILE))
                    other.scores[tile] = self.scores[tile]
                    other.scored[row, column] = True
        return other

    @torch.no_grad()
    def at(self, where: np.ndarray | None = None) -> np.ndarray:
        """All scores so far (0 where not scored), after scoring the tiles that hold ``where``
        (every tile when None)."""
        reach = self.net.reach
        for row, top in enumerate(range(0, self.height, TILE)):
            for column, left in enumerate(range(0, self.width, TILE)):
                bottom, right = min(top + TILE, self.height), min(left + TILE, self.width)
                if self.scored[row, column] or (where is not None and not where[top:bottom, left:right].any()):
                    continue
                if self.before_tile is not None:
                    self.before_tile()
                window = self.padded[:, top : bottom + 2 * reach, left : right + 2 * reach]
                tile = torch.from_numpy(window)[None].contiguous(memory_format=CHANNELS_LAST)  # one copy
                logits = self.net(tile)
                self.scores[top:bottom, left:right] = torch.sigmoid(logits)[0, 0].numpy()
                self.scored[row, column] = True
        return self.scores


def save_detector(net: DamageNet, path: str | os.PathLike, info: dict | None = None) -> None:
    """Write the weights with their configuration and training record, atomically."""
    path = Path(path)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    metadata = {"restorer_detector": json.dumps({"config": net.config(), **(info or {})}, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_detector(path: str | os.PathLike | None = None, grey: bool = False) -> DamageNet:
    """The detector network from ``path`` (default: the bundled one, for greyscale scans with
    ``grey``), in eval mode on the CPU."""
    path = Path(path) if path is not None else default_detector_path(grey)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: damage detector weights not found")
    with safe_open(str(path), framework="pt") as handle:
        record = json.loads((handle.metadata() or {})["restorer_detector"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    config = record["config"]
    net = DamageNet(config["width"], tuple(config["dilations"]))
    net.load_state_dict(tensors)
    return net.to(memory_format=CHANNELS_LAST).eval()


def default_detector_path(grey: bool = False) -> Path:
    """models/ beside the package, in a source checkout or a frozen bundle."""
    return bundled_file("models", GREY_DETECTOR_NAME if grey else DEFAULT_DETECTOR_NAME)
