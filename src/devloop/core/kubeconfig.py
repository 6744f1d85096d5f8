"""The kube context kubectl would use, read from its kubeconfig files (no kubectl process: about 55 ms of CPU saved
on every run that talks to the cluster).

kubectl's rules: the files are $KUBECONFIG's list (entries split like PATH, empty ones skipped, missing files
ignored), else ~/.kube/config; the first file that sets current-context wins. Anything this cannot read the way
kubectl would (a file that is not a Config mapping, a list that is not a list, a context that is not text) gives
None, and so does an unknown home folder: the caller then asks kubectl, which says what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

LISTS = ("clusters", "contexts", "users", "extensions")  # what kubectl loads as lists (a file with other types fails)


def paths(kubeconfig: str, home: str | None) -> list[Path]:
    """The files kubectl reads, in its order of precedence; none when the home folder is not known the way kubectl
    knows it (the caller passes None: HOME unset, or Windows, where kubectl looks in several places)."""
    if kubeconfig:
        return [Path(entry) for entry in kubeconfig.split(os.pathsep) if entry]
    return [Path(home) / ".kube" / "config"] if home else []


def current_context(texts: Iterable[str]) -> str | None:
    """The first current-context set in ``texts`` (the files' contents, in order); None when kubectl would not load
    a file (see loadable), or none sets it."""
    found: str | None = None
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for text in texts:
        try:
            parsed = yaml.load(text, Loader=loader) if text.strip() else {}
        except yaml.YAMLError:
            return None
        if not loadable(parsed):
            return None
        value = parsed.get("current-context")
        if found is None and value:
            found = value
    return found


def loadable(parsed: Any) -> bool:
    """Whether kubectl would load this file: a mapping of a Config (v1), its lists lists, its context text."""
    if not isinstance(parsed, dict):
        return False
    if parsed.get("apiVersion") not in (None, "v1") or parsed.get("kind") not in (None, "Config"):
        return False
    if any(parsed.get(key) is not None and not isinstance(parsed[key], list) for key in LISTS):
        return False
    return parsed.get("current-context") is None or isinstance(parsed["current-context"], str)
