"""What a queued restoration should do, in plain words: the scope choice beside the Queue
button, and the add-folder dialog that can let the detector find each scan's damage.

Scopes are the engine's (RestoreSettings.scope): "mask" changes only the marked pixels and
leaves every other pixel bit-identical; "image" restores the whole picture (noise, JPEG
artefacts) and fills the marked pixels too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QRadioButton, QVBoxLayout, QWidget)

from restorer_app.jobs.restore_file import AUTO_MASK

MASK_ONLY = "Repair the marked damage only"
EVERYWHERE = "Also clean noise and JPEG artefacts everywhere"
MASK_ONLY_TIP = ("Only the pixels marked as damaged are restored; every other pixel of the "
                 "derivative stays exactly as scanned.")
EVERYWHERE_TIP = ("The whole picture is restored: noise and JPEG artefacts are cleaned everywhere "
                  "and marked damage is filled in. Takes longer.")
NO_MASK_TIP = "Nothing is marked yet: paint the damage or use Detect damage to repair only those pixels."
AUTO_DAMAGE = "Find the damage automatically (dust and scratches; more with the sensitivity in Settings)"
AUTO_DAMAGE_TIP = ("Each scan gets a suggested damage mask when its job starts, and only those pixels are "
                   "repaired. Without it, every scan is cleaned of noise and JPEG artefacts everywhere.")


def effective_scope(has_mask: bool, chosen: str | None) -> str:
    """What a scan is queued with: no mask leaves only "image"; with a mask the user's choice,
    "mask" by default."""
    if not has_mask:
        return "image"
    return chosen if chosen in ("mask", "image") else "mask"


class ScopeChoice(QWidget):
    """Two radio buttons; ``chosen(scope)`` when the user picks one (not when set by code)."""

    chosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mask_only = QRadioButton(MASK_ONLY)
        self.everywhere = QRadioButton(EVERYWHERE)
        self.everywhere.setToolTip(EVERYWHERE_TIP)
        self.group = QButtonGroup(self)
        for button in (self.mask_only, self.everywhere):
            self.group.addButton(button)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.mask_only)
        layout.addWidget(self.everywhere)
        self.mask_only.clicked.connect(lambda: self.chosen.emit("mask"))
        self.everywhere.clicked.connect(lambda: self.chosen.emit("image"))
        self.show_state(False, None)

    def show_state(self, has_mask: bool, chosen: str | None) -> None:
        """Show what the current scan would be queued with; without a mask only "image" is
        possible, and the other button says why."""
        scope = effective_scope(has_mask, chosen)
        self.mask_only.setEnabled(has_mask)
        self.mask_only.setToolTip(MASK_ONLY_TIP if has_mask else NO_MASK_TIP)
        (self.mask_only if scope == "mask" else self.everywhere).setChecked(True)

    @property
    def scope(self) -> str:
        return "mask" if self.mask_only.isChecked() else "image"


@dataclass
class FolderChoice:
    folder: Path
    auto_damage: bool

    @property
    def options(self) -> dict:
        """Keyword arguments for QueuePanel.add_many: automatic masks repair only the damage."""
        return {"mask_path": AUTO_MASK, "scope": "mask"} if self.auto_damage else {}


class AddFolderDialog(QDialog):
    """Queue every scan in a folder, optionally with masks the detector finds when each job runs."""

    def __init__(self, folder: str = "", auto_damage: bool = False, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Queue a folder")
        self.folder = QLineEdit(folder, placeholderText="folder of scans (PNG, JPEG, TIFF)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.auto_damage = QCheckBox(AUTO_DAMAGE, checked=auto_damage)
        self.auto_damage.setToolTip(AUTO_DAMAGE_TIP)
        note = QLabel(AUTO_DAMAGE_TIP, wordWrap=True)
        note.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Queue")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.folder.textChanged.connect(self._check)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Every scan in this folder (not its subfolders) is queued:"))
        layout.addLayout(row)
        layout.addWidget(self.auto_damage)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._check()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Queue every scan in a folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _check(self) -> None:
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(Path(self.folder.text().strip()).is_dir())

    def choice(self) -> FolderChoice:
        return FolderChoice(Path(self.folder.text().strip()), self.auto_damage.isChecked())


def ask_folder(parent, prefs, folder: str | None = None) -> FolderChoice | None:
    """Show the dialog for ``folder`` (default: the last one; the checkbox as last time, from ``prefs``)."""
    dialog = AddFolderDialog(folder or prefs.last_folder, prefs.auto_damage_for_folders, parent)
    if dialog.exec() != QDialog.Accepted:
        return None
    choice = dialog.choice()
    prefs.last_folder, prefs.auto_damage_for_folders = str(choice.folder), choice.auto_damage
    return choice
