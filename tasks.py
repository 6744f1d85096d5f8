"""Invoke tasks that replace the app's Makefile: build → deliver → render → apply → ready.

This file is the root namespace. ``__path__`` makes ``tasks/<ns>.py`` importable as ``tasks.<ns>``
both under ``inv`` (which loads this file as the module ``tasks``) and under pytest. The app is the
folder holding this file: drop (or symlink) ``tasks.py`` and ``tasks/`` into an app's repo.
"""

import copy
import os
import sys
from pathlib import Path

__path__ = [str(Path(__file__).with_name("tasks"))]

from invoke import Collection  # noqa: E402
from invoke.config import merge_dicts  # noqa: E402

from tasks import compose, editor, helm, image, k8s, minikube, observe, tls, watch, workflow  # noqa: E402
from tasks.core.errors import KitError  # noqa: E402
from tasks.core.schema import DEFAULTS, check_yaml_file, env_override_problems, project_problems  # noqa: E402
from tasks.kit import load_dotenv_into_environ  # noqa: E402

ROOT = Path(__file__).parent.absolute()

# invoke reads invoke.yaml and INVOKE_* itself and would stop with a traceback on a syntax error or
# an uncastable value: check both first. .env joins below the shell (never overriding it), like
# direnv's dotenv_if_exists.
try:
    _project = check_yaml_file(ROOT / "invoke.yaml")
    _problems = project_problems(_project, ROOT / "invoke.yaml")
    if _problems:
        raise KitError("invoke.yaml has settings the kit cannot use:\n" + "\n".join(f"  - {p}" for p in _problems),
                       hint="fix them in invoke.yaml (.env.example lists every key and its default)", code=2)
    load_dotenv_into_environ(ROOT)
    _problems = env_override_problems(os.environ, merge_dicts(copy.deepcopy(DEFAULTS), _project.get("app") or {}))
    if _problems:
        raise KitError("environment variables the configuration cannot take:\n" + "\n".join(f"  - {p}" for p in _problems),
                       hint="fix or unset them (in the shell or in .env)", code=2)
except KitError as _exc:
    print(_exc.render(), file=sys.stderr)
    sys.exit(_exc.code)

ns = Collection()
for _task in (workflow.up, workflow.down, workflow.doctor, *watch.ROOT_TASKS):
    ns.add_task(_task)
for _task in observe.K8S_TASKS:
    k8s.ns.add_task(_task)
for _module in (image, k8s, minikube, compose, tls, helm, editor):
    ns.add_collection(_module.ns)
ns.configure({"app": dict(copy.deepcopy(DEFAULTS), root=str(ROOT))})
