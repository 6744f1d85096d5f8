"""The status table (workloads → replicasets → pods) and the app's URL, from cluster or rendered objects.

Pure: takes `kubectl get -o json` items (or rendered documents) and a clock reading; returns rows and text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import kube
from .errors import KitError
from .ports import parse_forward

HEADER = ["NAME", "READY", "RESTARTS", "AGE", "IMAGE", "STATUS"]
WORKLOAD_ORDER = {"Deployment": 0, "StatefulSet": 1, "DaemonSet": 2, "Job": 3}
# Remote ports that are not web servers: never offered as the app's URL.
NOT_HTTP = {22, 3306, 5432, 6379, 11211, 27017, 9042, 5672, 9092, 2181, 1433, 1521}


def parse_time(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def age(created: str, now: float) -> str:
    """kubectl's compact age: 45s, 3m12s, 2h5m, 4d."""
    start = parse_time(created)
    if start is None:
        return "?"
    seconds = max(0, int(now - start))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 8 * 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def short_image(reference: str) -> str:
    """The reference the pods run, registry prefix kept (``127.0.0.1:5000/hello:3f2a1c``): a digest is dropped
    when a tag names the image (``redis:7@sha256:…`` → ``redis:7``), else cut to 12 hex digits."""
    name, _, digest = reference.partition("@")
    if not digest or ":" in name.rsplit("/", 1)[-1]:
        return name
    algorithm, _, hexdigits = digest.partition(":")
    return f"{name}@{algorithm}:{hexdigits[:12]}"


def images_of(obj: Mapping[str, Any]) -> str:
    spec = obj.get("spec") or {}
    if obj.get("kind") != "Pod":
        spec = (spec.get("template") or {}).get("spec") or {}
    names = [short_image(str(c.get("image") or "")) for c in spec.get("containers") or []]
    return ",".join(dict.fromkeys(n for n in names if n))


def pod_status(pod: Mapping[str, Any], probe: str | None = None) -> str:
    """The one word kubectl shows, or better: the waiting reason, the exit code, the probe's message."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    scheduled = kube.condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return f"Pending: {scheduled.get('reason', '')} {str(scheduled.get('message') or '').strip()}".strip()
    init = status.get("initContainerStatuses") or []
    main = status.get("containerStatuses") or []
    for cs in init + main:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting.get("reason") and waiting.get("reason") not in ("ContainerCreating", "PodInitializing"):
            last = (cs.get("lastState") or {}).get("terminated") or {}
            extra = f" (exit {last.get('exitCode')})" if waiting.get("reason") == "CrashLoopBackOff" and last else ""
            prefix = "Init:" if cs in init else ""
            return f"{prefix}{waiting['reason']}{extra}"
        if waiting.get("reason"):
            return str(waiting["reason"])
    phase = str(status.get("phase") or "Unknown")
    if phase == "Succeeded":
        return "Completed"
    if phase == "Failed":
        return f"Failed {status.get('reason') or ''}".strip()
    if phase == "Running" and not kube.pod_ready(pod):
        unready = [cs.get("name") for cs in main if not cs.get("ready")]
        why = f": {probe}" if probe else ""
        return f"Running, not ready ({', '.join(str(u) for u in unready)}){why}"
    return phase


def _pod_row(pod: Mapping[str, Any], now: float, indent: str, probes: Mapping[str, str],
             live: Mapping[str, str] | None = None) -> list[str]:
    main = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or main
    ready = sum(1 for cs in main if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in main)
    name = pod["metadata"]["name"]
    uid = pod["metadata"].get("uid") or ""
    synced = [str(c.get("name")) for c in containers if f"{uid}/{c.get('name')}" in (live or {})]
    mark = f" · live-updated: {', '.join(synced)}" if synced else ""
    return [f"{indent}pod/{name}", f"{ready}/{len(containers)}", str(restarts),
            age(str(pod["metadata"].get("creationTimestamp") or ""), now), images_of(pod),
            pod_status(pod, probes.get(name)) + mark]


def _workload_row(obj: Mapping[str, Any], now: float) -> list[str]:
    kind = obj.get("kind")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Job":
        ready = f"{status.get('succeeded', 0)}/{spec.get('completions', 1) or 1}"
        failed = kube.condition(obj, "Failed")
        word = ("failed: " + str(failed.get("reason", ""))) if failed and failed.get("status") == "True" else None
    elif kind == "DaemonSet":
        ready = f"{status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)}"
        word = None
    else:
        ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
        word = None
    if word is None:
        progress = kube.workload_progress(obj)
        word = "ready" if progress is None and kind != "Job" else "complete" if progress is None else progress
        deadline = kube.condition(obj, "Progressing")
        if kind == "Deployment" and deadline and deadline.get("reason") == "ProgressDeadlineExceeded":
            word = "progress deadline exceeded"
    return [kube.key_of(obj), ready, "", age(str(obj["metadata"].get("creationTimestamp") or ""), now), images_of(obj), word]


def rows(items: Iterable[Mapping[str, Any]], now: float, only: Sequence[str] | None = None,
         probes: Mapping[str, str] | None = None, live: Mapping[str, str] | None = None) -> list[list[str]]:
    """Header + one row per workload, its live ReplicaSets and its pods (indented under their owner).

    ``only`` limits the table to these workloads (kind/name) and what they own; ``probes`` maps a pod
    to its latest readiness-probe failure message; ``live`` marks containers (``pod-uid/container``)
    running live-updated files.
    """
    objects = [o for o in items if (o.get("metadata") or {}).get("name")]
    probes = probes or {}
    wanted = {kube.normalise_workload(w) for w in only} if only is not None else None
    children: dict[str, list[Mapping[str, Any]]] = {}
    for o in objects:
        for owner in kube.owners(o):
            children.setdefault(owner, []).append(o)
    table = [list(HEADER)]
    shown: set[str] = set()
    workloads = sorted((o for o in objects if o.get("kind") in WORKLOAD_ORDER),
                       key=lambda o: (WORKLOAD_ORDER[o["kind"]], o["metadata"]["name"]))
    for obj in workloads:
        key = kube.key_of(obj)
        if wanted is not None and key not in wanted:
            continue
        table.append(_workload_row(obj, now))
        shown.add(key)
        owned = children.get(key, [])
        sets = sorted((o for o in owned if o.get("kind") == "ReplicaSet"), key=kube.revision, reverse=True)
        for index, rs in enumerate(sets):
            pods = _pods(children.get(kube.key_of(rs), []))
            spec_replicas = (rs.get("spec") or {}).get("replicas", 0)
            if index > 0 and not spec_replicas and not pods:
                continue  # an old ReplicaSet scaled to zero: history, not state
            rs_status = rs.get("status") or {}
            table.append([f"  {kube.key_of(rs)}", f"{rs_status.get('readyReplicas', 0)}/{spec_replicas}", "",
                          age(str(rs["metadata"].get("creationTimestamp") or ""), now), images_of(rs),
                          "current" if index == 0 else "old, scaling down"])
            table += [_pod_row(p, now, "    ", probes, live) for p in pods]
        table += [_pod_row(p, now, "  ", probes, live) for p in _pods(owned)]
    if wanted is None:
        covered = {kube.key_of(o) for o in objects if o.get("kind") == "ReplicaSet"} | shown
        loose = [p for p in _pods(objects) if not (set(kube.owners(p)) & covered)]
        table += [_pod_row(p, now, "", probes, live) for p in loose]
    return table


def _pods(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((o for o in objects if o.get("kind") == "Pod"), key=lambda p: p["metadata"]["name"])


def not_ready_pods(items: Iterable[Mapping[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in items if o.get("kind") == "Pod" and (o.get("status") or {}).get("phase") == "Running"
            and not kube.pod_ready(o) and not (o.get("metadata") or {}).get("deletionTimestamp")]


def fingerprint(table: list[list[str]]) -> str:
    """The table without its AGE column: changes only when the state does (for plain-line --watch)."""
    return "\n".join("|".join(r[:3] + r[4:]) for r in table)


# -- the URL ---------------------------------------------------------------------------------------


def ingress_url(objects: Iterable[Mapping[str, Any]]) -> str | None:
    for obj in objects:
        if obj.get("kind") != "Ingress":
            continue
        spec = obj.get("spec") or {}
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            if host:
                return f"{'https' if host in tls_hosts else 'http'}://{host}/"
    return None


def exposed_service(objects: Iterable[Mapping[str, Any]]) -> str | None:
    """The first NodePort/LoadBalancer Service (what `minikube service --url` can open)."""
    for obj in objects:
        if obj.get("kind") == "Service" and (obj.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer"):
            return str(obj["metadata"]["name"])
    return None


def forward_url(forwards: Iterable[str]) -> str | None:
    """http://127.0.0.1:LOCAL/ for the first forward whose remote port looks like a web server."""
    for spec in forwards:
        try:
            forward = parse_forward(spec)
        except KitError:
            continue
        for local, remote in forward.ports:
            if remote not in NOT_HTTP:
                return f"http://127.0.0.1:{local}/"
    return None


def ingress_source(objects: Sequence[Mapping[str, Any]], provider: str) -> str:
    """Where an Ingress URL comes from, and what it needs to answer: a live Ingress no controller has given an
    address is said to be one; a rendered one answers only where an ingress controller runs."""
    live = [o for o in objects if o.get("kind") == "Ingress" and "status" in o]
    if live and not any(((o.get("status") or {}).get("loadBalancer") or {}).get("ingress") for o in live):
        return "the Ingress host; no ingress controller has given the Ingress an address yet"
    if live or provider == "minikube":  # minikube: `inv minikube.start` enables its ingress addon
        return "the Ingress host"
    return "the Ingress host; it answers where the cluster runs an ingress controller"


def url_plan(objects: Sequence[Mapping[str, Any]], provider: str, forwards: Iterable[str]) -> tuple[str, str]:
    """How to find the app's URL: ("url", URL) when known from the objects alone, ("minikube-service", NAME)
    when `minikube service --url NAME` must be asked, ("none", why) when there is no way in."""
    url = ingress_url(objects)
    if url:
        return "url", url
    service = exposed_service(objects)
    if service and provider == "minikube":
        return "minikube-service", service
    url = forward_url(forwards)
    if url:
        return "forward", url
    return "none", ("no Ingress, no NodePort/LoadBalancer Service on minikube, and no web port in app.forwards — "
                    "add an Ingress to the manifests or a forward such as 'deploy/web 3000:3000' to app.forwards")
