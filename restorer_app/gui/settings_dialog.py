"""Preferences: compute device (with what was found), preset, model file, output folder, threads,
batch size, and how sensitive Detect damage is."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QSlider, QSpinBox, QWidget)

from restorer_app.devices import describe_devices
from restorer_app.gui.preferences import Preferences
from restorer_app.restore.settings import PRESETS

DEVICES = [("Automatic (GPU if present)", "auto"), ("CPU", "cpu"), ("GPU (CUDA)", "cuda"), ("Apple GPU (MPS)", "mps")]


def _with_browse(edit: QLineEdit, browse) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    layout.addWidget(button)
    return row


class SettingsDialog(QDialog):
    def __init__(self, prefs: Preferences, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.prefs = prefs
        self.device = QComboBox()
        for label, value in DEVICES:
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(prefs.device)))
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setCurrentText(prefs.preset)
        self.model = QLineEdit(prefs.model_path, placeholderText="bundled model")
        self.output = QLineEdit(prefs.output_dir, placeholderText="beside each input file")
        self.threads = QSpinBox(minimum=0, maximum=os.cpu_count() or 64, value=prefs.threads, specialValueText="automatic")
        self.batch = QSpinBox(minimum=0, maximum=4096, value=prefs.batch_size, specialValueText="automatic")
        self.batch.setToolTip("Patches solved together; smaller batches stop sooner when you cancel or quit")
        self.sensitivity = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=round(100 * prefs.sensitivity))
        self.sensitivity.setToolTip("Detect damage and automatic masks. At the left: crisp dust and scratches "
                                    "only. To the right, a learned detector adds cracks, tears, hairs and stains, "
                                    "and also marks more of the picture (highlights, thin bright lines, eyes): check the mask")
        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("Found", QLabel(", ".join(describe_devices())))
        form.addRow("Preset", self.preset)
        form.addRow("Model file", _with_browse(self.model, self._browse_model))
        form.addRow("Output folder", _with_browse(self.output, self._browse_output))
        form.addRow("CPU threads", self.threads)
        form.addRow("Patches per batch", self.batch)
        form.addRow("Damage detection sensitivity", self.sensitivity)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model weights", "", "Weights (*.safetensors)")
        if path:
            self.model.setText(path)

    def _browse_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.output.setText(path)

    def accept(self) -> None:
        """Store the choices (they apply to jobs queued from now on)."""
        self.prefs.device = self.device.currentData()
        self.prefs.preset = self.preset.currentText()
        self.prefs.model_path = self.model.text().strip()
        self.prefs.output_dir = self.output.text().strip()
        self.prefs.threads = self.threads.value()
        self.prefs.batch_size = self.batch.value()
        self.prefs.sensitivity = self.sensitivity.value() / 100
        self.prefs.sync()
        super().accept()
