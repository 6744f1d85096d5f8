"""The kit as an installed library: the public API, the `devloop` command, and imports without side effects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import HELLO, make_app

DEVLOOP = str(Path(sys.executable).with_name("devloop"))


def test_namespace_is_the_whole_task_surface_and_apps_can_extend_it(tmp_path: Path) -> None:
    from invoke import Collection, task

    from devloop import namespace

    ns = namespace(tmp_path)
    assert {"up", "down", "doctor", "dev", "watch", "image.build", "k8s.render", "k8s.logs", "editor.vscode"} <= set(
        ns.task_names)
    assert ns.configuration()["devloop"]["root"] == str(tmp_path.absolute())

    @task
    def hello(c):  # type: ignore[no-untyped-def]
        """Say hello."""

    ns.add_collection(Collection("mine", hello))
    assert "mine.hello" in ns.task_names
    assert "mine.hello" not in namespace(tmp_path).task_names  # each call builds a fresh collection


def test_namespace_defaults_to_the_calling_tasks_py_folder(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    code = f"import runpy; m = runpy.run_path({str(app / 'tasks.py')!r}); print(m['ns'].configuration()['devloop']['root'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == str(app)


def test_importing_every_module_reads_no_file_changes_no_environment_and_never_exits(tmp_path: Path) -> None:
    """Import the package and every module with a broken invoke.yaml and .env in the current folder."""
    (tmp_path / "invoke.yaml").write_text("app: [oops\n")
    (tmp_path / ".env").write_text("INVOKE_APP_TIMEOUT=x\nnot a line\n")
    code = (
        "import os, sys, pkgutil, importlib\n"
        "opened = []\n"
        "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
        "before = dict(os.environ)\n"
        "import devloop\n"
        "names = [m.name for m in pkgutil.walk_packages(devloop.__path__, 'devloop.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "assert dict(os.environ) == before, 'environment changed'\n"
        "here = os.getcwd()\n"
        "assert not [p for p in opened if p.startswith(here)], [p for p in opened if p.startswith(here)]\n"
        "print(len(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 30


def test_devloop_command_runs_the_kit_in_an_app_folder_without_tasks_py(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "tasks.py").unlink()
    version = subprocess.run([DEVLOOP, "--version"], capture_output=True, text=True, cwd=app)
    from devloop import __version__

    assert version.returncode == 0 and __version__ in version.stdout
    listing = subprocess.run([DEVLOOP, "--list"], capture_output=True, text=True, cwd=app / "k8s")
    assert listing.returncode == 0 and "image.build" in listing.stdout and "up" in listing.stdout
    # invoke.yaml is read as `inv` reads it: the hello app's image name and settings are used
    tag = subprocess.run([DEVLOOP, "image.tag"], capture_output=True, text=True, cwd=app,
                         env=dict(os.environ, BASE_IMAGE="busybox:1"))
    assert tag.returncode == 0, tag.stderr
    assert tag.stdout.startswith("hello:")
    completion = subprocess.run([DEVLOOP, "--complete", "--", "devloop", "ima"], capture_output=True, text=True, cwd=app)
    assert "image.build" in completion.stdout


def test_hello_uses_the_kit_through_its_own_short_tasks_py() -> None:
    tasks_py = HELLO / "tasks.py"
    assert not tasks_py.is_symlink() and not (HELLO / "tasks").exists()
    code = [line for line in tasks_py.read_text().splitlines() if line.strip() and not line.startswith('"""')]
    assert code == ["from devloop import namespace", "ns = namespace()"]
