"""Where the queue database and the job work folders live.

``RESTORER_HOME`` wins so tests, portable installs and scripts can use a folder of their own;
otherwise the platform's per-user data folder, shared by the CLI and the GUI of one user.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "flow-restorer"


def restorer_home(home: str | os.PathLike | None = None) -> Path:
    """The home folder (created if missing): ``home``, else $RESTORER_HOME, else user data dir."""
    if home is None:
        home = os.environ.get("RESTORER_HOME") or platformdirs.user_data_dir(APP_NAME, appauthor=False)
    path = Path(home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
