"""What a restoration is asked to do: preset, strength, device, seed, model.

Presets are coarse-to-fine schedules: a list of (number of finest levels still held at their
predicted means excluded, steps), optionally averaged over mirrored views (``flips``). Every preset
averages a short path over the patch and its three mirror images rather than running one long path:
longer optimisation drifts away from the early iterate (a lower lambda makes it worse still), and
the mirrors cancel most of the 8-pixel checkerboard of the deepest latent grid.

Measured (benchmarks/results/quality_log.md, Kodak24 2 crops, auto strength), noise25: one 100-step
path 28.46 / the paper's schedule (50 steps on the deepest latent, 50 more after adding each finer
level, then 150 on all of them together) 27.70 / 500 plain steps 27.39 / ``best`` 29.10 dB; multi
27.56 / 27.28 / 27.14 / 27.65. ``standard`` (4 mirrors x 50 steps) beats the paper's 300-step path
on noise and JPEG at 2/3 of its cost. ``fast`` spends the 100 step-units of one 100-step path on four
mirrors of a 25-step path: 1.5x the checkerboard floor against 3.9x, +0.2 dB on noise, +0.08 on
JPEG, +0.3 on holes. Clean scans with holes are the exception: filling a hole needs the longer
schedule (damaged pixels 100 steps 25.33 / 300 steps 25.66 / 4 mirrors of 100 steps 25.75 / 4
mirrors of 300 steps 26.07 dB, Telea 24.97), so ``best`` switches to its ``holes_only`` schedule when
the plan finds a mask and next to no noise (pipeline.HOLES_ONLY_SIGMA).

Each preset's step is scaled to the bundled prior (models/flow-prior.md). With these steps it beats
the stage-2 prior at that prior's own steps on the validation split (8 Kodak24 crops; noise 25 /
JPEG q20 / holes and scratches inside the damage / holes + noise + JPEG, dB): ``fast`` +0.30 /
+0.11 / +0.31 / +0.53 / +0.17, ``standard`` +0.42 / +0.11 / +0.35 / +0.63 / +0.10, ``best`` +0.73 /
+0.07 / +0.38 / +0.54 / +0.02 (holes and scratches on 4 crops).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Of the automatic damage mask (``restore.damage_finder``), 0-1. 0: the hand-set chain alone
#: (crisp debris); above 0 the learned segmenter adds realistic damage, the more the higher, and
#: marks more of the picture. 0 by default: on real scans at 0.5 it marks highlights in foliage and
#: water (2.5 % of an autochrome), ropes, rails, eyes and noses as damage, which a restoration
#: would repaint.
DEFAULT_SENSITIVITY = 0.0

PRESETS: dict[str, dict] = {
    # stages: (levels optimised, steps); lr: Adam step on the latents; fp32_tail: last steps in fp32.
    # The step belongs to the prior: the bundled prior moves slowly from the blurred start and
    # needs twice the stage-2 prior's step (three times for best) to bring texture back within
    # the same steps (validation split).
    # fast: 25 steps on the patch and its three mirror images: the same 100 step-units as one
    # 100-step path, a quarter of its 8-pixel checkerboard and better on every damage
    "fast": {"stages": [(1, 6), (2, 6), (3, 13)], "lr": 6e-2, "fp32_tail": 5, "flips": 4},
    # standard: 50 steps on the patch and its three mirror images (beats the paper's single
    # 300-step path on noise and JPEG at 2/3 of its cost); holes in a clean scan take the
    # 100-step path at a smaller step under the same mirrors, except in a window less than
    # ``below`` damaged (specks: a scratch across it is more), where the known pixels decide the
    # fill and a quarter of the steps at the larger step does as well (pipeline.slice_batches;
    # scratches unchanged on validation and test, realistic dust 1.7x faster: lab notebook E106)
    "standard": {
        "stages": [(1, 10), (2, 10), (3, 30)],
        "lr": 4e-2,
        "fp32_tail": 10,
        "flips": 4,
        "holes_only": {"stages": [(1, 20), (2, 20), (3, 60)], "lr": 1e-2, "fp32_tail": 20,
                       "light": {"stages": [(1, 5), (2, 5), (3, 15)], "lr": 4e-2, "fp32_tail": 5, "below": 0.01}},
    },
    # best: the 100-step path on the patch and its three mirror images, averaged (self-ensemble)
    "best": {
        "stages": [(1, 20), (2, 20), (3, 60)],
        "lr": 3e-2,
        "fp32_tail": 20,
        "flips": 4,
        "holes_only": {"stages": [(1, 50), (2, 50), (3, 200)], "lr": 1e-2, "fp32_tail": 50},
    },
}


@dataclass
class RestoreSettings:
    preset: str = "standard"
    strength: str | float = "auto"
    device: str = "auto"
    seed: int = 0
    model_path: str | None = None
    batch_size: int | None = None
    mixed_precision: bool = True
    scope: str = "auto"  # "mask": only masked pixels change; "image": all; "auto": mask if given
    sensitivity: float = DEFAULT_SENSITIVITY  # of the automatic damage mask (--mask auto)

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r}: expected one of {', '.join(PRESETS)}")
        if isinstance(self.strength, str) and self.strength != "auto":
            try:
                self.strength = float(self.strength)
            except ValueError:
                raise ValueError(f"strength {self.strength!r}: expected 'auto' or a number") from None
        if not isinstance(self.strength, str) and not self.strength > 0:
            raise ValueError(f"strength {self.strength}: must be a positive number")
        if not 0.0 <= float(self.sensitivity) <= 1.0:
            raise ValueError(f"sensitivity {self.sensitivity}: must lie between 0 and 1")
        self.sensitivity = float(self.sensitivity)
        if self.scope not in ("auto", "mask", "image"):
            raise ValueError(f"scope {self.scope!r}: expected mask, image or auto")

    @property
    def schedule(self) -> dict:
        return PRESETS[self.preset]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RestoreSettings":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
