"""The whole task surface for one app folder: ``namespace(root)`` builds a fresh invoke Collection."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from invoke import Collection

from devloop import compose, editor, helm, image, invoke_guard, k8s, minikube, observe, tls, watch, workflow

_SUBCOLLECTIONS = (image.ns, k8s.ns, minikube.ns, compose.ns, tls.ns, helm.ns, editor.ns)
_ROOT_TASKS = (workflow.up, workflow.down, workflow.doctor, *watch.ROOT_TASKS)
_EXTRA = {"k8s": observe.K8S_TASKS}  # tasks that live in another module but belong to a namespace


def namespace(root: str | os.PathLike[str] | None = None) -> Collection:
    """The kit's tasks for the app in ``root`` (default: the folder of the calling ``tasks.py``).

    The result is the app's to extend: ``ns.add_collection(my_tasks)``.
    """
    folder = Path(root) if root is not None else _caller_folder()
    folder = folder.absolute()
    ns = Collection()
    for task in _ROOT_TASKS:
        ns.add_task(task)
    for sub in _SUBCOLLECTIONS:
        ns.add_collection(_copy(sub, extra=_EXTRA.get(sub.name or "", [])))
    ns.configure({"devloop": {"root": str(folder)}})
    invoke_guard.install(folder)
    editor.register(folder, ns)
    return ns


def _copy(sub: Collection, extra: list[Any]) -> Collection:
    """A fresh collection per app, so that apps (and tests) never share one mutable collection."""
    fresh = Collection(sub.name)
    for name, task in sub.tasks.items():
        fresh.add_task(task, name=name, default=sub.default == name)
    for task in extra:
        fresh.add_task(task)
    return fresh


def _caller_folder() -> Path:
    """The folder of the module calling ``namespace()`` (the app's tasks.py), else the current folder."""
    frame = sys._getframe(2)
    caller = frame.f_globals.get("__file__")
    return Path(caller).parent if caller else Path.cwd()
