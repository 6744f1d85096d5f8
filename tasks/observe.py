"""Watching a running app: status table, logs, port-forwards, URL, kubectl pass-through (being built).

Its tasks join the ``k8s`` namespace (see ``K8S_TASKS``).
"""

from typing import Any

K8S_TASKS: list[Any] = []
