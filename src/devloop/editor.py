"""Editor buttons: `inv editor.vscode` writes .vscode/tasks.json from the task collection, keeping the user's entries."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from invoke import Collection, Context

from devloop.core import vscode as core
from devloop.core.errors import KitError
from devloop.kit import App, kit_task
from devloop.shell import is_dry

_COLLECTIONS: dict[Path, Collection] = {}  # app folder -> the collection namespace() built for it


def register(root: Path, collection: Collection) -> None:
    """Remember the app's collection (the app may add its own tasks to it later) for tasks.json."""
    _COLLECTIONS[root.resolve()] = collection


def root_collection(root: Path) -> Collection:
    """The collection `inv`/`devloop` runs for this app folder."""
    collection = _COLLECTIONS.get(root.resolve())
    if collection is None:
        raise KitError(f"no task collection is known for {root}",
                       hint="build it with devloop.namespace() in the app's tasks.py, or run `devloop` in the app folder")
    return collection


def task_infos(collection: Collection) -> list[core.TaskInfo]:
    infos = []
    for name in collection.task_names:
        task = collection[name]
        doc = (getattr(task, "__doc__", None) or getattr(task.body, "__doc__", None) or "").strip().splitlines()
        infos.append(core.TaskInfo(name, doc[0].strip() if doc else ""))
    return infos


def workspace_cwd(root: Path, folder: Path) -> str:
    """`${workspaceFolder}` plus the way from the workspace folder to the app (where `inv` must run)."""
    try:
        rel = root.relative_to(folder)
    except ValueError:
        raise KitError(f"the app folder {root} is not inside the workspace {folder}",
                       hint="pass --workspace with the folder you open in VS Code (the app folder or one above it)",
                       code=2) from None
    return "${workspaceFolder}" + ("" if str(rel) == "." else "/" + rel.as_posix())


def in_workspace(path: Path, folder: Path) -> str:
    """``path`` under ``${workspaceFolder}`` when it is inside the workspace (the file then works in any clone)."""
    try:
        return "${workspaceFolder}/" + path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def default_runner(root: Path, folder: Path, python: str = sys.executable) -> list[str]:
    """What the buttons run: this very interpreter (no venv needs to be active), as ``python -m invoke``
    when the app has a tasks.py (so its own tasks are there), else the ``devloop`` command beside it."""
    interpreter = Path(python)
    has_tasks = (root / "tasks.py").is_file() or (root / "tasks" / "__init__.py").is_file()
    devloop = shutil.which("devloop", path=str(interpreter.parent))
    if not has_tasks and devloop:
        return [in_workspace(Path(devloop), folder)]
    return [in_workspace(interpreter, folder), "-m", "invoke"]


def runner(command: str | None, root: Path, folder: Path) -> list[str]:
    if command is None:
        return default_runner(root, folder)
    words = shlex.split(command)
    if not words:
        raise KitError("--command is empty", hint='give what runs the tasks, e.g. --command "poetry run inv"', code=2)
    return words


@kit_task(help={"workspace": "the folder you open in VS Code; .vscode/ goes there (default: the app folder)",
                "command": "what the buttons run instead of this Python's own `-m invoke`, e.g. \"poetry run inv\""})
def vscode(c: Context, workspace: str | None = None, command: str | None = None) -> None:
    """Write .vscode/tasks.json: one entry per inv task."""
    app = App.load(c)
    root = app.settings.root.resolve()
    folder = Path(workspace).resolve() if workspace else root
    target = folder / ".vscode" / "tasks.json"
    old = target.read_text(encoding="utf-8") if target.is_file() else ""
    existing = core.read_tasks_file(old, str(target)) if old else None
    infos = task_infos(root_collection(root))
    argv = runner(command, root, folder)
    doc = core.merge(existing.data if existing else None, core.generated_tasks(infos, workspace_cwd(root, folder), argv),
                     core.generated_inputs(infos))
    problems = core.schema_problems(doc)
    if problems:
        raise KitError("the generated tasks.json would not match VS Code's schema:\n" +
                       "\n".join(f"  - {p}" for p in problems), hint="report this: it is a bug in the kit")
    text = core.render(doc, existing)
    kept = sum(1 for t in doc["tasks"] if not core.is_generated(t))
    ours = len(doc["tasks"]) - kept
    if is_dry(c):
        app.say(f"would write {target} ({ours} inv tasks, {kept} of yours kept) (--dry):")
        print(text, end="")
        return
    if old == text:
        app.say(f"{target} is up to date ({ours} inv tasks, {kept} of yours kept)")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if old:
        target.with_name("tasks.json.bak").write_text(old, encoding="utf-8")
    tmp = target.with_name(".tasks.json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    note = "; the previous file is in tasks.json.bak (your entries are kept as written)" if old else ""
    builds = core.default_builds(doc)
    build = f"Run Build Task (Ctrl+Shift+B) runs {builds[0]!r}" if builds else "there is no default build task"
    app.say(f"wrote {target}: {ours} inv tasks, {kept} of yours kept{note}. {build}; Terminal → Run Task lists the rest")


ns = Collection("editor")
ns.add_task(vscode)
