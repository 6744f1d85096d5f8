"""Keep invoke from stopping with a traceback on the app's configuration, so the kit can report it instead.

invoke parses the app's ``invoke.yaml`` right after loading the tasks, and casts ``INVOKE_*`` values before
a task runs; a syntax error or ``INVOKE_APP_TIMEOUT=abc`` would end it with a traceback before the kit is
asked. ``install`` (called by ``namespace()``, never on import) makes both lenient for the kit's settings:
the file's problems are printed once (so ``inv --list`` still lists the tasks and says what is wrong) and
every task then stops on them with file:line (see ``kit.read_app_config``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from invoke.config import Config
from invoke.env import Environment
from invoke.exceptions import UncastableEnvVar

from devloop.core.errors import KitError
from devloop.core.schema import check_yaml_file, key_line, project_problems, unknown_keys

_ROOTS: set[Path] = set()
REPORTED: dict[Path, str] = {}  # config file -> the problems printed at load time


def install(root: Path) -> None:
    _ROOTS.add(root.resolve())
    if getattr(Config._load_yaml, "_devloop", False):
        return
    original_load, original_cast = Config._load_yaml, Environment._cast

    def load_yaml(self: Config, path: Any) -> Any:
        file = Path(path).absolute()
        if file.parent.resolve() not in _ROOTS:
            return original_load(self, path)
        try:
            data = check_yaml_file(file)
            problems = project_problems(data, file) + unknown_app_keys(data, file)
        except KitError as exc:
            _report(file, exc.message)
            return {}
        if problems:
            _report(file, "\n".join(problems))
        return data

    def cast(self: Environment, old: Any, new: Any) -> Any:
        try:
            return original_cast(self, old, new)
        except (ValueError, TypeError, UncastableEnvVar):  # keep the text; the kit's own check names the variable
            return new

    load_yaml._devloop = True  # type: ignore[attr-defined]
    Config._load_yaml = load_yaml  # type: ignore[method-assign]
    Config._load_yml = load_yaml
    Environment._cast = cast  # type: ignore[method-assign]


def unknown_app_keys(data: Any, file: Path) -> list[str]:
    app = data.get("app") if isinstance(data, dict) else None
    if not isinstance(app, dict):
        return []
    return [f"{file}:{key_line(file, key) or 1}: unknown config key {key}{hint}" for key, hint in unknown_keys(app)]


def _report(file: Path, problems: str) -> None:
    if file in REPORTED:
        return
    REPORTED[file] = problems
    print(f"warning: {file.name} has problems; every task stops on them until they are fixed:\n"
          + "\n".join(f"  - {line}" for line in problems.splitlines()), file=sys.stderr)
