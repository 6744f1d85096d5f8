"""The ``devloop`` command: the kit's tasks for the app in the current folder, without a tasks.py."""

from __future__ import annotations

import sys
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
    folder = app_folder(Path.cwd())
    quiet = {"--version", "-V", "--help", "-h", "--complete", "--print-completion-script"} & set(sys.argv[1:])
    if not (folder / "invoke.yaml").is_file() and not quiet:
        print(f"devloop: no invoke.yaml in {folder} or above; its folder is the app (see the README, "
              "section Configuration): using the kit's defaults here", file=sys.stderr)
    DevloopProgram(folder).run()
