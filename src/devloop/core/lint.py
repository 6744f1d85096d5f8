"""Checks on the rendered objects before apply, each with the file, the object and the fix.

Pure: ``lint`` takes the rendered objects (and, optionally, the live ones) and returns findings. Each
check is a small rule function in ``RULES``: it gets one object and the context, and yields findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .converge import Rejection, template_changed
from .render import containers, image_repository

# (apiVersion, kind or "*") -> (replacement, Kubernetes version that removed it, error?)
REMOVED_APIS: dict[tuple[str, str], tuple[str, str, bool]] = {
    ("extensions/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22", True),
    ("extensions/v1beta1", "Deployment"): ("apps/v1", "1.16", True),
    ("extensions/v1beta1", "DaemonSet"): ("apps/v1", "1.16", True),
    ("extensions/v1beta1", "ReplicaSet"): ("apps/v1", "1.16", True),
    ("extensions/v1beta1", "NetworkPolicy"): ("networking.k8s.io/v1", "1.16", True),
    ("extensions/v1beta1", "PodSecurityPolicy"): ("(removed; use Pod Security admission)", "1.25", True),
    ("apps/v1beta1", "*"): ("apps/v1", "1.16", True),
    ("apps/v1beta2", "*"): ("apps/v1", "1.16", True),
    ("networking.k8s.io/v1beta1", "Ingress"): ("networking.k8s.io/v1", "1.22", True),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("networking.k8s.io/v1", "1.22", True),
    ("rbac.authorization.k8s.io/v1beta1", "*"): ("rbac.authorization.k8s.io/v1", "1.22", True),
    ("apiextensions.k8s.io/v1beta1", "*"): ("apiextensions.k8s.io/v1", "1.22", True),
    ("admissionregistration.k8s.io/v1beta1", "*"): ("admissionregistration.k8s.io/v1", "1.22", True),
    ("scheduling.k8s.io/v1beta1", "*"): ("scheduling.k8s.io/v1", "1.22", True),
    ("storage.k8s.io/v1beta1", "*"): ("storage.k8s.io/v1", "1.22", True),
    # Still served by 1.20/1.21 clusters (batch/v1 CronJob arrived in 1.21): a warning, not an error.
    ("batch/v1beta1", "CronJob"): ("batch/v1", "1.25", False),
    ("policy/v1beta1", "PodDisruptionBudget"): ("policy/v1", "1.25", False),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.25", False),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling/v2", "1.26", False),
}
POD_OWNERS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


@dataclass(frozen=True)
class Finding:
    where: str  # file (and object)
    message: str
    fix: str
    error: bool = True
    ref: str = ""  # kind/name of the object, as kubectl and the API server name it
    live: bool = False  # a guess from the live objects: an error only once the API server confirms it

    def __str__(self) -> str:
        level = "error" if self.error else "warning"
        return f"{self.where}: {level}: {self.message}\n    fix: {self.fix}"


def _name(doc: Mapping[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def _matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _template_labels(doc: Mapping[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return dict((doc.get("metadata") or {}).get("labels") or {})
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    return dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})


@dataclass(frozen=True)
class Subject:
    """One rendered object and the fields every rule reads."""

    doc: Mapping[str, Any]
    origin: str  # the file it came from, or <rendered>
    kind: str
    name: Any  # metadata.name as written (None when missing)
    namespace: str
    spec: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{self.origin} {_name(self.doc)}"


def subject(doc: Mapping[str, Any], origins: Mapping[int, Path]) -> Subject:
    meta = doc.get("metadata") or {}
    return Subject(doc, str(origins.get(id(doc), "<rendered>")), str(doc.get("kind")), meta.get("name"),
                   str(meta.get("namespace") or ""), doc.get("spec") or {})


@dataclass
class Context:
    """What the rules compare an object with: our images, the built tags, the live objects, the whole set."""

    ours: set[str] = field(default_factory=set)
    built: Mapping[str, str] = field(default_factory=dict)
    live: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    templates: list[tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=list)  # pod owners, their labels
    seen: dict[tuple[str, str, str], str] = field(default_factory=dict)  # filled as objects go by: duplicates

    @property
    def our_names(self) -> set[str]:
        return {image_repository(o).rsplit("/", 1)[-1] for o in self.ours}


def context(documents: list[dict[str, Any]], our_images: Iterable[str] = (), built: Mapping[str, str] | None = None,
            live: Mapping[str, Mapping[str, Any]] | None = None) -> Context:
    """The rules' context for one rendered set (``live``: "Kind/namespace/name" -> the object in the cluster)."""
    return Context(set(our_images), built or {}, live or {},
                   [(d, _template_labels(d)) for d in documents if d.get("kind") in POD_OWNERS])


Rule = Callable[[Subject, Context], Iterator[Finding]]


def missing_fields(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """An object without apiVersion or metadata.name."""
    api = obj.doc.get("apiVersion")
    if not api or not obj.name:
        missing = " and ".join(m for m, ok in (("apiVersion", api), ("metadata.name", obj.name)) if not ok)
        yield Finding(obj.where, f"{obj.kind} has no {missing}", f"add {missing} to the object")


def duplicate(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """The same kind, namespace and name twice: the later one is reported, naming the first's file."""
    key = (obj.kind, obj.namespace, str(obj.name))
    if key in ctx.seen:
        yield Finding(obj.where, f"duplicate object: {_name(obj.doc)} is also defined in {ctx.seen[key]}",
                      "rename one of them or delete the copy")
    else:
        ctx.seen[key] = obj.origin


def removed_api(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """An apiVersion that newer Kubernetes no longer serves (REMOVED_APIS)."""
    api = str(obj.doc.get("apiVersion"))
    removed = REMOVED_APIS.get((api, obj.kind)) or REMOVED_APIS.get((api, "*"))
    if removed:
        replacement, version, error = removed
        yield Finding(obj.where, f"apiVersion {api} for {obj.kind} is removed in Kubernetes {version}",
                      f"use apiVersion: {replacement} (check the fields that changed)", error)


def recreate_strategy(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """A Recreate Deployment with a rollingUpdate block, in the manifest or left over in the live object."""
    strategy = obj.spec.get("strategy") or {}
    if obj.kind != "Deployment" or strategy.get("type") != "Recreate":
        return
    if strategy.get("rollingUpdate") is not None:
        yield Finding(obj.where, "spec.strategy.rollingUpdate may not be set when strategy type is Recreate",
                      "delete the rollingUpdate block (or set rollingUpdate: null)")
    current = ctx.live.get(f"Deployment/{obj.namespace}/{obj.name}")
    live_strategy = ((current or {}).get("spec") or {}).get("strategy") or {}
    if current and live_strategy.get("rollingUpdate") and "rollingUpdate" not in strategy:
        yield Finding(
            obj.where, "the live Deployment still has spec.strategy.rollingUpdate from an earlier RollingUpdate "
                       "apply, so applying type Recreate may be rejected (Forbidden)",
            "add `rollingUpdate: null` under spec.strategy in the manifest, or "
            f"`kubectl delete deployment {obj.name}` and apply again", ref=f"deployment/{obj.name}", live=True)


def selector_mismatch(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """A workload whose selector does not select its own pod template."""
    if obj.kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return
    selector = (obj.spec.get("selector") or {}).get("matchLabels") or {}
    labels = _template_labels(obj.doc)
    if selector and not _matches(selector, labels):
        yield Finding(obj.where, f"spec.selector.matchLabels {selector} does not match the pod template "
                                 f"labels {labels}", "make the template labels include every selector label")


def service_selects_nothing(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """A Service whose selector matches no workload in its namespace (a warning: pods may come from elsewhere)."""
    selector = obj.spec.get("selector")
    if obj.kind != "Service" or not selector or obj.spec.get("type") == "ExternalName":
        return
    if not any(_matches(selector, labels) for d, labels in ctx.templates
               if str((d.get("metadata") or {}).get("namespace") or "") == obj.namespace):
        yield Finding(obj.where, f"Service selector {selector} matches no workload in these manifests",
                      "fix the selector or the workload's pod labels (ignore if the pods come "
                      "from elsewhere)", error=False)


def foreign_image(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """A container naming our image under another registry: it would not get the built tag."""
    names = ctx.our_names
    for container in containers(obj.doc):
        reference = str(container.get("image") or "")
        repository = image_repository(reference)
        last = repository.rsplit("/", 1)[-1]
        if repository not in ctx.ours and last in names and reference not in ctx.built.values():
            yield Finding(obj.where, f"container {container.get('name')} uses {reference}, which looks like "
                                     "our image but will not get the built tag",
                          f"write `image: {last}` so the kit fills in the tag it builds", error=False)


def job_changed(obj: Subject, ctx: Context) -> Iterator[Finding]:
    """A Job that exists with another pod template (and is not rerun): Jobs are immutable, so apply would fail."""
    current = ctx.live.get(f"Job/{obj.namespace}/{obj.name}") if obj.kind == "Job" else None
    if current and template_changed(obj.doc, current):
        yield Finding(
            obj.where, f"Job {obj.name} already exists with another pod template; Jobs are immutable, "
                       "so apply would fail (field is immutable)",
            f"delete it first (`inv k8s.kubectl -- delete job {obj.name}`), let the kit rerun it (rerun_jobs: "
            "true for this environment), or give the Job a new name per version (e.g. a suffix with ${IMAGE_TAG})",
            ref=f"job/{obj.name}", live=True)


# Checked in this order for each object, objects in the order given.
RULES: list[Rule] = [missing_fields, duplicate, removed_api, recreate_strategy, selector_mismatch,
                     service_selects_nothing, foreign_image, job_changed]


def lint(documents: list[dict[str, Any]], origins: Mapping[int, Path] | None = None,
         our_images: Iterable[str] = (), built: Mapping[str, str] | None = None,
         live: Mapping[str, Mapping[str, Any]] | None = None) -> list[Finding]:
    """Everything that would fail at apply time or misbehave after it, found before apply.

    ``live`` maps "Kind/namespace/name" to the object in the cluster (for the leftover and Job checks).
    """
    ctx = context(documents, our_images, built, live)
    subjects = [subject(doc, origins or {}) for doc in documents]
    return [finding for obj in subjects for rule in RULES for finding in rule(obj, ctx)]


def places(documents: list[dict[str, Any]], origins: Mapping[int, Path] | None = None) -> dict[str, str]:
    """kind/name -> "file Kind/name", to say where an object the API server refused comes from."""
    found: dict[str, str] = {}
    for doc in documents:
        obj = subject(doc, origins or {})
        found.setdefault(f"{obj.kind.lower()}/{obj.name}", obj.where)
    return found


def confirm(findings: list[Finding], refused: list[Rejection],
            where: Mapping[str, str]) -> tuple[list[Finding], list[Finding]]:
    """Live guesses checked against the API server's answer to a dry run: (findings to report, guesses it accepted).

    A live error on an object the server accepted is dropped; each refusal becomes an error naming the field
    and the fix (in place of the guess about that object).
    """
    refused_refs = {r.ref for r in refused}
    guesses = [f for f in findings if f.live and f.error]
    kept = [f for f in findings if not (f.live and f.error)]
    answers = [Finding(where.get(r.ref, r.ref or ("<kubectl>" if r.by_kubectl else "<server>")), f"{r.field} {r.said}".strip(),
                       r.fix or "see the message; `inv k8s.lint` asks the server again", ref=r.ref) for r in refused]
    return kept + answers, [f for f in guesses if f.ref not in refused_refs]
