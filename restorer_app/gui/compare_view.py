"""Before/after comparison: one canvas showing both images split by a slider, so zoom and
pan are shared by construction; buttons jump to all-before or all-after (a toggle)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from restorer_app.gui.canvas import ImageCanvas
from restorer_app.gui.pyramid import Pyramid


class CompareView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = ImageCanvas(self)
        self.canvas.tool = "pan"
        self.slider = QSlider(Qt.Horizontal, minimum=0, maximum=1000, value=500)
        self.slider.setToolTip("Drag to move the split between before (left) and after (right)")
        self.slider.valueChanged.connect(lambda v: self.canvas.set_split(v / 1000))
        before, after = QPushButton("Before"), QPushButton("After")
        before.clicked.connect(lambda: self.slider.setValue(1000))
        after.clicked.connect(lambda: self.slider.setValue(0))
        self.toggle = QPushButton("Toggle (T)")
        self.toggle.setShortcut("T")
        self.toggle.clicked.connect(lambda: self.slider.setValue(0 if self.slider.value() > 500 else 1000))
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Before"))
        bar.addWidget(self.slider, 1)
        bar.addWidget(QLabel("After"))
        for button in (before, after, self.toggle):
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(bar)

    def set_images(self, before: Pyramid, after: Pyramid) -> None:
        keep = self.canvas.pyramid is not None and self.canvas.pyramid.shape == before.shape
        view = (self.canvas.zoom, *self.canvas.centre())
        self.canvas.set_image(before)
        self.canvas.set_after(after)
        if keep:
            self.canvas.set_view(*view)
