"""Damage and changes in the GUI: the detector run off the GUI thread, and the colours of the
"Show changes" overlay.

The detector is the same call a job with ``mask_path="auto"`` makes
(``restorer_app.jobs.restore_file.load_mask``), so "Detect damage" on screen suggests exactly
the mask an automatic job would use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QThread, Signal

from restorer_app.gui.messages import short_error
from restorer_app.imaging.errors import ImageError
from restorer_app.jobs.restore_file import AUTO_MASK, changes_path, load_mask
from restorer_app.restore.detect import DetectionStopped

#: Opacity (0-255) of a synthesised pixel, and of a cleaned one that moved CHANGES_FULL levels or
#: more; a cleaned pixel that moved less is more transparent (down to CHANGES_FAINT for one
#: level), so a whole-image cleaning tints the picture instead of hiding it. Unchanged pixels
#: are fully transparent.
CHANGES_ALPHA = 180
CHANGES_FAINT = 70
CHANGES_FULL = 32
#: Lowest brightness of a nonzero green/blue channel, so a change of one level is still seen.
CHANGES_FLOOR = 128

class DetectWorker(QThread):
    """Runs the damage detector on one scan; ``found(doc, mask)`` or ``failed(doc, line)``."""

    found = Signal(object, object)  # the DocumentTab it ran for, bool HxW
    failed = Signal(object, str)

    def __init__(self, doc, sensitivity: float, parent=None):
        super().__init__(parent)
        self.doc, self.sensitivity = doc, sensitivity
        self.scan = doc.scan  # read-only here; the GUI never changes a scan's pixels
        self._stop = False

    def request_stop(self) -> None:
        """Stop within a few seconds, reporting nothing (the window is closing)."""
        self._stop = True

    def run(self) -> None:
        try:
            mask = load_mask(AUTO_MASK, self.scan, should_stop=lambda: self._stop, sensitivity=self.sensitivity)
            mask = np.asarray(mask, dtype=bool)
            shape = self.scan.pixels.shape[:2]
            if mask.shape != shape:
                raise ValueError(f"the detector returned a {mask.shape[-1]}x{mask.shape[0]} mask "
                                 f"for a {shape[1]}x{shape[0]} image")
        except DetectionStopped:
            return
        except MemoryError:
            self.failed.emit(self.doc, f"{self.scan.path}: not enough memory to look for damage")
        except Exception as exc:  # one line for the user; never a traceback
            self.failed.emit(self.doc, f"Detect damage: {short_error(exc)}")
        else:
            self.found.emit(self.doc, mask)


def change_overlay(changes: np.ndarray) -> np.ndarray:
    """The change map (uint8 HxWx3, see restorer_app.restore.changes) as an RGBA overlay.

    Red stays red (synthesised pixels); green (how far a cleaned pixel moved; not shown on
    synthesised pixels, which would turn them yellow) and blue (uncertainty) are brightened on
    a log scale so a one-level change is visible and 255 stays brightest. Small moves are also
    more transparent; pixels the restoration left alone are fully transparent.
    """
    changes = np.asarray(changes, dtype=np.uint8)
    out = np.zeros(changes.shape[:2] + (4,), dtype=np.uint8)
    out[:, :, 0] = changes[:, :, 0]
    synthesised = changes[:, :, 0] > 0
    for channel in (1, 2):
        value = changes[:, :, channel].astype(np.float32)
        lifted = CHANGES_FLOOR + (255 - CHANGES_FLOOR) * np.log1p(value) / np.log(256.0)
        shown = (value > 0) & ~synthesised if channel == 1 else value > 0
        out[:, :, channel] = np.where(shown, np.rint(lifted), 0).astype(np.uint8)
    moved = np.minimum(1.0, np.log1p(changes[:, :, 1].astype(np.float32)) / np.log1p(CHANGES_FULL))
    alpha = np.where(synthesised, CHANGES_ALPHA, np.rint(CHANGES_FAINT + (CHANGES_ALPHA - CHANGES_FAINT) * moved))
    out[:, :, 3] = np.where(changes.any(axis=2), alpha, 0).astype(np.uint8)
    return out


def read_change_map(path, shape) -> np.ndarray:
    """Read ``<output>.changes.png``; ImageError if it is missing, unreadable or another size."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.size != (shape[1], shape[0]):  # checked on the header, before decoding
                raise ImageError(path, f"change map is {image.size[0]}x{image.size[1]} pixels but the image is "
                                       f"{shape[1]}x{shape[0]}")
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise ImageError(path, "no change map (it is written beside each new output)") from None
    except (OSError, ValueError) as exc:
        raise ImageError(path, f"cannot read the change map ({exc})") from None


def change_map_for(output_path) -> Path | None:
    """``<output>.changes.png`` if it exists."""
    path = changes_path(output_path)
    return path if path.is_file() else None
