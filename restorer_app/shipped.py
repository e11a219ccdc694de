"""The one list of files that ship with the app: the weights and their cards, the icons, the
stylesheet and the desktop entry. Everything else in ``models/`` (the training campaign, logs,
curves, pack and training scripts) is for developers and stays out.

The files stay where they are in the repository (``models/...``, ``resources/...``). Three places
read this list, so it must stay free of imports beyond the standard library (``setup.py`` and the
PyInstaller spec load it by path, before anything is installed):

* ``setup.py``: the wheel carries each file as package data, ``restorer_app/_shipped/<folder>/<name>``,
  and the sdist carries it at its place in the repository (so a wheel built from the sdist is complete);
* ``packaging/flow_restorer.spec``: the frozen bundle carries it as ``<folder>/<name>``;
* :func:`restorer_app.bundle.bundled_file` finds it in any of these or in the source checkout.
"""

from __future__ import annotations

#: Folder inside the installed package that holds the shipped files (git-ignored, made by the build).
SHIPPED_DIR = "_shipped"

#: (folder, name): each file's place relative to the repository root.
SHIPPED: tuple[tuple[str, str], ...] = (
    ("models", "flow-prior.safetensors"),  # the flow prior
    ("models", "damage-net.safetensors"),  # the detector's network (`--mask auto`, `restorer detect`)
    ("models", "damage-net-grey.safetensors"),  # ... for greyscale scans
    ("models", "damage-segmenter.safetensors"),  # the learned damage segmenter (realistic damage)
    ("models", "MODEL_CARD.md"),  # index of the model cards: licence and training data
    ("models", "flow-prior.md"),  # the flow prior's card
    ("models", "damage-net.md"),  # the damage networks' card
    ("models", "damage-segmenter.md"),  # the segmenter's card
    ("resources", "restorer.png"),
    ("resources", "restorer.svg"),
    ("resources", "style.qss"),
    ("resources", "restorer.desktop"),
)


def shipped_paths() -> list[str]:
    """The shipped files as ``folder/name`` (POSIX separators), relative to the repository root."""
    return [f"{folder}/{name}" for folder, name in SHIPPED]
