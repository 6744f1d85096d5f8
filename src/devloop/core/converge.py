"""Converging the cluster to the rendered set: what to prune, which Jobs to run again or clean up, and the
API server's rejections, each in one line.

Pure: takes the rendered objects and the live ones (`kubectl get -o json` items) and returns plans and
explanations; devloop/k8s.py lists, deletes and applies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .render import ENV_LABEL, LABEL, pod_specs

# The namespaced kinds the kit applies (and `down` deletes), the cluster-scoped ones prune also looks at,
# and the ones that hold data (only with --volumes).
# Owners before what they own (workloads, then ReplicaSets, then pods): `kubectl delete` goes in this order, and a
# pod deleted while its ReplicaSet still exists is made again at once.
NAMESPACED_KINDS = ("ingresses", "services", "deployments", "statefulsets", "daemonsets", "jobs", "cronjobs",
                    "replicasets", "pods", "configmaps", "secrets", "serviceaccounts", "roles", "rolebindings",
                    "horizontalpodautoscalers", "poddisruptionbudgets", "networkpolicies")
CLUSTER_KINDS = ("clusterroles", "clusterrolebindings", "ingressclasses", "priorityclasses", "storageclasses",
                 "namespaces")
VOLUME_KINDS = ("persistentvolumeclaims",)
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def listing_kinds(volumes: bool = False) -> str:
    """The kinds prune lists (one `kubectl get`), comma-separated."""
    return ",".join(NAMESPACED_KINDS + (VOLUME_KINDS if volumes else ()) + CLUSTER_KINDS)


@dataclass(frozen=True)
class Action:
    """One object to delete, and why (shown as `pruned deployment/web: no longer in k8s/`)."""

    kind: str  # as the object says: Deployment
    name: str
    reason: str

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class Policy:
    """What this run may delete: the app and environment whose labels it owns, and the user's choices."""

    app: str
    env: str
    source: str = "k8s/"  # where the manifests live, for the reason
    prune: bool = True
    volumes: bool = False
    job_keep: int = 3
    rerun_jobs: bool = True
    namespace: str = ""  # the environment's namespace: never pruned
    tls_secret: str = ""  # the environment's ${TLS_SECRET} when this checkout has no copy of it (.kit/tls/): kept


@dataclass
class Plan:
    prune: list[Action] = field(default_factory=list)  # deleted after the apply
    rerun: list[Action] = field(default_factory=list)  # Jobs deleted with their pods; the apply creates them again
    refused: list[Action] = field(default_factory=list)  # changed Jobs left as they are (rerun_jobs is false)
    covers: str = ""  # the converged_key of a plan made from every live object of the app (see converged_key)

    @property
    def rerun_refs(self) -> set[str]:
        return {a.ref for a in self.rerun}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def ours(obj: Mapping[str, Any], policy: Policy) -> bool:
    labels = _meta(obj).get("labels") or {}
    return labels.get(LABEL) == policy.app and labels.get(ENV_LABEL) == policy.env


def prunable(obj: Mapping[str, Any], policy: Policy) -> bool:
    """A live object prune may delete: ours, not made by a controller, not already going, not data or a home."""
    meta = _meta(obj)
    if not ours(obj, policy) or meta.get("ownerReferences") or meta.get("deletionTimestamp"):
        return False
    if obj.get("kind") == "PersistentVolumeClaim":
        return policy.volumes
    if obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/tls" and meta.get("name") == policy.tls_secret:
        return False  # a render without it only means this checkout has no copy of the certificate (.kit/tls/)
    return not (obj.get("kind") == "Namespace" and meta.get("name") in SYSTEM_NAMESPACES | {policy.namespace})


def _rendered(documents: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    return {(str(d.get("kind")), str(_meta(d).get("name")), str(_meta(d).get("namespace") or "")) for d in documents}


def in_render(obj: Mapping[str, Any], rendered: set[tuple[str, str, str]]) -> bool:
    """Whether the render still has this live object (a rendered object without a namespace goes to the live one's)."""
    kind, name = str(obj.get("kind")), str(_meta(obj).get("name"))
    return (kind, name, str(_meta(obj).get("namespace") or "")) in rendered or (kind, name, "") in rendered


def finished(job: Mapping[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def newest_first(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(objects, key=lambda o: (str(_meta(o).get("creationTimestamp") or ""), str(_meta(o).get("name"))),
                  reverse=True)


def prune_actions(documents: list[dict[str, Any]], live: Iterable[Mapping[str, Any]], policy: Policy) -> list[Action]:
    """Our live objects the render no longer has; of the finished Jobs among them the newest ``job_keep`` stay."""
    rendered = _rendered(documents)
    gone = [o for o in live if prunable(o, policy) and not in_render(o, rendered)]
    earlier = newest_first(o for o in gone if o.get("kind") == "Job" and finished(o))
    kept = {id(o) for o in earlier[:policy.job_keep]}
    old_jobs = {id(o) for o in earlier}
    why_job = f"an earlier Job, finished (the newest {policy.job_keep} are kept: app.job_keep)"
    return [Action(str(o.get("kind")), str(_meta(o).get("name")),
                   why_job if id(o) in old_jobs else f"no longer in {policy.source}")
            for o in gone if id(o) not in kept]


def _containers(pod: Mapping[str, Any]) -> list[tuple[Any, Any, Any]]:
    listed = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return [(c.get("image"), c.get("command"), c.get("args")) for c in listed if isinstance(c, Mapping)]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def applied_spec(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec kubectl applied last to the live object (from its annotation); None without a readable one."""
    applied = (_meta(live).get("annotations") or {}).get(LAST_APPLIED)
    try:
        spec = json.loads(applied).get("spec") if applied else None
    except (ValueError, AttributeError):
        return None
    return spec if isinstance(spec, dict) else None


def applied_from(doc: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether ``live`` was last applied from ``doc``: the spec in kubectl's annotation is the document's.

    A watch shows an apply a moment later: until this holds, the object seen is the one from before it.
    """
    spec = applied_spec(live)
    return spec is not None and _plain(spec) == _plain(doc.get("spec") or {})


def template_changed(doc: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether applying the Job ``doc`` would change the live Job's pod template (which is immutable).

    Compared with what kubectl applied last (its annotation on the live Job); without one, by the containers'
    images, commands and arguments (the live template also holds the server's defaults).
    """
    before = (applied_spec(live) or {}).get("template")
    if before is not None:
        return bool(_plain((doc.get("spec") or {}).get("template")) != _plain(before))
    old_pod = ((live.get("spec") or {}).get("template") or {}).get("spec") or {}
    return _containers(next(pod_specs(doc), {})) != _containers(old_pod)


def job_actions(documents: list[dict[str, Any]], live: Iterable[Mapping[str, Any]],
                policy: Policy) -> tuple[list[Action], list[Action]]:
    """(Jobs to delete and create again, changed Jobs left alone because reruns are refused)."""
    current = {str(_meta(o).get("name")): o for o in live if o.get("kind") == "Job" and ours(o, policy)
               and not _meta(o).get("deletionTimestamp")}
    changed = [Action("Job", str(_meta(d).get("name")), "its pod template changed") for d in documents
               if d.get("kind") == "Job" and str(_meta(d).get("name")) in current
               and template_changed(d, current[str(_meta(d).get("name"))])]
    return (changed, []) if policy.rerun_jobs else ([], changed)


def plan(documents: list[dict[str, Any]], live: Iterable[Mapping[str, Any]], policy: Policy) -> Plan:
    """What converging to ``documents`` deletes: pruned objects (after the apply) and Jobs to run again (before it)."""
    objects = list(live)
    rerun, refused = job_actions(documents, objects, policy)
    return Plan(prune_actions(documents, objects, policy) if policy.prune else [], rerun, refused)


def converged_key(documents: list[dict[str, Any]], policy: Policy) -> str:
    """Which objects converging to ``documents`` keeps, and what prune may delete: once a run has converged to a
    key, converging to the same key again has nothing to prune (save what was made by hand since)."""
    kept = sorted(f"{d.get('kind')}/{_meta(d).get('namespace') or policy.namespace}/{_meta(d).get('name')}"
                  for d in documents)
    return json.dumps([kept, policy.app, policy.env, policy.namespace, policy.volumes])


def live_map(live: Iterable[Mapping[str, Any]], namespace: str, skip: set[str]) -> dict[str, Mapping[str, Any]]:
    """"Kind/namespace/name" -> live Deployment or Job, as lint compares them (``skip``: refs about to be rerun)."""
    return {f"{o.get('kind')}/{namespace}/{_meta(o).get('name')}": o for o in live
            if o.get("kind") in ("Deployment", "Job") and f"{str(o.get('kind')).lower()}/{_meta(o).get('name')}" not in skip}


# -- the API server's answer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One thing the API server (or kubectl's schema check) refused: the object, the field, what it said, the fix."""

    ref: str  # kind/name; "" when the server's words name no object
    field: str
    said: str
    fix: str = ""
    by_kubectl: bool = False  # kubectl's check against the cluster's schema, before anything reaches the server
    origin: str = ""  # the manifest file the object came from, when known

    def __str__(self) -> str:
        head = f"{self.ref}{f' ({self.origin})' if self.origin else ''}: " if self.ref else ""
        what = f"{self.field} {self.said}" if self.field else self.said
        return f"{head}{what} — {self.fix}" if self.fix else f"{head}{what}"


_BLOCK = re.compile(r'(?=Error from server \()|^(?=error: )|^(?=The [A-Z][A-Za-z0-9]* ")', re.MULTILINE)
_INVALID = re.compile(r'\b([A-Z][A-Za-z0-9]*)(?:\.[a-z][\w.-]*)? "([^"]+)" is invalid: ')
_CAUSE = re.compile(r"(?<![\w.\]-])([a-z][\w.\[\]-]*): (Invalid value|Forbidden|Required value|Unsupported value|"
                    r"Duplicate value|Not found|Too long|Too many|Internal error)")
_IMMUTABLE = ("immutable", "may not change once set", "cannot be changed")
LIMIT = 160  # characters of the server's own words kept in one line
PHRASES = {"Forbidden": "is forbidden", "Required value": "is required", "Unsupported value": "has an unsupported value",
           "Duplicate value": "has a duplicate value", "Not found": "is not found", "Too long": "is too long",
           "Too many": "has too many items", "Internal error": "hit an internal error"}

# (kind, field prefix, what the server said: immutable / forbidden / "" = anything, fix); the first match wins.
FIXES: list[tuple[str, str, str, str]] = [
    ("Job", "spec.", "immutable", "a Job cannot change once created: let the kit run it again (rerun_jobs: true for "
                                  "this environment), delete it (`inv k8s.kubectl -- delete job {name}`), or name it "
                                  "per version with ${{IMAGE_TAG}}"),
    ("Service", "spec.clusterIP", "immutable", "drop spec.clusterIP from the manifest (the server picks one), or delete "
                                               "the Service (`inv k8s.kubectl -- delete service {name}`) to give it the new one"),
    ("", "spec.selector", "immutable", "keep the old selector, or delete the {kind} (`inv k8s.kubectl -- delete {kind} "
                                       "{name}`) and apply again"),
    ("Deployment", "spec.strategy.rollingUpdate", "forbidden", "add `rollingUpdate: null` under spec.strategy"),
    ("", "", "immutable", "it cannot change on a live object: delete the {kind} (`inv k8s.kubectl -- delete {kind} "
                          "{name}`) and apply again"),
    ("", "", "", "fix {field} in the manifest"),
]


def shorten(text: str, limit: int = LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def short_output(text: str, lines: int = 15) -> str:
    """A command's output for an error message: the last lines, none longer than a line (no multi-KB dumps)."""
    kept = [shorten(line) for line in text.rstrip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _category(reason: str, message: str) -> str:
    if any(word in message for word in _IMMUTABLE):
        return "immutable"
    return "forbidden" if reason == "Forbidden" else ""


def _said(reason: str, value: str, message: str) -> str:
    category = _category(reason, message)
    if category == "immutable":
        return "is immutable"
    if reason == "Invalid value":
        shown = f" {value}" if value and len(value) <= 40 else ""
        return f"is invalid:{shown} ({shorten(message)})"
    phrase = PHRASES.get(reason, reason.lower())
    return f"{phrase}: {shorten(message)}" if message else phrase


def fix_for(kind: str, name: str, path: str, reason: str, message: str) -> str:
    category = _category(reason, message)
    for fix_kind, prefix, said, fix in FIXES:
        if fix_kind in ("", kind) and path.startswith(prefix) and said in ("", category):
            return fix.format(kind=kind.lower(), name=name, field=path)
    return ""  # pragma: no cover - the last row matches everything


def _causes(text: str) -> list[tuple[str, str, str, str]]:
    """(field, reason, value, message) of each cause in "f: Invalid value: V: msg, g: Forbidden: msg" (maybe in [ ])."""
    found = list(_CAUSE.finditer(text))
    causes = []
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(text)
        detail = text[match.end():end].strip().lstrip(":").strip().rstrip(",").strip()
        if index + 1 == len(found) and text.lstrip().startswith("[") and detail.endswith("]"):
            detail = detail[:-1]
        value, _, message = detail.rpartition(": ") if match.group(2) == "Invalid value" else ("", "", detail)
        causes.append((match.group(1), match.group(2), value.strip(), (message or detail).strip()))
    return causes


def _invalid(kind: str, name: str, rest: str) -> list[Rejection]:
    ref = f"{kind.lower()}/{name}"
    causes = _causes(rest)
    if not causes:
        return [Rejection(ref, "", f"is invalid: {shorten(rest)}", "")]
    return [Rejection(ref, path, _said(reason, value, message), fix_for(kind, name, path, reason, message))
            for path, reason, value, message in causes]


def _other(block: str) -> Rejection:
    """An error without field causes (not found, forbidden by RBAC, unknown kind…): its last line, shortened."""
    last = [line for line in block.splitlines() if line.strip()][-1]
    text = re.sub(r"^(?:Error from server \(\w+\): |error: )", "", last.strip())
    text = re.sub(r'^.*?\bfor: "[^"]*": ', "", text)
    text = re.sub(r'^error when [a-z ]+"[^"]*": ', "", text)
    kind, name = re.search(r"Kind=(\w+)", block), re.search(r'\bName: "([^"]+)"', block)
    return Rejection(f"{kind.group(1).lower()}/{name.group(1)}" if kind and name else "", "", shorten(text))


def rejections(output: str, documents: Iterable[Mapping[str, Any]] = ()) -> list[Rejection]:
    """The refusals in kubectl's error output (apply, or apply --dry-run=server), one per cause.

    ``documents``: what was sent, to name the object behind a schema error (kubectl names only its kind)."""
    found: list[Rejection] = []
    for block in _BLOCK.split(output):
        block = block.strip()
        if not block.startswith(("Error from server", "error: ", "The ")):
            continue  # warnings and progress lines
        if "ValidationError(" in block:
            found += schema_errors(block, list(documents))
            continue
        if "strict decoding error:" in block:
            found += strict_decoding_errors(block, list(documents))
            continue
        invalid = list(_INVALID.finditer(block))
        if invalid:
            match = invalid[-1]
            found += _invalid(match.group(1), match.group(2), block[match.end():].splitlines()[0])
        else:
            found.append(_other(block))
    return found


# -- kubectl's schema check ---------------------------------------------------------------------------

_SCHEMA = re.compile(r"ValidationError\(([A-Z]\w*)((?:\.[^():]+)?)\): ")
_NAMED = re.compile(r'^(unknown|missing required) field "([^"]+)"')
_TYPE_NAME = re.compile(r"\s*\bin io\.k8s\.[\w.]+|\bio\.k8s\.[\w.]+\.")


def schema_errors(block: str, documents: list[Mapping[str, Any]]) -> list[Rejection]:
    """kubectl's "error validating data: [ValidationError(Kind.path): message, …]": one Rejection per object and cause.

    kubectl names the kind and the field but not the object: the objects of that kind whose field is there (unknown
    field) or missing (missing required field) are named; when none is found, the kind alone."""
    text = block.split("; if you choose to ignore these errors", 1)[0]
    starts = list(_SCHEMA.finditer(text))
    found: list[Rejection] = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        message = text[match.end():end].strip().rstrip(",]").strip()
        kind, path = match.group(1), match.group(2).lstrip(".")
        named = _NAMED.match(message)
        field_path = ".".join(p for p in (path, named.group(2) if named else "") if p)
        if named and named.group(1) == "unknown":
            explain = ".".join(p for p in (kind.lower(), re.sub(r"\[\d+\]", "", path)) if p)
            said, fix = "is not a field there", f"check its name and indentation (`kubectl explain {explain}`)"
        elif named:
            said, fix = "is required", "add it"
        else:
            said, fix = f"is invalid: {shorten(_TYPE_NAME.sub('', message))}", "fix the value's type"
        missing = bool(named and named.group(1) == "missing required")  # in an object that has its parent
        refs = [f"{kind.lower()}/{_meta(d).get('name')}" for d in documents
                if d.get("kind") == kind and (dig(d, field_path) is None if missing else dig(d, field_path) is not None)
                and (not missing or not path or dig(d, path) is not None)]
        found += [Rejection(ref, field_path, said, fix, by_kubectl=True) for ref in refs] or \
            [Rejection("", f"{kind} {field_path}".strip(), said, fix, by_kubectl=True)]
    return found


def strict_decoding_errors(block: str, documents: list[Mapping[str, Any]]) -> list[Rejection]:
    """The API server's own field check (kubectl 1.25 and later): "Deployment in version "v1" cannot be handled as a
    Deployment: strict decoding error: unknown field "spec.replicaz", …"."""
    kind = re.search(r"cannot be handled as an? (\w+)", block)
    name = re.search(r'\bName: "([^"]+)"', block)
    found = []
    for field_path in re.findall(r'unknown field "([^"]+)"', block):
        fix = f"check its name and indentation (`kubectl explain {kind.group(1).lower() if kind else 'KIND'}`)"
        refs = [f"{kind.group(1).lower()}/{name.group(1)}"] if kind and name else \
            [f"{kind.group(1).lower()}/{_meta(d).get('name')}" for d in documents
             if kind and d.get("kind") == kind.group(1) and dig(d, field_path) is not None]
        found += [Rejection(ref, field_path, "is not a field there", fix) for ref in refs] or \
            [Rejection("", f"{kind.group(1) if kind else ''} {field_path}".strip(), "is not a field there", fix)]
    return found


def missing_namespace(stderr: str, namespace: str) -> bool:
    """Whether kubectl failed because the namespace does not exist (yet, or any more)."""
    return bool(namespace) and f'namespaces "{namespace}" not found' in stderr


def namespace_ending(stderr: str) -> str:
    """The namespace kubectl could not create objects in because it is being deleted, or ""."""
    found = re.search(r"in namespace (\S+) because it is being terminated", stderr)
    return found.group(1) if found else ""


def dig(document: Mapping[str, Any], path: str) -> Any:
    """The value at "spec.template.spec.containers[0].image" in a document, or None."""
    value: Any = document
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if step.startswith("["):
            index = int(step[1:-1])
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(step) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value
