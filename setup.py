"""Only what pyproject.toml cannot say: the wheel carries the shipped files (weights, model cards,
icons, stylesheet, desktop entry; the list is restorer_app/shipped.py) as package data under
restorer_app/_shipped/<folder>/<name>, and the sdist carries them at their places in the
repository, so that a wheel built from the sdist is complete too. The metadata is pyproject.toml's.
"""

import os
import runpy

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# By path: nothing is installed yet when this runs, and the package's own imports are not needed.
SHIPPED = runpy.run_path(os.path.join(HERE, "restorer_app", "shipped.py"))


class BuildPyWithShippedFiles(build_py):
    """build_py that also copies the shipped files into the build, and names them as sources
    (``get_source_files`` is what the sdist collects)."""

    def _shipped(self):
        """(source relative to the project root, target in the build) of each shipped file."""
        target_dir = os.path.join(self.build_lib, "restorer_app", SHIPPED["SHIPPED_DIR"])
        return [(os.path.join(folder, name), os.path.join(target_dir, folder, name))
                for folder, name in SHIPPED["SHIPPED"]]

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install finds them in the checkout (restorer_app/bundle.py)
            return
        for source, target in self._shipped():
            if not os.path.isfile(source):
                raise FileNotFoundError(f"{source}: a shipped file (restorer_app/shipped.py) is missing")
            self.mkpath(os.path.dirname(target))
            self.copy_file(source, target, preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else outputs + [target for _, target in self._shipped()]

    def get_source_files(self):
        return super().get_source_files() + [source for source, _ in self._shipped()]


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
