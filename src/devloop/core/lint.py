"""Checks on the rendered objects before apply, each with the file, the object and the fix.

Pure: ``lint`` takes the rendered objects (and, optionally, the live ones) and returns findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .render import containers, image_repository, pod_specs

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


def lint(documents: list[dict[str, Any]], origins: Mapping[int, Path] | None = None,
         our_images: Iterable[str] = (), built: Mapping[str, str] | None = None,
         live: Mapping[str, Mapping[str, Any]] | None = None) -> list[Finding]:
    """Everything that would fail at apply time or misbehave after it, found before apply.

    ``live`` maps "Kind/namespace/name" to the object in the cluster (for the leftover and Job checks).
    """
    origins = origins or {}
    ours = set(our_images)
    built = built or {}
    findings: list[Finding] = []
    seen: dict[tuple[str, str, str], str] = {}
    templates = [(d, _template_labels(d)) for d in documents if d.get("kind") in POD_OWNERS]

    for doc in documents:
        kind = str(doc.get("kind"))
        meta = doc.get("metadata") or {}
        spec = doc.get("spec") or {}
        where = f"{origins.get(id(doc), '<rendered>')} {_name(doc)}"
        namespace = str(meta.get("namespace") or "")

        if not doc.get("apiVersion") or not meta.get("name"):
            missing = " and ".join(m for m, ok in (("apiVersion", doc.get("apiVersion")), ("metadata.name", meta.get("name")))
                                   if not ok)
            findings.append(Finding(where, f"{kind} has no {missing}", f"add {missing} to the object"))
        key = (kind, namespace, str(meta.get("name")))
        if key in seen:
            findings.append(Finding(where, f"duplicate object: {_name(doc)} is also defined in {seen[key]}",
                                    "rename one of them or delete the copy"))
        else:
            seen[key] = str(origins.get(id(doc), "<rendered>"))

        api = str(doc.get("apiVersion"))
        removed = REMOVED_APIS.get((api, kind)) or REMOVED_APIS.get((api, "*"))
        if removed:
            replacement, version, error = removed
            findings.append(Finding(where, f"apiVersion {api} for {kind} is removed in Kubernetes {version}",
                                    f"use apiVersion: {replacement} (check the fields that changed)", error))

        strategy = spec.get("strategy") or {}
        if kind == "Deployment" and strategy.get("type") == "Recreate":
            if strategy.get("rollingUpdate") is not None:
                findings.append(Finding(where, "spec.strategy.rollingUpdate may not be set when strategy type is Recreate",
                                        "delete the rollingUpdate block (or set rollingUpdate: null)"))
            current = (live or {}).get(f"Deployment/{namespace}/{meta.get('name')}")
            live_strategy = ((current or {}).get("spec") or {}).get("strategy") or {}
            if current and live_strategy.get("rollingUpdate") and "rollingUpdate" not in strategy:
                findings.append(Finding(
                    where, "the live Deployment still has spec.strategy.rollingUpdate from an earlier RollingUpdate "
                           "apply, so applying type Recreate is rejected (Forbidden)",
                    "add `rollingUpdate: null` under spec.strategy in the manifest, or "
                    f"`kubectl delete deployment {meta.get('name')}` and apply again"))

        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            labels = _template_labels(doc)
            if selector and not _matches(selector, labels):
                findings.append(Finding(where, f"spec.selector.matchLabels {selector} does not match the pod template "
                                               f"labels {labels}", "make the template labels include every selector label"))

        if kind == "Service" and spec.get("selector") and spec.get("type") != "ExternalName":
            service_ns = namespace
            if not any(_matches(spec["selector"], labels) for d, labels in templates
                       if str((d.get("metadata") or {}).get("namespace") or "") == service_ns):
                findings.append(Finding(where, f"Service selector {spec['selector']} matches no workload in these manifests",
                                        "fix the selector or the workload's pod labels (ignore if the pods come "
                                        "from elsewhere)", error=False))

        for container in containers(doc):
            reference = str(container.get("image") or "")
            repository = image_repository(reference)
            last = repository.rsplit("/", 1)[-1]
            if repository not in ours and last in {image_repository(o).rsplit("/", 1)[-1] for o in ours} \
                    and reference not in built.values():
                findings.append(Finding(where, f"container {container.get('name')} uses {reference}, which looks like "
                                               "our image but will not get the built tag",
                                        f"write `image: {last}` so the kit fills in the tag it builds", error=False))

        if kind == "Job":
            current = (live or {}).get(f"Job/{namespace}/{meta.get('name')}")
            if current:
                new_pod = next(pod_specs(doc), {})
                old_pod = ((((current.get("spec") or {}).get("template") or {}).get("spec")) or {})
                new_images = [c.get("image") for c in new_pod.get("containers") or []]
                old_images = [c.get("image") for c in old_pod.get("containers") or []]
                new_cmds = [(c.get("command"), c.get("args")) for c in new_pod.get("containers") or []]
                old_cmds = [(c.get("command"), c.get("args")) for c in old_pod.get("containers") or []]
                if new_images != old_images or new_cmds != old_cmds:
                    findings.append(Finding(
                        where, f"Job {meta.get('name')} already exists with another pod template; Jobs are immutable, "
                               "so apply would fail (field is immutable)",
                        f"delete it first (`inv k8s.kubectl -- delete job {meta.get('name')}`), or give the Job a new "
                        "name per version (e.g. a suffix with the tag)"))
    return findings
