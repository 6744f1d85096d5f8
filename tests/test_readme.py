"""The README keeps its promises: sections the examples point to exist, documented flags exist, and the
compose rows name the app that has the compose files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import HELLO, REPO

from devloop import namespace

README = (REPO / "README.md").read_text(encoding="utf-8")
HEADINGS = {line.lstrip("#").strip() for line in README.splitlines() if line.startswith("#")}
# A task row of the Tasks table: `inv ns.task\|other [--flag X] [--other]` (alternatives share the flags).
TASK_ROW = re.compile(r"`inv ([a-z0-9]+)\.([a-z-]+(?:\\\|[a-z-]+)*)((?: \[--[^\]]+\])*)`")


def example_files() -> list[Path]:
    """The examples' own files (not what running them leaves: the kit's .kit/ folder, bytecode)."""
    return [p for p in sorted((REPO / "examples").rglob("*"))
            if p.is_file() and p.suffix != ".pyc" and ".kit" not in p.relative_to(REPO).parts]


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_readme_sections_the_examples_point_to_exist(path: Path) -> None:
    pointers = re.findall(r'README "([^"]+)"', path.read_text(encoding="utf-8", errors="replace"))
    assert [p for p in pointers if p not in HEADINGS] == []


def documented_flags() -> list[tuple[str, str]]:
    found = []
    for group, tasks, flags in TASK_ROW.findall(README):
        for task in tasks.split("\\|"):
            found += [(f"{group}.{task}", flag) for flag in re.findall(r"--([a-z-]+)", flags)]
    return found


def test_the_tasks_table_is_parsed() -> None:
    assert ("helm.upgrade", "release") in documented_flags() and ("k8s.logs", "selector") in documented_flags()


@pytest.mark.parametrize(("task", "flag"), documented_flags())
def test_every_flag_the_tasks_table_documents_exists(tmp_path: Path, task: str, flag: str) -> None:
    arguments = namespace(tmp_path)[task].get_arguments()
    assert flag in {name for argument in arguments for name in argument.names}


def test_compose_rows_name_the_app_with_compose_files() -> None:
    assert not (REPO / "docker-compose.yml").exists() and (HELLO / "docker-compose.yml").exists()
    rows = [line for line in README.splitlines() if line.startswith("| `docker-compose")]
    assert rows and all("examples/hello" in row for row in rows)
