"""What :func:`~restorer_app.damage_sim.simulate` draws: the damage classes and the knobs (SimSpec).

Choices, stated once:
- The damaged fraction (share of pixels in the mask) is drawn per image log-uniformly from
  ``fraction``; the default (0.3 %, 15 %) gives a median of about 2 %, so light and heavy damage
  both occur often.
- Per image, each enabled class's weight is multiplied by a Gamma(``mix_concentration``, 1)
  draw and the pixel budget is split in proportion, so most images are dominated by one or two
  kinds of damage (as real prints are: a crack web, or a dusty film scan) rather than a fixed mix.
- Tone "random" picks keep / grey / sepia / cyanotype with ``tone_probs``
  (default 0.30 / 0.30 / 0.30 / 0.10).
- ``debris_scale``: the log-uniform range of the scale of real debris shapes (dust, dirt, hairs)
  relative to the 35 mm film scans they were annotated on (about 4,950 px a frame); the default
  0.5-2x covers scans of prints at different dpi. Procedural debris sizes are multiplied by the
  range's geometric mean (1 for the default).
- ``plate_crack_share``: the share of cracks drawn as a glass-plate crack (long smooth arcs in
  the print's own tone, cracks.py); the rest are branching cracks and craquelure webs.
- The finish: film grain of std drawn from U(``grain``) on the 0..255 scale, a Gaussian blur of
  sigma from U(``blur``) (skipped below 0.2 px), then with probability ``jpeg_prob`` a JPEG
  round trip at a quality from U(``jpeg``) (integers, inclusive); ``jpeg=None`` disables JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The damage classes; a class id is its index + 1 (0 = clean).
DAMAGE_CLASSES: tuple[str, ...] = (
    "dust", "hair", "print_scratch", "film_scratch", "crack", "crease", "tear", "stain",
)

#: Relative pixel-budget weights of the default spec.
DEFAULT_WEIGHTS: dict[str, float] = {
    "dust": 1.0, "hair": 0.6, "print_scratch": 0.8, "film_scratch": 0.4,
    "crack": 1.0, "crease": 0.5, "tear": 0.5, "stain": 0.6,
}

DEFAULT_TONE_PROBS: dict[str, float] = {"keep": 0.30, "grey": 0.30, "sepia": 0.30, "cyanotype": 0.10}


def class_id(name: str) -> int:
    """The id of a damage class (1..8)."""
    return DAMAGE_CLASSES.index(name) + 1


@dataclass
class SimSpec:
    """How to damage one image. ``classes``: class name -> relative weight (absent or 0 = off)."""

    classes: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    fraction: tuple[float, float] = (0.003, 0.15)
    mix_concentration: float = 0.6
    tone: str = "random"
    tone_probs: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TONE_PROBS))
    grain: tuple[float, float] = (0.0, 6.0)
    blur: tuple[float, float] = (0.0, 1.0)
    jpeg: tuple[int, int] | None = (50, 95)
    jpeg_prob: float = 0.5
    debris_scale: tuple[float, float] = (0.5, 2.0)
    plate_crack_share: float = 0.3

    def __post_init__(self) -> None:
        unknown = set(self.classes) - set(DAMAGE_CLASSES)
        if unknown:
            raise ValueError(f"unknown damage classes {sorted(unknown)}; expected some of {DAMAGE_CLASSES}")
        if not any(w > 0 for w in self.classes.values()):
            raise ValueError("SimSpec needs at least one class with a positive weight")
        lo, hi = self.fraction
        if not 0 < lo <= hi < 1:
            raise ValueError(f"fraction must satisfy 0 < low <= high < 1, got {self.fraction}")
        if not 0.0 <= self.plate_crack_share <= 1.0:
            raise ValueError(f"plate_crack_share must lie in [0, 1], got {self.plate_crack_share}")

    @classmethod
    def only(cls, *names: str, finish: bool = True, **kwargs) -> "SimSpec":
        """A spec with just ``names`` enabled (equal weights); ``finish=False`` turns off grain,
        blur and JPEG, so ``image`` equals ``clean`` outside the mask."""
        if not finish:
            kwargs = {"grain": (0.0, 0.0), "blur": (0.0, 0.0), "jpeg": None, **kwargs}
        return cls(classes={n: 1.0 for n in names}, **kwargs)
