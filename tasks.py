"""Invoke tasks that replace the app's Makefile: build → deliver → render → apply → ready.

This file is the root namespace. ``__path__`` makes ``tasks/<ns>.py`` importable as ``tasks.<ns>``
both under ``inv`` (which loads this file as the module ``tasks``) and under pytest. The app is the
folder holding this file: drop (or symlink) ``tasks.py`` and ``tasks/`` into an app's repo.
"""

import copy
import sys
from pathlib import Path

__path__ = [str(Path(__file__).with_name("tasks"))]

from invoke import Collection  # noqa: E402

from tasks import compose, editor, helm, image, k8s, minikube, observe, tls, watch, workflow  # noqa: E402
from tasks.core.config import DEFAULTS, check_yaml_file  # noqa: E402
from tasks.core.errors import KitError  # noqa: E402
from tasks.kit import load_dotenv_into_environ  # noqa: E402

ROOT = Path(__file__).parent.absolute()

# invoke reads invoke.yaml itself and would stop with a traceback on a syntax error: check it first.
try:
    check_yaml_file(ROOT / "invoke.yaml")
except KitError as _exc:
    sys.exit(_exc.render())
# .env joins the configuration below the shell (never overriding it), like direnv's dotenv_if_exists.
load_dotenv_into_environ(ROOT)

ns = Collection()
for _task in (workflow.up, workflow.down, workflow.doctor, *watch.ROOT_TASKS):
    ns.add_task(_task)
for _task in observe.K8S_TASKS:
    k8s.ns.add_task(_task)
for _module in (image, k8s, minikube, compose, tls, helm, editor):
    ns.add_collection(_module.ns)
ns.configure({"app": dict(copy.deepcopy(DEFAULTS), root=str(ROOT))})
