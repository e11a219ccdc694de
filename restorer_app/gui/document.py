"""One open scan (a tab): its pixels, the mask being painted, the editing canvas, the live
restoration preview, the before/after comparison once a result exists and the overlay of what
a restoration changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QStackedWidget

from restorer_app.gui.canvas import ImageCanvas
from restorer_app.gui.compare_view import CompareView
from restorer_app.gui.mask_layer import MaskLayer
from restorer_app.gui.pyramid import Pyramid, to_display
from restorer_app.imaging.io import ScanImage, read_image


class DocumentTab(QStackedWidget):
    """Page 0 edits (paint the mask, watch patches arrive); page 1 compares."""

    def __init__(self, scan: ScanImage, parent=None):
        super().__init__(parent)
        self.scan = scan
        self.path = Path(scan.path)
        self.base = Pyramid(to_display(scan.pixels))
        self.mask = MaskLayer(scan.pixels.shape[:2])
        self.canvas = ImageCanvas(self)
        self.canvas.set_image(self.base, self.mask)
        self.compare = CompareView(self)
        self.canvas.viewChanged.connect(self.compare.canvas.set_view)
        self.compare.canvas.viewChanged.connect(self.canvas.set_view)
        self.addWidget(self.canvas)
        self.addWidget(self.compare)
        self.output_path: Path | None = None
        self.live = False  # showing a running job's patches on a copy of the pixels
        self._live_mask: np.ndarray | None = None  # scope "mask": only these pixels change
        self.scope_choice: str | None = None  # what the user picked; None = the default for the mask
        self.changes_path: Path | None = None  # the change map shown over the image, if any

    @classmethod
    def open(cls, path, parent=None) -> "DocumentTab":
        """Read the scan; raises ImageError with a one-line reason."""
        return cls(read_image(path), parent)

    @property
    def title(self) -> str:
        return self.path.name

    # live restoration ----------------------------------------------------------------------
    def start_live(self, core: int, rows: int, cols: int, pending: np.ndarray | None = None,
                   mask: np.ndarray | None = None) -> None:
        """Show a job's patches as they come; ``pending`` marks the cells it will solve, ``mask``
        (scope "mask") the only pixels it changes."""
        self.setCurrentIndex(0)
        self.live = True
        self._live_mask = mask
        self.canvas.replace_image(self.base.copy())
        self.canvas.set_pending_grid(core, rows, cols, pending)

    def show_patch(self, box, pixels: np.ndarray) -> None:
        if self.live:  # never paint results into the original's pyramid
            shown = to_display(pixels)
            if self._live_mask is not None:  # the patch comes before paste-back: show what the output gets
                y0, x0, y1, x1 = box
                keep = ~self._live_mask[y0:y1, x0:x1]
                shown[keep] = self.base.levels[0][y0:y1, x0:x1][keep]
            self.canvas.show_patch(box, shown)

    def stop_live(self) -> None:
        self.live = False
        self._live_mask = None
        self.canvas.replace_image(self.base)
        self.canvas.clear_pending()

    # comparison -------------------------------------------------------------------------------
    def show_compare(self, output_path) -> None:
        """Compare with a finished derivative (raises ImageError if it cannot be read)."""
        after = read_image(output_path)
        if after.pixels.shape[:2] != self.scan.pixels.shape[:2]:
            raise ValueError(f"{output_path}: not the same size as {self.path.name}")
        self.output_path = Path(output_path)
        self.compare.set_images(self.base, Pyramid(to_display(after.pixels)))
        self.compare.canvas.set_view(self.canvas.zoom, *self.canvas.centre())
        self.setCurrentIndex(1)

    # changes -------------------------------------------------------------------------------------
    def show_changes(self, path) -> None:
        """Overlay the change map at ``path`` on both canvases (ImageError if unusable)."""
        from restorer_app.gui.damage import change_overlay, read_change_map

        overlay = Pyramid(change_overlay(read_change_map(path, self.scan.pixels.shape)), reduce="max")
        for canvas in (self.canvas, self.compare.canvas):
            canvas.set_changes(overlay)
        self.changes_path = Path(path)

    def hide_changes(self) -> None:
        for canvas in (self.canvas, self.compare.canvas):
            canvas.set_changes(None)
        self.changes_path = None

    @property
    def comparing(self) -> bool:
        return self.currentIndex() == 1

    def show_editor(self) -> None:
        self.setCurrentIndex(0)
