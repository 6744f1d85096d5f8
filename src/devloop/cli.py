"""The ``devloop`` command: the kit's tasks for the app in the current folder, without a tasks.py."""

from __future__ import annotations

from pathlib import Path

from invoke import Program

from devloop import __version__
from devloop.collection import namespace


class DevloopProgram(Program):
    """invoke's Program over ``namespace(root)``; the app's invoke.yaml is read as `inv` would read it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        super().__init__(namespace=namespace(root), version=__version__, name="devloop", binary="devloop",
                         binary_names=["devloop"])

    def parse_collection(self) -> None:
        super().parse_collection()
        self.config.set_project_location(str(self.root))
        self.config.load_project()


def app_folder(start: Path) -> Path:
    """The nearest folder, from ``start`` up, holding an invoke.yaml; ``start`` when there is none."""
    for folder in (start, *start.parents):
        if (folder / "invoke.yaml").is_file():
            return folder
    return start


def main() -> None:
    DevloopProgram(app_folder(Path.cwd())).run()
