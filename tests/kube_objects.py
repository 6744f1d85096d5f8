"""Builders for the `kubectl get -o json` objects the observe/rollout tests feed to the pure core."""

from __future__ import annotations

from typing import Any


def deployment(name: str, replicas: int = 1, ready: int | None = None, *, generation: int = 1, observed: int = 1,
               updated: int | None = None, total: int | None = None, labels: dict[str, str] | None = None,
               image: str = "demoapp:abc", conditions: list[dict[str, Any]] | None = None,
               created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    ready = replicas if ready is None else ready
    return {"kind": "Deployment",
            "metadata": {"name": name, "generation": generation, "labels": labels or {}, "creationTimestamp": created},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"spec": {"containers": [{"name": "main", "image": image}]}}},
            "status": {"observedGeneration": observed, "replicas": replicas if total is None else total,
                       "updatedReplicas": replicas if updated is None else updated, "readyReplicas": ready,
                       "availableReplicas": ready, "conditions": conditions or []}}


def replicaset(name: str, owner: str, revision: int = 1, replicas: int = 1, ready: int | None = None,
               image: str = "demoapp:abc", created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"kind": "ReplicaSet",
            "metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"kind": "Deployment", "name": owner}]},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "main", "image": image}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas if ready is None else ready}}


def container_status(name: str = "main", *, image: str = "demoapp:abc", ready: bool = True,
                     state: dict[str, Any] | None = None, last: dict[str, Any] | None = None, restarts: int = 0,
                     cid: str = "docker://c1") -> dict[str, Any]:
    return {"name": name, "image": image, "ready": ready, "restartCount": restarts, "containerID": cid,
            "state": state if state is not None else {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
            "lastState": last or {}}


def pod(name: str, owner: str = "", owner_kind: str = "ReplicaSet", *, statuses: list[dict[str, Any]] | None = None,
        ready: bool = True, phase: str = "Running", labels: dict[str, str] | None = None, deleting: bool = False,
        created: str = "2026-01-01T00:00:00Z", ready_at: str = "2026-01-01T00:00:05Z",
        conditions: list[dict[str, Any]] | None = None, image: str = "demoapp:abc",
        ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "kit", "labels": labels or {}, "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"kind": owner_kind, "name": owner}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:10:00Z"
    conds = conditions if conditions is not None else [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_at},
    ]
    return {"kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "main", "image": image, "ports": ports or []}]},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": statuses if statuses is not None else [container_status(ready=ready, image=image)]}}


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def crashed(exit_code: int = 1, finished: str = "2026-01-01T00:00:30Z", reason: str = "Error") -> dict[str, Any]:
    return {"terminated": {"exitCode": exit_code, "finishedAt": finished, "reason": reason}}


def job(name: str, *, complete: bool = False, failed: str = "", completions: int = 1, succeeded: int = 0) -> dict[str, Any]:
    conditions = []
    if complete:
        conditions.append({"type": "Complete", "status": "True"})
    if failed:
        conditions.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": failed})
    return {"kind": "Job", "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"completions": completions, "template": {"spec": {"containers": [{"name": "main", "image": "migrate:1"}]}}},
            "status": {"succeeded": succeeded, "conditions": conditions}}


def job_manifest(name: str, container: str, command: str) -> str:
    """A Job manifest as an app writes it (image `hello`, run once, no retries), for the converge tests."""
    return f"""apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers: [{{name: {container}, image: hello, command: [sh, -c, "{command}"]}}]
"""
