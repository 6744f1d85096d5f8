"""The kube context kubectl would use, read from its kubeconfig files (no kubectl process: about 55 ms of CPU saved
on every run that talks to the cluster).

kubectl's rules: the files are $KUBECONFIG's list (entries split like PATH, empty ones skipped, missing files
ignored), else ~/.kube/config; the first file that sets current-context wins. Anything this cannot read the way
kubectl would (a file that is not a YAML mapping, a context that is not text) gives None: the caller then asks
kubectl, which says what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


def paths(kubeconfig: str, home: Path) -> list[Path]:
    """The files kubectl reads, in its order of precedence."""
    if kubeconfig:
        return [Path(entry) for entry in kubeconfig.split(os.pathsep) if entry]
    return [home / ".kube" / "config"]


def current_context(texts: Iterable[str]) -> str | None:
    """The first current-context set in ``texts`` (the files' contents, in order); None when a file is not a YAML
    mapping, or none sets it."""
    found: str | None = None
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for text in texts:
        try:
            parsed = yaml.load(text, Loader=loader) if text.strip() else {}
        except yaml.YAMLError:
            return None
        if not isinstance(parsed, dict):
            return None
        value = parsed.get("current-context")
        if value is not None and not isinstance(value, str):
            return None
        if found is None and value:
            found = value
    return found
