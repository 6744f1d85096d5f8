"""Reading the cluster: workload readiness and pod failures from `kubectl get -o json`, in the user's terms.

Pure: the task layer fetches JSON; this module decides ready / still waiting / hopeless and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .render import image_repository

KIND_ALIASES = {
    "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
    "sts": "statefulset", "statefulset": "statefulset", "statefulsets": "statefulset",
    "ds": "daemonset", "daemonset": "daemonset", "daemonsets": "daemonset",
    "job": "job", "jobs": "job",
}
KIND_NAMES = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset",
              "Job": "job", "ReplicaSet": "replicaset", "Pod": "pod"}


def normalise_workload(ref: str) -> str:
    kind, _, name = ref.partition("/")
    kind = KIND_ALIASES.get(kind.lower(), kind.lower())
    return f"{kind}/{name}"


@dataclass
class Problem:
    workload: str
    pod: str
    container: str
    reason: str
    sentence: str
    hopeless: bool
    wants_previous_log: bool = False


@dataclass
class Verdict:
    ready: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # workload -> what it waits for
    problems: list[Problem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return not self.waiting and not self.missing and not self.hopeless

    @property
    def hopeless(self) -> list[Problem]:
        return [p for p in self.problems if p.hopeless]


def _key(obj: Mapping[str, Any]) -> str:
    return f"{KIND_NAMES.get(obj.get('kind', ''), str(obj.get('kind', '')).lower())}/{obj['metadata']['name']}"


def _owners(obj: Mapping[str, Any]) -> list[str]:
    return [f"{KIND_NAMES.get(o.get('kind', ''), str(o.get('kind', '')).lower())}/{o.get('name')}"
            for o in (obj.get("metadata") or {}).get("ownerReferences") or []]


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def workload_progress(obj: Mapping[str, Any]) -> str | None:
    """None when the workload is ready/complete, else what it is still waiting for."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if kind in ("Deployment", "StatefulSet", "DaemonSet") and status.get("observedGeneration", 0) < generation:
        return "the controller has not seen the new spec yet"
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
        available, total = status.get("availableReplicas", 0), status.get("replicas", 0)
        if updated < want:
            return f"{updated}/{want} replicas updated"
        if total > updated:
            return f"{total - updated} old replica(s) still terminating"
        if available < want or ready < want:
            return f"{min(ready, available)}/{want} replicas ready"
        return None
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        ready = status.get("readyReplicas", 0)
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return f"rolling update in progress ({status.get('updatedReplicas', 0)}/{want} updated)"
        if ready < want:
            return f"{ready}/{want} replicas ready"
        return None
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0)
        if status.get("updatedNumberScheduled", 0) < want or status.get("numberReady", 0) < want:
            return f"{status.get('numberReady', 0)}/{want} pods ready"
        return None
    if kind == "Job":
        complete = _condition(obj, "Complete")
        if complete and complete.get("status") == "True":
            return None
        want = spec.get("completions", 1) or 1
        return f"{status.get('succeeded', 0)}/{want} completions"
    return None


def _pod_problems(pod: Mapping[str, Any], workload: str, ours: set[str]) -> list[Problem]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    problems: list[Problem] = []
    scheduled = _condition(pod, "PodScheduled")
    if status.get("phase") == "Pending" and scheduled and scheduled.get("status") == "False" \
            and scheduled.get("reason") == "Unschedulable":
        problems.append(Problem(workload, name, "", "Unschedulable",
                                f"no node can run pod {name}: {scheduled.get('message', '').strip()} — "
                                "lower the pod's resource requests, or give the cluster more (inv minikube.start with more cpus/memory)",
                                hopeless=True))
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason", "")
        message = (waiting.get("message") or "").strip()
        image = cs.get("image", "")
        container = cs.get("name", "")
        is_ours = image_repository(image) in ours
        if reason == "ErrImageNeverPull" or (reason in ("ErrImagePull", "ImagePullBackOff") and is_ours):
            sentence = (f"the node has no {image}; it was built against another Docker daemon — run `inv image.load`"
                        if is_ours else
                        f"the node has no {image} and imagePullPolicy is Never — load it into the cluster or allow pulls")
            problems.append(Problem(workload, name, container, reason, sentence, hopeless=True))
        elif reason == "ImagePullBackOff":
            problems.append(Problem(workload, name, container, reason,
                                    f"the node cannot pull {image}: {message or 'pull failed'} — check the name and tag, "
                                    "and that the node can reach its registry", hopeless=True))
        elif reason == "InvalidImageName":
            problems.append(Problem(workload, name, container, reason,
                                    f"{image!r} is not a valid image reference ({message}) — fix the image: line in the manifest",
                                    hopeless=True))
        elif reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
            problems.append(Problem(workload, name, container, reason,
                                    f"container {container} cannot start: {message} — create the missing object or key "
                                    "(inv k8s.apply after adding it), or fix the reference in the manifest",
                                    hopeless=True))
        elif reason == "CrashLoopBackOff":
            last = (cs.get("lastState") or {}).get("terminated") or {}
            problems.append(Problem(workload, name, container, reason,
                                    f"container {container} keeps crashing (exit code {last.get('exitCode', '?')}, "
                                    f"{cs.get('restartCount', 0)} restarts) — its last lines are below; fix the app or its command",
                                    hopeless=True, wants_previous_log=True))
        elif reason and reason not in ("ContainerCreating", "PodInitializing"):
            problems.append(Problem(workload, name, container, reason,
                                    f"container {container} is waiting: {reason} {message}".strip(), hopeless=False))
        elif state.get("running") and not cs.get("ready") and cs in (status.get("containerStatuses") or []):
            problems.append(Problem(workload, name, container, "NotReady",
                                    f"container {container} is running but not ready (readiness probe not passing yet)",
                                    hopeless=False))
    return problems


def assess(items: Iterable[Mapping[str, Any]], wanted: Iterable[str], our_images: Iterable[str]) -> Verdict:
    """Decide where each wanted workload stands, from one `kubectl get … -o json` listing."""
    objects = [o for o in items if (o.get("metadata") or {}).get("name")]
    by_key = {_key(o): o for o in objects}
    ours = set(our_images)
    verdict = Verdict()
    # Pods belong to a workload directly (Job, StatefulSet, DaemonSet) or through a ReplicaSet.
    rs_owner = {_key(o): _owners(o) for o in objects if o.get("kind") == "ReplicaSet"}
    current_rs: dict[str, str] = {}
    for o in objects:
        if o.get("kind") == "ReplicaSet":
            for owner in _owners(o):
                revision = int((o["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0)
                best = current_rs.get(owner)
                best_rev = int((by_key[best]["metadata"].get("annotations") or {})
                                .get("deployment.kubernetes.io/revision") or 0) if best else -1
                if revision > best_rev:
                    current_rs[owner] = _key(o)
    pods_of: dict[str, list[Mapping[str, Any]]] = {}
    for o in objects:
        if o.get("kind") != "Pod" or (o.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for owner in _owners(o):
            if owner.startswith("replicaset/"):
                for deployment in rs_owner.get(owner, []):
                    if current_rs.get(deployment) == owner:
                        pods_of.setdefault(deployment, []).append(o)
            else:
                pods_of.setdefault(owner, []).append(o)

    for ref in wanted:
        key = normalise_workload(ref)
        obj = by_key.get(key)
        if obj is None:
            verdict.missing.append(key)
            continue
        if obj.get("kind") == "Job":
            failed = _condition(obj, "Failed")
            if failed and failed.get("status") == "True":
                verdict.problems.append(Problem(key, "", "", "JobFailed",
                                                f"job {obj['metadata']['name']} failed: {failed.get('reason', '')}: "
                                                f"{failed.get('message', '')} — its last log lines are below; fix it, then "
                                                "delete the job and apply again (jobs are immutable)",
                                                hopeless=True, wants_previous_log=False))
                continue
        if obj.get("kind") == "Deployment":
            progressing = _condition(obj, "Progressing")
            if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
                verdict.problems.append(Problem(key, "", "", "ProgressDeadlineExceeded",
                                                f"{key} exceeded its progress deadline: {progressing.get('message', '')}",
                                                hopeless=True))
        progress = workload_progress(obj)
        if progress is None:
            verdict.ready.append(key)
            continue
        verdict.waiting[key] = progress
        for pod in pods_of.get(key, []):
            verdict.problems.extend(_pod_problems(pod, key, ours))
    return verdict
