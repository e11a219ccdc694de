"""The image view: zoom, pan, mask painting, live patches and the before/after split.

Drawing reads 256x256 tiles of the pyramid level nearest the zoom and keeps them as cached
QImages, so a repaint of a 50-megapixel 16-bit scan touches a screenful of 8-bit pixels and
never converts the image. The mask overlay is an Indexed8 tile per tile (0/1 bytes straight
from the mask pyramid; colour and opacity live in its two-entry colour table). The change-map
overlay ("Show changes") is an RGBA pyramid whose unchanged pixels are fully transparent.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from restorer_app.gui.mask_layer import MaskLayer
from restorer_app.gui.pyramid import Pyramid

TILE = 256
CACHE_TILES = 1500
ZOOM_MIN, ZOOM_MAX = 1 / 256, 64.0
ZOOM_STEP = 1.25


class ImageCanvas(QWidget):
    """Shows one pyramid (or two, split at ``split``); paints into a MaskLayer."""

    viewChanged = Signal(float, float, float)  # zoom, centre x, centre y (image pixels)
    strokeFinished = Signal()
    brushChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(200, 150)
        self.setCursor(Qt.CrossCursor)
        self.pyramid: Pyramid | None = None
        self.after: Pyramid | None = None
        self.split = 0.5  # fraction of the widget width showing "before" in compare mode
        self.mask_layer: MaskLayer | None = None
        self._mask_pyramid: Pyramid | None = None
        self.show_mask = True
        self.tool = "brush"  # brush | eraser | pan
        self.zoom = 1.0
        self.origin = QPointF(0, 0)  # image point at the widget's top-left corner
        self._cache: OrderedDict = OrderedDict()
        self.set_overlay(QColor(255, 40, 40), 0.5)
        self._pending: np.ndarray | None = None  # uint8 rows x cols, 1 = not yet restored
        self._changes: Pyramid | None = None  # RGBA overlay of what a restoration changed
        self._core = 0
        self._drag: tuple[str, QPointF] | None = None
        self._mouse: QPointF | None = None
        self._fitted = False

    # content ---------------------------------------------------------------------------------
    def set_image(self, pyramid: Pyramid, mask_layer: MaskLayer | None = None) -> None:
        self.pyramid, self.mask_layer = pyramid, mask_layer
        self._mask_pyramid = None
        if mask_layer is not None:
            self._mask_pyramid = Pyramid(mask_layer.mask.view(np.uint8), reduce="max")
            mask_layer.listeners.append(self._mask_changed)
        self._cache.clear()
        self._fitted = False
        self.fit()

    def set_after(self, after: Pyramid | None) -> None:
        """Enter (or with None leave) compare mode: before left of the split, after right."""
        self.after = after
        self._drop("after")
        self.update()

    def set_split(self, fraction: float) -> None:
        self.split = min(1.0, max(0.0, fraction))
        self.update()

    def set_overlay(self, colour: QColor, opacity: float) -> None:
        self.overlay_colour, self.overlay_opacity = QColor(colour), float(opacity)
        tint = QColor(colour)
        tint.setAlphaF(min(1.0, max(0.0, opacity)))
        self._overlay_table = [0, tint.rgba()]
        for key, (_, image) in self._cache.items():
            if key[0] == "mask":
                image.setColorTable(self._overlay_table)
        self.update()

    def show_patch(self, box, pixels8: np.ndarray) -> None:
        """Put restored 8-bit pixels in place (the live preview) and mark the cells under them done."""
        self.pyramid.write(box, pixels8)
        self._invalidate("before", box)
        if self._pending is not None and self._core:
            y0, x0, y1, x1 = box
            self._pending[y0 // self._core : (y1 - 1) // self._core + 1, x0 // self._core : (x1 - 1) // self._core + 1] = 0
        self.update()

    def set_pending_grid(self, core: int, rows: int, cols: int, pending: np.ndarray | None = None) -> None:
        """Draw the tile grid lightly over cells not restored yet (core = cell size); ``pending``
        (bool rows x cols) says which cells will be solved, default all of them."""
        self._core = core
        if not core:
            self._pending = None
        elif pending is None:
            self._pending = np.ones((rows, cols), dtype=np.uint8)
        else:
            self._pending = np.ascontiguousarray(pending, dtype=np.uint8)
        self.update()

    def set_changes(self, rgba: "np.ndarray | Pyramid | None") -> None:
        """Overlay an RGBA uint8 HxWx4 picture of the changes (None removes it). Its pyramid
        keeps the per-channel maximum, so a one-pixel change stays visible when zoomed out."""
        self._changes = rgba if rgba is None or isinstance(rgba, Pyramid) else Pyramid(rgba, reduce="max")
        self._drop("changes")
        self.update()

    @property
    def showing_changes(self) -> bool:
        return self._changes is not None

    def clear_pending(self) -> None:
        self._pending = None
        self.update()

    def replace_image(self, pyramid: Pyramid) -> None:
        """Swap the shown pixels (e.g. back to the original) keeping view and mask."""
        self.pyramid = pyramid
        self._drop("before")
        self.update()

    # view --------------------------------------------------------------------------------------
    def fit(self) -> None:
        if self.pyramid is None or self.width() <= 1:
            return
        h, w = self.pyramid.shape
        self.set_view(min(self.width() / w, self.height() / h) * 0.98, w / 2, h / 2)

    def actual_size(self) -> None:
        self.set_view(1.0, *self.centre())

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        fixed = self.to_image(anchor)
        self.zoom = float(min(ZOOM_MAX, max(ZOOM_MIN, self.zoom * factor)))
        self.origin = fixed - anchor / self.zoom
        self._view_changed()

    def centre(self) -> tuple[float, float]:
        c = self.to_image(QPointF(self.width() / 2, self.height() / 2))
        return c.x(), c.y()

    def set_view(self, zoom: float, cx: float, cy: float) -> None:
        """Show image point (cx, cy) at the centre at ``zoom``; how compare views stay in step."""
        if abs(zoom - self.zoom) < 1e-12 and abs(cx - self.centre()[0]) < 1e-6 and abs(cy - self.centre()[1]) < 1e-6:
            return
        self.zoom = float(min(ZOOM_MAX, max(ZOOM_MIN, zoom)))  # numpy scalars break Qt's bool/int args
        self.origin = QPointF(cx - self.width() / 2 / self.zoom, cy - self.height() / 2 / self.zoom)
        self._view_changed()

    def to_image(self, p: QPointF) -> QPointF:
        return self.origin + p / self.zoom

    def _view_changed(self) -> None:
        self.update()
        self.viewChanged.emit(self.zoom, *self.centre())

    def resizeEvent(self, event) -> None:
        if not self._fitted and self.pyramid is not None and self.width() > 1:
            self._fitted = True
            self.fit()
        super().resizeEvent(event)

    # painting ------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(48, 48, 48))
        if self.pyramid is None:
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignCenter, "Open a scan (Ctrl+O) or drop image files here")
            return
        painter.setRenderHint(QPainter.SmoothPixmapTransform, self.zoom < 1.0)
        split_x = self.width() * self.split if self.after is not None else self.width()
        painter.save()
        painter.setClipRect(QRectF(0, 0, split_x, self.height()))
        self._draw_tiles(painter, "before", self.pyramid)
        painter.restore()
        if self.after is not None:
            painter.save()
            painter.setClipRect(QRectF(split_x, 0, self.width() - split_x, self.height()))
            self._draw_tiles(painter, "after", self.after)
            painter.restore()
            painter.setPen(QPen(QColor(255, 255, 255), 2))
            painter.drawLine(QPointF(split_x, 0), QPointF(split_x, self.height()))
        elif self.show_mask and self._mask_pyramid is not None and self._changes is None:  # never both in red
            self._draw_tiles(painter, "mask", self._mask_pyramid)
        if self._changes is not None:
            self._draw_tiles(painter, "changes", self._changes)
        if self._pending is not None and self.after is None:
            self._draw_pending(painter)
        if self._mouse is not None and self.mask_layer is not None and self.after is None and self.tool != "pan":
            painter.setRenderHint(QPainter.Antialiasing)
            r = self.mask_layer.radius * self.zoom
            for colour, width in ((QColor(0, 0, 0, 160), 3), (QColor(255, 255, 255), 1)):
                painter.setPen(QPen(colour, width))
                painter.drawEllipse(self._mouse, r, r)

    def _draw_tiles(self, painter: QPainter, kind: str, pyramid: Pyramid) -> None:
        level = pyramid.level_for(self.zoom)
        scale = 2**level  # image pixels per level pixel
        data = pyramid.levels[level]
        lh, lw = data.shape[:2]
        top_left = self.to_image(QPointF(0, 0))
        bottom_right = self.to_image(QPointF(self.width(), self.height()))
        tx0, ty0 = max(0, int(top_left.x() / scale) // TILE), max(0, int(top_left.y() / scale) // TILE)
        tx1 = min((lw - 1) // TILE, int(bottom_right.x() / scale) // TILE)
        ty1 = min((lh - 1) // TILE, int(bottom_right.y() / scale) // TILE)
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                image = self._tile(kind, pyramid, level, ty, tx)
                x, y = tx * TILE * scale, ty * TILE * scale
                target = QRectF((x - self.origin.x()) * self.zoom, (y - self.origin.y()) * self.zoom,
                                image.width() * scale * self.zoom, image.height() * scale * self.zoom)
                painter.drawImage(target, image)

    def _tile(self, kind: str, pyramid: Pyramid, level: int, ty: int, tx: int) -> QImage:
        key = (kind, level, ty, tx)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit[1]
        block = np.ascontiguousarray(pyramid.levels[level][ty * TILE : (ty + 1) * TILE, tx * TILE : (tx + 1) * TILE])
        h, w = block.shape[:2]
        if kind == "mask":
            image = QImage(block.data, w, h, w, QImage.Format_Indexed8)
            image.setColorTable(self._overlay_table)
        elif kind == "changes":
            image = QImage(block.data, w, h, 4 * w, QImage.Format_RGBA8888)
        else:
            image = QImage(block.data, w, h, 3 * w, QImage.Format_RGB888)
        self._cache[key] = (block, image)  # the array owns the bytes the QImage points at
        if len(self._cache) > CACHE_TILES:
            self._cache.popitem(last=False)
        return image

    def image_rect(self) -> QRectF:
        """Where the image lies on the widget."""
        h, w = self.pyramid.shape
        return QRectF(-self.origin.x() * self.zoom, -self.origin.y() * self.zoom, w * self.zoom, h * self.zoom)

    def _draw_pending(self, painter: QPainter) -> None:
        """Shade and outline the cells still to come; the last row and column of cells reach
        past the image's edge (tiles are padded), so everything is clipped to the image."""
        painter.save()
        painter.setClipRect(self.image_rect())
        self._draw_pending_cells(painter)
        painter.restore()

    def _draw_pending_cells(self, painter: QPainter) -> None:
        rows, cols = self._pending.shape
        cell = self._core * self.zoom
        target = QRectF(-self.origin.x() * self.zoom, -self.origin.y() * self.zoom, cols * cell, rows * cell)
        shade = QImage(self._pending.data, cols, rows, cols, QImage.Format_Indexed8)
        shade.setColorTable([0, QColor(255, 255, 255, 40).rgba()])
        painter.setRenderHint(QPainter.SmoothPixmapTransform, False)
        painter.drawImage(target, shade)
        if cell < 8:
            return
        painter.setPen(QPen(QColor(255, 255, 255, 70), 1))
        first = self.to_image(QPointF(0, 0))
        last = self.to_image(QPointF(self.width(), self.height()))
        r0, r1 = max(0, int(first.y() // self._core)), min(rows, int(last.y() // self._core) + 1)
        c0, c1 = max(0, int(first.x() // self._core)), min(cols, int(last.x() // self._core) + 1)
        for r, c in zip(*np.nonzero(self._pending[r0:r1, c0:c1])):
            painter.drawRect(QRectF(target.x() + (c + c0) * cell, target.y() + (r + r0) * cell, cell, cell))

    def _invalidate(self, kind: str, box) -> None:
        y0, x0, y1, x1 = box
        for key in [k for k in self._cache if k[0] == kind]:
            _, level, ty, tx = key
            span = TILE * 2**level
            if ty * span < y1 and (ty + 1) * span > y0 and tx * span < x1 and (tx + 1) * span > x0:
                del self._cache[key]

    def _drop(self, kind: str) -> None:
        for key in [k for k in self._cache if k[0] == kind]:
            del self._cache[key]

    def _mask_changed(self, box) -> None:
        self._mask_pyramid.update(box)
        self._invalidate("mask", box)
        self.update()

    # input ------------------------------------------------------------------------------------------
    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps, event.position())

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        paintable = self.mask_layer is not None and self.after is None and self.tool != "pan"
        if event.button() == Qt.LeftButton and paintable and not (event.modifiers() & Qt.ShiftModifier):
            p = self.to_image(pos)
            self._drag = ("paint", pos)
            self.mask_layer.begin_stroke(p.x(), p.y(), erase=self.tool == "eraser" or bool(event.modifiers() & Qt.AltModifier))
        elif event.button() in (Qt.LeftButton, Qt.MiddleButton):
            self._drag = ("pan", pos)
            self.setCursor(Qt.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        self._mouse = pos
        if self._drag and self._drag[0] == "paint":
            p = self.to_image(pos)
            self.mask_layer.stroke_to(p.x(), p.y())
        elif self._drag and self._drag[0] == "pan":
            self.origin = self.origin - (pos - self._drag[1]) / self.zoom
            self._drag = ("pan", pos)
            self._view_changed()
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag and self._drag[0] == "paint":
            self.mask_layer.end_stroke()
            self.strokeFinished.emit()
        self._drag = None
        self.setCursor(Qt.CrossCursor)

    def leaveEvent(self, event) -> None:
        self._mouse = None
        self.update()

    def resize_brush(self, factor: float) -> None:
        if self.mask_layer is not None:
            self.brushChanged.emit(self.mask_layer.resize_brush(factor))
            self.update()
