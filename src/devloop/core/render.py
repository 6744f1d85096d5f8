"""Rendering manifests: strict ${NAME} substitution, parse-back, our images' tags, the kit's labels.

Pure: takes file texts and values, returns documents or raises KitError naming file and line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KitError
from .schema import RefusedYaml, strict_loader, yaml_error

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Always declared; computed (MINIKUBE_IP from the cluster) only when a manifest uses them.
BUILTIN_VARS = ("MINIKUBE_IP", "INGRESS_HOST", "TLS_SECRET")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # per file: a 24 MB one took 18 s and 205 MB to parse
LABEL = "devloop/app"
ENV_LABEL = "devloop/env"
CONFIG_HASH = "devloop/config-hash"  # pod template annotation: the content of the ConfigMaps and Secrets it reads
ROLLED_ON_CONFIG = ("Deployment", "StatefulSet", "DaemonSet")
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
    "CustomResourceDefinition", "IngressClass", "PriorityClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "Node", "CSIDriver", "RuntimeClass",
}
# A value that could change the YAML around it (rather than become part of one scalar).
UNSAFE = [
    (re.compile(r"[\r\n]"), "a line break"),
    (re.compile(r":(\s|$)"), "': ' (starts a mapping)"),
    (re.compile(r"(^|\s)#"), "' #' (starts a comment)"),
    (re.compile(r"^[\[\]{}*&!|>%@`,]"), "a leading YAML indicator character"),
    (re.compile(r"[\"']"), "a quote"),
    (re.compile(r"^\s|\s$"), "leading or trailing space"),
    (re.compile(r"[\[\]{},]"), "a flow-collection character ([ ] { } ,)"),
]


@dataclass(frozen=True)
class Source:
    """One manifest file's text (or kustomize output) and where it came from."""

    path: Path
    text: str


@dataclass(frozen=True)
class Use:
    name: str
    path: Path
    line: int


def manifest_files(folder: Path) -> list[Path]:
    """The YAML files of a manifest folder, in a stable order (sorted paths, subfolders included)."""
    if not folder.is_dir():
        raise KitError(f"manifest folder {folder} does not exist",
                       hint="create it, or point app.manifests (or the environment's manifests) at your YAML folder",
                       code=2)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return files


def uses(sources: Iterable[Source], declared: Iterable[str]) -> list[Use]:
    """Every declared placeholder in the sources, with file and line (comments included: they render too)."""
    names = set(declared)
    found = []
    for source in sources:
        for number, line in enumerate(source.text.splitlines(), start=1):
            for match in PLACEHOLDER.finditer(line):
                if match.group(1) in names:
                    found.append(Use(match.group(1), source.path, number))
    return found


def undeclared(sources: Iterable[Source], declared: Iterable[str]) -> list[Use]:
    """``${NAME}`` placeholders that are not declared: left alone, but worth a warning."""
    names = set(declared)
    return [
        Use(m.group(1), s.path, n)
        for s in sources
        for n, line in enumerate(s.text.splitlines(), start=1)
        if not line.lstrip().startswith("#")
        for m in PLACEHOLDER.finditer(line)
        if m.group(1) not in names
    ]


def ingress_host(app: str, env: str, ip: str, configured: str = "") -> str:
    """``<app>.<ip>.nip.io`` for dev, ``<app>-<env>.<ip>.nip.io`` otherwise, so environments never clash."""
    if configured:
        return configured.replace("${MINIKUBE_IP}", ip)
    return f"{app}.{ip}.nip.io" if env == "dev" else f"{app}-{env}.{ip}.nip.io"


def tls_secret(app: str, env: str, configured: str = "") -> str:
    return configured or (f"{app}-tls" if env == "dev" else f"{app}-{env}-tls")


def unsafe_reason(value: str) -> str | None:
    for pattern, reason in UNSAFE:
        if pattern.search(value):
            return reason
    return None


def resolve(names: Iterable[str], layers: list[tuple[str, Mapping[str, Any]]],
            facts: Callable[[str], str | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Values for ``names``: the first layer that has one wins; a cluster fact comes last.

    Returns (values, origin of each value). ``facts`` is called only for names still missing.
    """
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    for name in sorted(set(names)):
        for label, layer in layers:
            if layer.get(name) is not None:
                values[name], origin[name] = str(layer[name]), label
                break
        else:
            fact = facts(name)
            if fact is not None:
                values[name], origin[name] = fact, "cluster"
    return values, origin


def substitute(sources: list[Source], declared: Iterable[str], values: Mapping[str, str],
               origin: Mapping[str, str] | None = None) -> list[Source]:
    """Replace declared placeholders; all undefined ones and unsafe values are reported at once."""
    declared = set(declared)
    problems = []
    missing = [u for u in uses(sources, declared) if u.name not in values]
    for use in missing:
        problems.append(f"{use.path}:{use.line}: ${{{use.name}}} is not defined")
    for name in sorted({u.name for u in uses(sources, declared)} & set(values)):
        reason = unsafe_reason(values[name])
        if reason:
            src = (origin or {}).get(name, "its source")
            problems.append(f"the value of {name} (from {src}) contains {reason}, which would change the YAML structure")
    if problems:
        hint = ("give each missing value with --set NAME=VALUE, in .env, or under app.vars in invoke.yaml"
                if missing else "change the value, or quote the placeholder in the manifest and pass a plain value")
        raise KitError("cannot render the manifests:\n" + "\n".join(f"  - {p}" for p in problems), hint=hint, code=2)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in declared else match.group(0)

    return [Source(s.path, PLACEHOLDER.sub(replace, s.text)) for s in sources]


def parse(sources: Iterable[Source], origins: dict[int, Path] | None = None) -> list[dict[str, Any]]:
    """Parse rendered sources into objects; a syntax error names file, line and the parser's words.

    ``origins`` (if given) receives id(object) -> the file it came from, for lint messages.
    """
    import yaml  # kept local for start-up time: `inv --list` never renders

    loader = strict_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    documents: list[dict[str, Any]] = []
    for source in sources:
        check_size(source)
        try:
            loaded = list(yaml.load_all(source.text, Loader=loader))
        except (yaml.YAMLError, RefusedYaml) as exc:
            raise yaml_error(source.path, exc, source.text) from None
        for index, doc in enumerate(loaded):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                raise KitError(f"{source.path}: document {index + 1} is not a Kubernetes object (no kind:)",
                               hint="each YAML document must be a mapping with apiVersion, kind and metadata", code=2)
            found = [i for i in doc.get("items") or [] if isinstance(i, dict)] if doc.get("kind") == "List" else [doc]
            for item in found:
                documents.append(item)
                if origins is not None:
                    origins[id(item)] = source.path
    return documents


def check_size(source: Source, limit: int = MAX_MANIFEST_BYTES) -> None:
    """Refuse a manifest file too big to parse in reasonable time and memory, before parsing it."""
    size = len(source.text.encode("utf-8", "surrogateescape"))
    if size > limit:
        raise KitError(f"{source.path}: {size / 2**20:.1f} MB, more than the {limit / 2**20:.0f} MB the kit parses "
                       "in one manifest file", code=2,
                       hint="split it into several files (every *.yaml in the folder is read), or keep bulk data out "
                            "of the manifests (a ConfigMap from files, a volume)")


def secret_document(name: str, values: Mapping[str, str]) -> dict[str, Any]:
    """An Opaque Secret from plain values: nobody writes base64 by hand."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "stringData": dict(values)}


def masked(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the documents with every Secret value replaced by ****, for printing."""

    shown = copy.deepcopy(documents)
    for doc in shown:
        if doc.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if isinstance(doc.get(key), dict):
                    doc[key] = {k: "****" for k in doc[key]}
    return shown


def pod_specs(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod spec(s) inside a workload object (Pod, Deployment…, Job, CronJob)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        yield spec
    elif doc.get("kind") == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
        if isinstance(pod, dict):
            yield pod
    elif isinstance(spec.get("template"), dict) and isinstance(spec["template"].get("spec"), dict):
        yield spec["template"]["spec"]


def containers(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for pod in pod_specs(doc):
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                if isinstance(container, dict):
                    yield container


def image_repository(reference: str) -> str:
    """``registry/name:tag@sha256:…`` → ``registry/name``."""
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _named(mapping: Any, key: str) -> str:
    return str(mapping.get(key) or "") if isinstance(mapping, Mapping) else ""


def config_reads(pod: Mapping[str, Any]) -> set[tuple[str, str]]:
    """("ConfigMap" | "Secret", name) of what a pod spec reads: env, envFrom and volumes (projected ones too)."""
    found: set[tuple[str, str]] = set()
    containers = [c for c in [*_list(pod.get("initContainers")), *_list(pod.get("containers"))] if isinstance(c, Mapping)]
    for container in containers:
        for source in _list(container.get("envFrom")):
            found |= {("ConfigMap", _named(_field(source, "configMapRef"), "name")),
                      ("Secret", _named(_field(source, "secretRef"), "name"))}
        for var in _list(container.get("env")):
            source = _field(var, "valueFrom")
            found |= {("ConfigMap", _named(_field(source, "configMapKeyRef"), "name")),
                      ("Secret", _named(_field(source, "secretKeyRef"), "name"))}
    for volume in _list(pod.get("volumes")):
        found |= {("ConfigMap", _named(_field(volume, "configMap"), "name")),
                  ("Secret", _named(_field(volume, "secret"), "secretName"))}
        for projected in _list(_field(_field(volume, "projected"), "sources")):
            found |= {("ConfigMap", _named(_field(projected, "configMap"), "name")),
                      ("Secret", _named(_field(projected, "secret"), "name"))}
    return {(kind, name) for kind, name in found if name}


def _field(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # a malformed field is lint's and the server's to report


def _content(doc: Mapping[str, Any]) -> str:
    """A ConfigMap's or Secret's data, the same text for the same content (keys of any type, in any order)."""
    parts = []
    for field in ("data", "stringData", "binaryData"):
        value = doc.get(field)
        items = sorted((str(k), str(v)) for k, v in value.items()) if isinstance(value, Mapping) else str(value)
        parts.append(json.dumps(items))
    return "|".join(parts)


def hash_config(documents: list[dict[str, Any]]) -> None:
    """Annotate the pod template of each Deployment, StatefulSet and DaemonSet with a hash of the ConfigMaps and
    Secrets of this set that its pods read, so a change to them rolls the pods (which read them only at start).

    The hash is of the content, as kustomize's generators name a ConfigMap or Secret by it; nothing else of a
    Secret is written. Workloads that read none of them are left as they are."""
    contents = {(str(d.get("kind")), _named(d.get("metadata"), "name")): _content(d)
                for d in documents if d.get("kind") in ("ConfigMap", "Secret")}
    for doc in documents:
        template = _field(doc.get("spec"), "template")
        if doc.get("kind") not in ROLLED_ON_CONFIG or not isinstance(_field(template, "spec"), Mapping):
            continue
        read = sorted(config_reads(template["spec"]) & contents.keys())
        if not read:
            continue
        digest = hashlib.sha256("\n".join(f"{kind}/{name}:{contents[(kind, name)]}" for kind, name in read).encode())
        metadata = template.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        annotations = metadata.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        annotations[CONFIG_HASH] = digest.hexdigest()[:16]
        metadata["annotations"] = annotations
        template["metadata"] = metadata


def set_images(documents: list[dict[str, Any]], built: Mapping[str, str]) -> list[str]:
    """Point containers that use one of our images at its built reference; returns what changed.

    ``built`` maps the name used in manifests (``demoapp``) to the reference to run
    (``demoapp:3f2a…`` or ``registry/demoapp:3f2a…``). Third-party images are left as they are.
    """
    changes = []
    for doc in documents:
        for container in containers(doc):
            reference = str(container.get("image") or "")
            repository = image_repository(reference)
            target = built.get(repository)
            if target is None:
                target = next((ref for name, ref in built.items() if image_repository(ref) == repository), None)
            if target is None:
                continue
            container["image"] = target
            container["imagePullPolicy"] = "IfNotPresent"
            changes.append(f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')} {container.get('name')}: {target}")
    return changes


def label(documents: list[dict[str, Any]], app: str, env: str, namespace: str = "",
          origins: Mapping[int, Path] | None = None) -> list[str]:
    """Mark every object so `down` removes exactly what the kit applied; pin the namespace if set.

    Returns a warning for each object whose own ``metadata.namespace`` the environment's replaced
    (``origins``: id(object) -> its manifest file, to name it).
    """
    warnings = []
    for doc in documents:
        metadata = doc.get("metadata") or {}  # an empty `metadata:` is None
        doc["metadata"] = metadata
        labels = metadata.get("labels") or {}
        labels[LABEL] = app
        labels[ENV_LABEL] = env
        metadata["labels"] = labels
        _label_pods(doc, app, env)
        if namespace and doc.get("kind") not in CLUSTER_SCOPED:
            own = metadata.get("namespace")
            if own and own != namespace:
                warnings.append(namespace_replaced(doc, str(own), namespace, (origins or {}).get(id(doc))))
            metadata["namespace"] = namespace
    return warnings


def namespace_replaced(doc: Mapping[str, Any], own: str, namespace: str, origin: Path | None) -> str:
    where = f"{origin}: " if origin else ""
    return (f"{where}{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')} says namespace {own!r}; "
            f"the environment's namespace {namespace!r} is used instead (every object goes to the environment's "
            "namespace)")


POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}  # Jobs' templates are immutable: left alone


def _label_pods(doc: dict[str, Any], app: str, env: str) -> None:
    """Label the pods a workload makes, so a live update finds exactly this app's and environment's containers."""
    template = (doc.get("spec") or {}).get("template") if doc.get("kind") in POD_OWNERS else None
    if not isinstance(template, dict):
        return
    metadata = template.get("metadata") or {}
    template["metadata"] = metadata
    metadata["labels"] = dict(metadata.get("labels") or {}, **{LABEL: app, ENV_LABEL: env})


def dump(documents: list[dict[str, Any]]) -> str:
    import yaml  # kept local for start-up time: `inv --list` never renders

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=False, default_flow_style=False)


def workloads(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """kind/name of what a rollout waits for: Deployments, StatefulSets, DaemonSets and Jobs."""
    kinds = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset", "Job": "job"}
    return [f"{kinds[d['kind']]}/{d['metadata']['name']}" for d in documents
            if d.get("kind") in kinds and (d.get("metadata") or {}).get("name")]
