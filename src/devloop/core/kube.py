"""Reading the cluster: workload readiness and pod failures from `kubectl get -o json`, in the user's terms.

Pure: the task layer fetches JSON; this module decides ready / still waiting / hopeless and says why.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .render import image_repository

KIND_ALIASES = {  # kubectl's short and plural names; a kind's own name stands for itself
    "deploy": "deployment", "deployments": "deployment", "sts": "statefulset", "statefulsets": "statefulset",
    "ds": "daemonset", "daemonsets": "daemonset", "jobs": "job", "svc": "service", "services": "service",
    "po": "pod", "pods": "pod", "rs": "replicaset", "replicasets": "replicaset",
}
KIND_NAMES = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset",
              "Job": "job", "ReplicaSet": "replicaset", "Pod": "pod", "Service": "service"}
# A crash-looping container whose dependencies were still starting gets this many restarts to recover.
CRASH_RESTARTS = 5
# The scheduler's reason (in its "0/1 nodes are available: …" message) → what to do about it; the first match wins.
UNSCHEDULABLE_FIXES = [
    ("Too many pods", "the node runs as many pods as it may (its pod limit, not CPU or memory) — delete pods that are "
                      "no longer needed (finished jobs, other namespaces, old apps), lower replicas, or raise the "
                      "node's max-pods / add a node"),
    ("Insufficient", "lower the pod's resource requests, or give the cluster more (inv minikube.start with more "
                     "cpus/memory)"),
    ("persistentvolumeclaim", "create the PersistentVolumeClaim it mounts, or check that it can bind (a StorageClass)"),
    ("didn't match", "fix the pod's nodeSelector or affinity, or label a node to match it"),
    ("taint", "add a toleration for the node's taint, or remove the taint"),
]
DEFAULT_UNSCHEDULABLE_FIX = ("lower the pod's resource requests, or give the cluster more (inv minikube.start with more "
                             "cpus/memory)")
PULL_REASONS = ("ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff")

_MISSING_OBJECT = re.compile(r'^(secret|configmap)s? "([^"]+)" not found', re.IGNORECASE)
_MISSING_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) (?:([^/\s]+)/)?(\S+)", re.IGNORECASE)


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
    image: str = ""  # the container's image, for failures about it


@dataclass
class Verdict:
    ready: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # workload -> what it waits for
    problems: list[Problem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    pods: dict[str, list[str]] = field(default_factory=dict)  # workload -> its current pods

    @property
    def done(self) -> bool:
        return not self.waiting and not self.missing and not self.hopeless

    @property
    def hopeless(self) -> list[Problem]:
        return [p for p in self.problems if p.hopeless]


def kind_of(obj: Mapping[str, Any]) -> str:
    return KIND_NAMES.get(str(obj.get("kind", "")), str(obj.get("kind", "")).lower())


def key_of(obj: Mapping[str, Any]) -> str:
    return f"{kind_of(obj)}/{obj['metadata']['name']}"


def owners(obj: Mapping[str, Any]) -> list[str]:
    return [f"{KIND_NAMES.get(o.get('kind', ''), str(o.get('kind', '')).lower())}/{o.get('name')}"
            for o in (obj.get("metadata") or {}).get("ownerReferences") or []]


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def revision(obj: Mapping[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get("deployment.kubernetes.io/revision") or 0)
    except ValueError:
        return 0


def pod_ready(pod: Mapping[str, Any]) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True")


def workload_progress(obj: Mapping[str, Any], old_pods: Sequence[Mapping[str, Any]] | None = None) -> str | None:
    """None when the workload is ready/complete, else what it is still waiting for.

    ``old_pods`` (a Deployment's pods of older ReplicaSets) tell old replicas still running from terminating ones.
    """
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
            return old_replicas(total - updated, old_pods)
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
        complete = condition(obj, "Complete")
        if complete and complete.get("status") == "True":
            return None
        want = spec.get("completions", 1) or 1
        return f"{status.get('succeeded', 0)}/{want} completions"
    return None


def old_replicas(count: int, old_pods: Sequence[Mapping[str, Any]] | None) -> str:
    """A rollout's old replicas as they are: still running (not yet scaled down) or terminating (being deleted).

    ``status.replicas`` counts only pods not being deleted, so without the pods they are still running.
    """
    if not old_pods:
        return f"{count} old replica(s) still running"
    terminating = sum(1 for p in old_pods if (p.get("metadata") or {}).get("deletionTimestamp"))
    running = len(old_pods) - terminating
    if not running:
        return f"{terminating} old replica(s) still terminating"
    return f"{running} old replica(s) still running" + (f", {terminating} terminating" if terminating else "")


def config_error_sentence(container: str, message: str, namespace: str) -> str:
    """CreateContainerConfigError → which ConfigMap/Secret/key is missing and how to provide it."""
    where = f" in namespace {namespace}" if namespace else ""
    missing = _MISSING_OBJECT.search(message)
    if missing:
        kind = "Secret" if missing.group(1).lower() == "secret" else "ConfigMap"
        name = missing.group(2)
        fix = (f"create it (list it under app.secrets with an env file, or `kubectl create secret generic {name} "
               f"--from-env-file=FILE`), or fix the secretRef/secretKeyRef in the manifest"
               if kind == "Secret" else
               f"add a ConfigMap named {name} to the manifests and `inv k8s.apply`, or fix the configMapRef in the manifest")
        return f"container {container} cannot start: {kind} {name} does not exist{where} — {fix}"
    key = _MISSING_KEY.search(message)
    if key:
        kind = "Secret" if key.group(2).lower() == "secret" else "ConfigMap"
        ref = "secretKeyRef" if kind == "Secret" else "configMapKeyRef"
        return (f"container {container} cannot start: {kind} {key.group(4)} has no key {key.group(1)} — add the key "
                f"to the {kind}, or fix {ref}.key in the manifest")
    return (f"container {container} cannot start: {message or 'configuration error'} — create the missing object or "
            "key (inv k8s.apply after adding it), or fix the reference in the manifest")


def _crash_sentence(cs: Mapping[str, Any]) -> str:
    container = cs.get("name", "")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    why = f"exit code {last.get('exitCode', '?')}"
    if last.get("reason") == "OOMKilled":
        why = "killed for using more memory than its limit (OOMKilled)"
    advice = ("raise resources.limits.memory or lower the app's memory use" if last.get("reason") == "OOMKilled"
              else "its last lines are below; fix the app, its command or its configuration")
    restarts = int(cs.get("restartCount") or 0)
    return f"container {container} keeps crashing ({why}, {restarts} restart{'' if restarts == 1 else 's'}) — {advice}"


def _unschedulable(pod: Mapping[str, Any], workload: str) -> list[Problem]:
    name = pod["metadata"]["name"]
    scheduled = condition(pod, "PodScheduled")
    if (pod.get("status") or {}).get("phase") != "Pending" or not scheduled or scheduled.get("status") != "False" \
            or scheduled.get("reason") != "Unschedulable":
        return []
    message = str(scheduled.get("message", "")).strip()
    return [Problem(workload, name, "", "Unschedulable", f"no node can run pod {name}: {message} — "
                    f"{unschedulable_fix(message)}", hopeless=True)]


def unschedulable_fix(message: str) -> str:
    """What to do about the scheduler's reason; the pod limit is not a resource shortage."""
    lowered = message.lower()
    return next((fix for pattern, fix in UNSCHEDULABLE_FIXES if pattern.lower() in lowered), DEFAULT_UNSCHEDULABLE_FIX)


def _image_sentence(reason: str, image: str, message: str, is_ours: bool) -> str | None:
    """Why the node has no image to run, or None when the reason is not about the image."""
    if reason == "ErrImageNeverPull" or (reason in ("ErrImagePull", "ImagePullBackOff") and is_ours):
        return (f"the node has no {image}; it was built against another Docker daemon — run `inv image.load`"
                if is_ours else
                f"the node has no {image} and imagePullPolicy is Never — load it into the cluster "
                "(minikube image load / kind load docker-image) or allow pulls")
    if reason == "ImagePullBackOff":
        return (f"the node cannot pull {image}: {message or 'pull failed'} — check the name and tag, "
                "and that the node can reach its registry")
    if reason == "InvalidImageName":
        return f"{image!r} is not a valid image reference ({message}) — fix the image: line in the manifest"
    return None


def _container_problem(cs: Mapping[str, Any], workload: str, pod: str, namespace: str, ours: set[str],
                       main: bool) -> Problem | None:
    """One container's state in the user's words: hopeless (with the fix) or still waiting."""
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    message = (waiting.get("message") or "").strip()
    container = cs.get("name", "")
    image = cs.get("image", "")
    about_image = _image_sentence(reason, image, message, image_repository(image) in ours)
    if about_image:
        return Problem(workload, pod, container, reason, about_image, hopeless=True, image=image)
    if reason == "CreateContainerConfigError":
        return Problem(workload, pod, container, reason, config_error_sentence(container, message, namespace), hopeless=True)
    if reason in ("CreateContainerError", "RunContainerError"):
        return Problem(workload, pod, container, reason, f"container {container} cannot start: {message} — fix its "
                       "command, volumes or security settings in the manifest", hopeless=True)
    if reason == "CrashLoopBackOff":
        return Problem(workload, pod, container, reason, _crash_sentence(cs), hopeless=True, wants_previous_log=True)
    if reason and reason not in ("ContainerCreating", "PodInitializing"):
        return Problem(workload, pod, container, reason, f"container {container} is waiting: {reason} {message}".strip(),
                       hopeless=False)
    if state.get("running") and not cs.get("ready") and main:
        return Problem(workload, pod, container, "NotReady",
                       f"container {container} is running but not ready (readiness probe not passing yet)", hopeless=False)
    return None


def _pod_problems(pod: Mapping[str, Any], workload: str, ours: set[str]) -> list[Problem]:
    name = pod["metadata"]["name"]
    namespace = str(pod["metadata"].get("namespace") or "")
    status = pod.get("status") or {}
    main = status.get("containerStatuses") or []
    found = [_container_problem(cs, workload, name, namespace, ours, main=cs in main)
             for cs in (status.get("initContainerStatuses") or []) + main]
    return _unschedulable(pod, workload) + [problem for problem in found if problem is not None]


def _last_crash(pod: Mapping[str, Any], container: str) -> str:
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if cs.get("name") == container:
            return str(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "")
    return ""


def _ready_since(obj: Mapping[str, Any], pods: list[Mapping[str, Any]]) -> str:
    """When a ready workload became ready (RFC 3339, second resolution)."""
    times = [str((condition(p, "Ready") or {}).get("lastTransitionTime") or "") for p in pods]
    if obj.get("kind") == "Job":
        times.append(str((obj.get("status") or {}).get("completionTime") or ""))
    return max(times, default="")


def _job_failed(key: str, obj: Mapping[str, Any]) -> Problem | None:
    failed = condition(obj, "Failed") if obj.get("kind") == "Job" else None
    if not failed or failed.get("status") != "True":
        return None
    return Problem(key, "", "", "JobFailed",
                   f"job {obj['metadata']['name']} failed: {failed.get('reason', '')}: "
                   f"{failed.get('message', '')} — its last log lines are below; fix it, then "
                   "delete the job and apply again (jobs are immutable)", hopeless=True)


def _deadline_exceeded(key: str, obj: Mapping[str, Any]) -> list[Problem]:
    progressing = condition(obj, "Progressing") if obj.get("kind") == "Deployment" else None
    if not progressing or progressing.get("reason") != "ProgressDeadlineExceeded":
        return []
    return [Problem(key, "", "", "ProgressDeadlineExceeded",
                    f"{key} exceeded its progress deadline: {progressing.get('message', '')}", hopeless=True)]


@dataclass
class _Standing:
    """Where the wanted workloads stand before crash loops are judged: the verdict so far, each
    not-ready workload's problems, and when each ready workload became ready."""

    verdict: Verdict = field(default_factory=Verdict)
    problems_of: dict[str, list[Problem]] = field(default_factory=dict)
    ready_at: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, obj: Mapping[str, Any], pods: list[Mapping[str, Any]], ours: set[str],
            old: list[Mapping[str, Any]] | None = None) -> None:
        self.verdict.pods[key] = [p["metadata"]["name"] for p in pods]
        failed = _job_failed(key, obj)
        progress = None if failed else workload_progress(obj, old)
        if failed:
            self.problems_of[key] = [failed]
        elif progress is None:
            self.verdict.ready.append(key)
            self.ready_at[key] = _ready_since(obj, pods)
        else:
            self.verdict.waiting[key] = progress
            self.problems_of[key] = _deadline_exceeded(key, obj) + \
                [problem for pod in pods for problem in _pod_problems(pod, key, ours)]

    def settled(self) -> set[str]:
        """Ready, or stuck in a hopeless state (crash loops included), judged before any is excused."""
        return set(self.ready_at) | {k for k, found in self.problems_of.items() if any(p.hopeless for p in found)}


def _judge_crash_loop(problem: Problem, standing: _Standing, settled: set[str], pod: Mapping[str, Any]) -> None:
    """Hopeless only once the others have settled and it crashed after they were ready (or too often)."""
    others = [k for k in list(standing.problems_of) + list(standing.ready_at) + standing.verdict.missing
              if k != problem.workload]
    if not all(k in settled for k in others):
        problem.hopeless = False
    else:
        became_ready = max((standing.ready_at[k] for k in others if k in standing.ready_at), default="")
        crashed = _last_crash(pod, problem.container)
        problem.hopeless = crashed > became_ready or _restarts(pod, problem.container) >= CRASH_RESTARTS
    if not problem.hopeless:
        problem.sentence += " (waiting: what it needs may still be starting)"


def assess(items: Iterable[Mapping[str, Any]], wanted: Iterable[str], our_images: Iterable[str]) -> Verdict:
    """Decide where each wanted workload stands, from one `kubectl get … -o json` listing.

    A crash loop is hopeless once every other wanted workload has settled (ready, or failed) and
    the container crashed after they were ready: a web pod that crashed because MySQL was still
    starting gets to retry (up to CRASH_RESTARTS restarts) instead of failing the rollout.
    """
    objects = [o for o in items if (o.get("metadata") or {}).get("name")]
    by_key = {key_of(o): o for o in objects}
    ours = set(our_images)
    pods_of, old_of = pods_by_workload(objects)
    standing = _Standing()
    for ref in wanted:
        key = normalise_workload(ref)
        if key in by_key:
            standing.add(key, by_key[key], pods_of.get(key, []), ours, old_of.get(key))
        else:
            standing.verdict.missing.append(key)
    settled = standing.settled()
    pod_by_name = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Pod"}
    for found in standing.problems_of.values():
        for problem in found:
            if problem.reason == "CrashLoopBackOff":
                _judge_crash_loop(problem, standing, settled, pod_by_name.get(problem.pod, {}))
            standing.verdict.problems.append(problem)
    return standing.verdict


def _restarts(pod: Mapping[str, Any], container: str) -> int:
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if cs.get("name") == container:
            return int(cs.get("restartCount") or 0)
    return 0


def _newest_replicasets(objects: list[Mapping[str, Any]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(ReplicaSet key → its owners, Deployment key → its newest ReplicaSet's key)."""
    rs_owner: dict[str, list[str]] = {}
    newest: dict[str, tuple[int, str]] = {}
    for o in objects:
        if o.get("kind") == "ReplicaSet":
            key, made_by, number = key_of(o), owners(o), revision(o)
            rs_owner[key] = made_by
            for owner in made_by:
                best = newest.get(owner)
                if best is None or number > best[0]:
                    newest[owner] = (number, key)
    return rs_owner, {owner: key for owner, (_, key) in newest.items()}


def pods_by_workload(objects: Iterable[Mapping[str, Any]]) -> tuple[dict[str, list[Mapping[str, Any]]],
                                                                   dict[str, list[Mapping[str, Any]]]]:
    """(workload key → its live pods, Deployment key → the pods of its older ReplicaSets), in one pass.

    A Deployment's live pods are those of its newest ReplicaSet; its old ones include terminating pods.
    """
    objects = list(objects)
    rs_owner, newest = _newest_replicasets(objects)
    current: dict[str, list[Mapping[str, Any]]] = {}
    old: dict[str, list[Mapping[str, Any]]] = {}
    for o in objects:
        if o.get("kind") != "Pod":
            continue
        live = not (o.get("metadata") or {}).get("deletionTimestamp")
        for owner in owners(o):
            if not owner.startswith("replicaset/"):
                if live:
                    current.setdefault(owner, []).append(o)
                continue
            for deployment in rs_owner.get(owner, []):
                if newest.get(deployment) != owner:
                    old.setdefault(deployment, []).append(o)
                elif live:
                    current.setdefault(deployment, []).append(o)
    return current, old


def current_pods(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """workload key → its live pods; a Deployment's pods are those of its newest ReplicaSet."""
    return pods_by_workload(objects)[0]


def old_pods(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Deployment key → the pods of its older ReplicaSets, terminating ones included."""
    return pods_by_workload(objects)[1]


def warning_events(events: Iterable[Mapping[str, Any]], pods: Iterable[str]) -> dict[str, list[str]]:
    """pod → its Warning events as 'Reason: message (xN)', oldest first, without repeats.

    The kubelet's readiness probe failures arrive here ("Unhealthy: Readiness probe failed: …"), as do
    FailedMount (a missing Secret volume) and FailedScheduling.
    """
    wanted = set(pods)
    found: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        obj = event.get("involvedObject") or {}
        name = str(obj.get("name") or "")
        if name not in wanted or event.get("type") != "Warning":
            continue
        reason = str(event.get("reason") or "")
        message = " ".join(str(event.get("message") or "").split())
        count = int(event.get("count") or 1)
        when = str(event.get("lastTimestamp") or event.get("eventTime") or "")
        line = f"{reason}: {message}" + (f" (x{count})" if count > 1 else "")
        found.setdefault(name, []).append((when, line))
    return {pod: _unique([line for _, line in sorted(lines)]) for pod, lines in found.items()}


def _unique(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for line in reversed(lines):
        head = line.rsplit(" (x", 1)[0]
        if head not in seen:
            seen.add(head)
            kept.append(line)
    return list(reversed(kept))


_COUNT = re.compile(r"\s*\(x\d+\)$")


def probe_failure(lines: Iterable[str]) -> str | None:
    """The latest 'Readiness probe failed: …' message among a pod's warning events, with its count ("(x7)"); an
    exec probe whose command failed without a word says so."""
    found = None
    for line in lines:
        if "probe failed:" in line:
            found = line.split("probe failed:", 1)[1].strip()
    if found is not None and not uncounted(found):
        found = f"its command failed without output {found}".strip()
    return found


def uncounted(message: str) -> str:
    """An event line without its trailing count ("(x7)"): the same message, seen again."""
    return _COUNT.sub("", message)


def deadline_report(verdict: Verdict, events: Mapping[str, list[str]]) -> list[str]:
    """One line per workload that is not ready, with the most telling reason we have."""
    lines = []
    for key, why in verdict.waiting.items():
        lines.append(f"{key}: {why}")
        for problem in verdict.problems:
            if problem.workload == key:
                where = f"pod {problem.pod}: " if problem.pod else ""
                lines.append(f"  {where}{problem.reason}: {problem.sentence}")
        for pod in verdict.pods.get(key, []):
            for event in events.get(pod, [])[-3:]:
                lines.append(f"  pod {pod}: {event}")
    lines += [f"{key}: not found in the cluster (was it applied to this namespace?)" for key in verdict.missing]
    return lines


def same_ref(a: str, b: str) -> bool:
    """Two image references naming the same image (Docker Hub's implicit prefixes aside)."""
    def plain(ref: str) -> str:
        for prefix in ("docker.io/library/", "docker.io/"):
            ref = ref.removeprefix(prefix)
        return ref

    return plain(a) == plain(b)


def pulls_to_retry(verdict: Verdict, delivered: Collection[str], older_pods: Collection[str]) -> list[Problem]:
    """Pull failures that are not hopeless: the kit has just delivered that image, and the pod tried before it did.

    The kubelet retries such a pod only on its next back-off (up to a few tens of seconds), so these are
    marked not hopeless and returned for the caller to restart. A pod not among ``older_pods`` (started
    since, or restarted already) that still cannot get the image stays hopeless: it did not reach the node.
    """
    found = []
    for problem in verdict.problems:
        if problem.hopeless and problem.reason in PULL_REASONS and problem.pod in older_pods \
                and any(same_ref(problem.image, ref) for ref in delivered):
            problem.hopeless = False
            problem.sentence = (f"{problem.reason} for {problem.image}, which the kit has just delivered to the node: "
                                "the pod tried before it was there; restarting the pod so it starts now")
            found.append(problem)
    return found


_SERVER = re.compile(r"https?://[^/\s\"']+")
_KUBECTL_ERR = re.compile(r'err="(.*?)"\s*$')


def cluster_error(stderr: str) -> tuple[str, str]:
    """(server, why) from kubectl's stderr when it cannot talk to the cluster, each line once.

    kubectl repeats its discovery error five or six times before its own summary line; the summary
    (or else the last distinct error) is the why.
    """
    server = next(iter(_SERVER.findall(stderr)), "")
    reasons: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        found = _KUBECTL_ERR.search(line)
        text = found.group(1).replace('\\"', '"') if found else line.removeprefix("error: ")
        if text and text not in reasons:
            reasons.append(text)
    summary = [r for r in reasons if r.startswith(("Unable to connect to the server", "The connection to the server"))]
    why = (summary or reasons or ["no answer"])[-1]
    why = why.removeprefix("Unable to connect to the server: ")
    return server, why


_NO_ANSWER = re.compile(r"Unable to connect to the server: |The connection to the server |dial tcp |"
                        r"TLS handshake timeout|connection reset by peer|no such host|i/o timeout")


def unreachable(stderr: str) -> str:
    """Why kubectl could not talk to the cluster at all (refused, timed out, unknown host), or "" when it did.

    Taken from the first line that says so, from the connection error on (kubectl's apply wraps it in an
    OpenAPI download error that reads like a refusal of the manifest)."""
    for line in stderr.splitlines():
        found = _NO_ANSWER.search(line)
        if found and not line.lstrip().startswith("Error from server"):  # the server answered (a webhook it called did not)
            why = line[found.start():].removeprefix("Unable to connect to the server: ")
            return why.split("; if you choose to ignore these errors", 1)[0].strip().rstrip('"')
    return ""


# -- kubectl pass-through ---------------------------------------------------------------------------


def option_value(args: list[str], option: str) -> str | None:
    """The value of ``--option VALUE`` or ``--option=VALUE`` among ``args`` (before a ``--``)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def pass_through(args: list[str], context: str, namespace: str) -> list[str]:
    """``kubectl ARGS`` with the kit's context and namespace, unless ARGS choose their own."""
    head = args[:args.index("--")] if "--" in args else args
    argv = ["kubectl"]
    if option_value(args, "--context") is None:
        argv += ["--context", context]
    own_namespace = any(a in ("-n", "--namespace", "-A", "--all-namespaces") or a.startswith(("--namespace=", "-n="))
                        for a in head)
    if namespace and not own_namespace:
        argv += ["--namespace", namespace]
    return argv + list(args)
