"""About: the version, what the model in use is (from its weight metadata), and the licences
of what ships with the app, including the photos the bundled prior was trained on."""

from __future__ import annotations

import html
import json

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from restorer_app.bundle import bundled_digests, package_version
from restorer_app.flow.weights import WeightsError, default_model_path, read_metadata

COMPONENTS = [
    ("Qt 6 / PySide6", "LGPL-3.0"), ("PyTorch", "BSD-3-Clause"), ("NumPy", "BSD-3-Clause"),
    ("Pillow", "MIT-CMU (HPND)"), ("tifffile", "BSD-3-Clause"), ("imagecodecs", "BSD-3-Clause"),
    ("safetensors", "Apache-2.0"), ("OpenCV (headless)", "Apache-2.0"), ("platformdirs", "MIT"),
]
TRAINING_DATA = [
    ("BSDS500 (Berkeley Segmentation Dataset), 432 images without CBSD68",
     "distributed by UC Berkeley for research use; the copy used states no licence — check the upstream "
     "terms before redistributing anything derived from it"),
    ("Urban100 (Huang et al., CVPR 2015), colour images 1–80",
     "photos originally from Flickr; no licence stated by the source repository (research benchmark)"),
]


def model_summary(path) -> str:
    """HTML lines describing a weight file, or why it cannot be read."""
    try:
        meta = read_metadata(path)
    except WeightsError as exc:
        return f"<p>{html.escape(str(exc))}</p>"
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
                   for k, v in sorted(meta.items()))
    return f"<p>{html.escape(str(path))}</p><table>{rows}</table>"


def bundled_summary() -> str:
    """HTML table of the bundled weight files and their SHA-256 (first 12 hex digits): the
    same as ``restorer --version``."""
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td><code>{'sha256 ' + digest if digest else 'MISSING'}</code></td>"
        f"<td>{html.escape(str(path))}</td></tr>" for label, path, digest in bundled_digests())
    return f"<table>{rows}</table>"


class AboutDialog(QDialog):
    def __init__(self, model_path=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About Flow Restorer")
        self.resize(640, 560)
        text = QTextBrowser(openExternalLinks=True)
        components = "".join(f"<li>{name} — {licence}</li>" for name, licence in COMPONENTS)
        data = "".join(f"<li><b>{name}</b>: {html.escape(terms)}</li>" for name, terms in TRAINING_DATA)
        text.setHtml(
            f"<h2>Flow Restorer {html.escape(package_version())}</h2>"
            "<p>Restores scanned photographs with a normalizing-flow prior (Glow-style, MAP in latent space). "
            "Originals are never modified; every result carries a provenance record.</p>"
            f"<h3>Bundled weights</h3>{bundled_summary()}"
            f"<h3>Model</h3>{model_summary(model_path or default_model_path())}"
            f"<h3>Bundled components</h3><ul>{components}</ul>"
            f"<h3>Training data of the bundled model</h3><ul>{data}</ul>"
        )
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)
        self.text = text
