"""Simulated photo damage with exact masks, for training and testing damage detection and repair.

``simulate(clean, rng, spec, shapes)`` tones a clean photo (tones.py), draws dust, hairs,
print and film scratches, cracks, creases, tears and stains into it (one module each), and
applies the same scan finish to the damaged and clean pictures (finish.py). Dust, dirt and hair
shapes come from real annotated film debris when a :class:`ShapeLibrary` is given
(``default_shape_library()``), else they are drawn procedurally. numpy, OpenCV and Pillow only.
"""

from .shapes import ShapeLibrary, default_shape_library
from .simulate import SimulatedDamage, simulate
from .spec import DAMAGE_CLASSES, SimSpec
from .tones import TONES

#: Bumped whenever what ``simulate`` draws changes: a trained segmenter records the version it saw.
SIM_VERSION = "3"

__all__ = ["SIM_VERSION", "DAMAGE_CLASSES", "SimSpec", "SimulatedDamage", "simulate", "ShapeLibrary",
           "default_shape_library", "TONES"]
