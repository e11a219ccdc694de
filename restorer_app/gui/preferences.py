"""User preferences persisted with QSettings (organisation "FlowRestorer", app "Flow Restorer").

Tests isolate them by pointing QSettings.setPath at a temporary folder with the IniFormat.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from restorer_app.restore.settings import DEFAULT_SENSITIVITY

MAX_RECENT = 10


def store() -> QSettings:
    return QSettings(QSettings.IniFormat, QSettings.UserScope, "FlowRestorer", "Flow Restorer")


class Preferences:
    """Typed access to what the settings dialog edits, plus the recent-files list."""

    def __init__(self):
        self._s = store()

    def _get(self, key: str, default, kind=str):
        value = self._s.value(key, default)
        try:
            return kind(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def device(self) -> str:
        return self._get("restore/device", "auto")

    @device.setter
    def device(self, value: str) -> None:
        self._s.setValue("restore/device", value)

    @property
    def model_path(self) -> str:
        """Empty means the bundled model."""
        return self._get("restore/model", "")

    @model_path.setter
    def model_path(self, value: str) -> None:
        self._s.setValue("restore/model", value)

    @property
    def preset(self) -> str:
        return self._get("restore/preset", "standard")

    @preset.setter
    def preset(self, value: str) -> None:
        self._s.setValue("restore/preset", value)

    @property
    def output_dir(self) -> str:
        """Empty means beside the input file."""
        return self._get("output/folder", "")

    @output_dir.setter
    def output_dir(self, value: str) -> None:
        self._s.setValue("output/folder", value)

    @property
    def threads(self) -> int:
        """CPU threads for the engine; 0 lets torch decide."""
        return self._get("restore/threads", 0, int)

    @threads.setter
    def threads(self, value: int) -> None:
        self._s.setValue("restore/threads", int(value))

    @property
    def batch_size(self) -> int:
        """Patches per batch (how often a stop is noticed); 0 = the engine's default."""
        return self._get("restore/batch_size", 0, int)

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self._s.setValue("restore/batch_size", int(value))

    @property
    def sensitivity(self) -> float:
        """Of Detect damage and automatic masks, 0-1 (restore.settings.DEFAULT_SENSITIVITY)."""
        return min(max(self._get("detect/sensitivity", DEFAULT_SENSITIVITY, float), 0.0), 1.0)

    @sensitivity.setter
    def sensitivity(self, value: float) -> None:
        self._s.setValue("detect/sensitivity", float(value))

    @property
    def last_folder(self) -> str:
        """The folder last queued with Add folder."""
        return self._get("queue/last_folder", "")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._s.setValue("queue/last_folder", value)

    @property
    def auto_damage_for_folders(self) -> bool:
        """Add folder finds each scan's damage automatically (the checkbox, remembered)."""
        return self._get("queue/auto_damage", "false", str).lower() in ("true", "1")

    @auto_damage_for_folders.setter
    def auto_damage_for_folders(self, value: bool) -> None:
        self._s.setValue("queue/auto_damage", "true" if value else "false")

    def restore_settings(self) -> dict:
        """The RestoreSettings dict a new job gets."""
        return {"preset": self.preset, "device": self.device, "model_path": self.model_path or None,
                "batch_size": self.batch_size or None, "sensitivity": self.sensitivity}

    def output_for(self, input_path: Path) -> Path:
        """``NAME.restored.EXT`` in the output folder (or beside the input); never the input."""
        folder = Path(self.output_dir) if self.output_dir else input_path.parent
        return folder / f"{input_path.stem}.restored{input_path.suffix.lower()}"

    @property
    def recent_files(self) -> list[str]:
        value = self._s.value("recent/files", [])
        if isinstance(value, str):  # QSettings gives a bare string for a one-item list
            value = [value]
        return [str(v) for v in value or []]

    def add_recent(self, path: str) -> None:
        files = [str(Path(path))] + [f for f in self.recent_files if f != str(Path(path))]
        self._s.setValue("recent/files", files[:MAX_RECENT])

    def sync(self) -> None:
        self._s.sync()
