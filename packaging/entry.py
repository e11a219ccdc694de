"""Entry point of the frozen app: one executable, ``flow-restorer``, for the GUI and the CLI.

``flow-restorer`` or ``flow-restorer gui [FILES]`` opens the desktop app; anything else is the
``restorer`` command line (``flow-restorer selftest``, ``flow-restorer restore ...``).

torch is imported before anything that loads Qt: on Windows, torch's DLLs (c10, the OpenMP
runtime) fail to load or pick up wrong copies once Qt has put its own folders on the DLL search
path, and importing it first costs nothing because every command needs it anyway.

``RESTORER_EXIT_AFTER_SHOW=1`` measures start-up: the GUI prints the seconds from process start
to the first paint of the main window, then exits (used by build.sh; no effect otherwise).
"""

import os
import sys
import time

_ENTERED = time.perf_counter()

import torch  # noqa: E402,F401  (first; see above)


def process_age() -> float:
    """Seconds since the process was created (Linux: from /proc, so the bootloader's unpacking and
    the interpreter's start count too; elsewhere from the moment this module began)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _ENTERED


def measure_startup() -> int:
    """Start the GUI as ``restorer_app.gui.app.main`` does, report when the window is painted, quit."""
    from PySide6.QtCore import QEvent, QObject

    from restorer_app import runtime
    from restorer_app.gui.app import create_app
    from restorer_app.gui.main_window import MainWindow

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint:
                print(f"startup: main window visible after {process_age():.2f} s", flush=True)
                app.quit()
            return False

    runtime.configure()
    app = create_app()
    window = MainWindow()
    probe = FirstPaint()
    window.installEventFilter(probe)
    window.show()
    return app.exec()


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] == "gui":
        if os.environ.get("RESTORER_EXIT_AFTER_SHOW") == "1":
            return measure_startup()
        from restorer_app.gui.app import main as gui_main

        return gui_main(args[1:])
    from restorer_app.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
