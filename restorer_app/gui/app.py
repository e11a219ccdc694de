"""Start the desktop application: ``restorer gui [FILES...]`` or the ``restorer-app`` launcher."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from restorer_app import __version__
from restorer_app.bundle import bundled_file

log = logging.getLogger(__name__)


def resource_path(name: str) -> Path:
    """A file in resources/: beside the package in a source tree, or in the frozen bundle."""
    return bundled_file("resources", name)


def create_app(argv=None) -> QApplication:
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setOrganizationName("FlowRestorer")
    app.setApplicationName("Flow Restorer")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("restorer")
    icon = resource_path("restorer.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    style = resource_path("style.qss")
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    return app


def main(files=None) -> int:
    """Open ``files`` (default: the command line) in tabs and run until the window closes."""
    from restorer_app import runtime
    from restorer_app.gui.main_window import MainWindow
    from restorer_app.gui.messages import short_error

    runtime.configure()
    app = create_app()
    window = MainWindow()

    def excepthook(kind, value, tb):  # a bug in a slot: one line on screen, details in the log
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        window.report(f"unexpected error: {short_error(value)}", error=True)

    sys.excepthook = excepthook
    window.show()
    window.open_files(sys.argv[1:] if files is None else files)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
