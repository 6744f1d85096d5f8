"""Helm 3 command lines: release names scoped by environment, the chart, values files, and the values the kit passes.

Pure: builds argv lists and reads Helm's output; never starts a process. Releases in different
environments (or with different names) never share an Ingress host or a TLS secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KitError

RELEASE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RELEASE_MAX = 53  # Helm's limit: release names become parts of object names and labels
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# What a value template in app.helm.set may use.
FACTS = ("IMAGE_REPOSITORY", "IMAGE_TAG", "INGRESS_HOST", "TLS_SECRET", "RELEASE", "NAMESPACE", "ENV", "MINIKUBE_IP")
VERSION_RE = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Release:
    """A release, and whether it is the environment's own (then it uses the environment's host and secret)."""

    name: str
    is_default: bool


def default_release(app: str, env: str, configured: str = "") -> str:
    """``<release>`` in dev, ``<release>-<env>`` elsewhere (release = app.helm.release or the app's name)."""
    base = configured or app
    return base if env == "dev" else f"{base}-{env}"


def release(app: str, env: str, configured: str = "", given: str | None = None) -> Release:
    default = default_release(app, env, configured)
    name = given or default
    check_release(name)
    return Release(name, name == default)


def check_release(name: str) -> None:
    if len(name) > RELEASE_MAX or not RELEASE_RE.match(name):
        raise KitError(f"{name!r} is not a valid Helm release name",
                       hint=f"use at most {RELEASE_MAX} lowercase letters, digits and '-', starting and ending "
                            "with a letter or digit (--release, or app.helm.release in invoke.yaml)", code=2)


def release_host(rel: Release, env_host: str, ip: str) -> str:
    """The environment's Ingress host for its own release; ``<release>.<ip>.nip.io`` for any other."""
    return env_host if rel.is_default else f"{rel.name}.{ip}.nip.io"


def release_tls_secret(rel: Release, env_secret: str) -> str:
    return env_secret if rel.is_default else f"{rel.name}-tls"


def chart_ref(chart: str, root: Path) -> str:
    """A local chart folder (checked: it has Chart.yaml) or a repository/OCI reference, passed as is."""
    if not chart:
        raise KitError("no Helm chart configured: app.helm.chart is empty",
                       hint="set app.helm.chart in invoke.yaml: a chart folder (charts/demoapp), repo/chart, "
                            "or oci://registry/chart", code=2)
    if chart.startswith("oci://"):
        return chart
    local = Path(chart) if Path(chart).is_absolute() else root / chart
    if local.is_dir():
        if not (local / "Chart.yaml").is_file():
            raise KitError(f"{local} has no Chart.yaml, so it is not a Helm chart",
                           hint="point app.helm.chart at the folder holding Chart.yaml", code=2)
        return str(local)
    looks_local = chart.startswith((".", "/")) or chart.count("/") != 1 or (root / chart.split("/")[0]).is_dir()
    if looks_local:
        raise KitError(f"Helm chart {chart!r} not found (looked for the folder {local})",
                       hint="fix app.helm.chart: a chart folder relative to the app, repo/chart, or oci://…", code=2)
    return chart  # repo/chart from `helm repo add`


def values_files(patterns: Sequence[str], root: Path, env: str) -> list[Path]:
    """app.helm.values with ``{env}`` filled in; every missing file is reported at once."""
    files: list[Path] = []
    missing: list[Path] = []
    for pattern in patterns:
        path = Path(str(pattern).replace("{env}", env))
        path = path if path.is_absolute() else root / path
        (files if path.is_file() else missing).append(path)
    if missing:
        raise KitError("Helm values file(s) not found for environment " + repr(env) + ":\n"
                       + "\n".join(f"  - {p}" for p in missing),
                       hint="create them, or fix app.helm.values in invoke.yaml ({env} is the environment name)",
                       code=2)
    return files


def escape_set_value(value: str) -> str:
    """Helm's --set parser splits on ',' and treats '\\' as an escape: keep the value one literal string."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


def expand(key: str, template: str, facts: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in facts:
            raise KitError(f"app.helm.set.{key}: ${{{name}}} is not something the kit knows",
                           hint="use one of " + ", ".join(f"${{{f}}}" for f in FACTS), code=2)
        return facts[name]

    return PLACEHOLDER.sub(replace, template)


def needed_facts(templates: Mapping[str, Any]) -> set[str]:
    return {m.group(1) for t in templates.values() if t for m in PLACEHOLDER.finditer(str(t))}


def set_args(templates: Mapping[str, Any], facts: Mapping[str, str]) -> list[str]:
    """``--set-string key=value`` for each configured chart value (an empty template drops the key).

    ``--set-string`` keeps a tag such as ``0123e4`` a string (``--set`` would make it a number).
    """
    argv: list[str] = []
    for key, template in templates.items():
        if template is None or str(template) == "":
            continue
        argv += ["--set-string", f"{key}={escape_set_value(expand(str(key), str(template), facts))}"]
    return argv


def user_set_args(sets: Sequence[str] | None) -> list[str]:
    argv: list[str] = []
    for item in sets or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise KitError(f"--set {item!r} is not KEY=VALUE", hint="write --set replicaCount=3 (Helm's syntax)", code=2)
        argv += ["--set", item]
    return argv


def namespace_args(namespace: str) -> list[str]:
    return ["--namespace", namespace] if namespace else []


def context_args(context: str) -> list[str]:
    return ["--kube-context", context] if context else []


def upgrade_argv(rel: str, chart: str, namespace: str, values: Sequence[Path], sets: Sequence[str],
                 context: str = "", wait_seconds: int | None = None) -> list[str]:
    argv = ["helm", "upgrade", "--install", rel, chart, *namespace_args(namespace)]
    if namespace:
        argv.append("--create-namespace")
    for path in values:
        argv += ["--values", str(path)]
    argv += list(sets)
    if wait_seconds:
        argv += ["--wait", "--timeout", f"{wait_seconds}s"]
    return argv + context_args(context)


def template_argv(rel: str, chart: str, namespace: str, values: Sequence[Path], sets: Sequence[str]) -> list[str]:
    argv = ["helm", "template", rel, chart, *namespace_args(namespace)]
    for path in values:
        argv += ["--values", str(path)]
    return argv + list(sets)


def uninstall_argv(rel: str, namespace: str, context: str = "") -> list[str]:
    return ["helm", "uninstall", rel, *namespace_args(namespace), *context_args(context)]


def list_argv(namespace: str, context: str = "", rel: str = "") -> list[str]:
    argv = ["helm", "list", *namespace_args(namespace), "--output", "json"]
    if rel:
        argv += ["--filter", f"^{re.escape(rel)}$"]
    return argv + context_args(context)


def check_version(output: str) -> str:
    """The Helm version from `helm version --short`; Helm 2 (the upstream's) is refused with the way out."""
    match = VERSION_RE.search(output or "")
    if not match:
        raise KitError("cannot tell which Helm this is", evidence=output,
                       hint="install Helm 3 (https://helm.sh/docs/intro/install/)")
    major = int(match.group(1))
    if major < 3:
        raise KitError(f"Helm {match.group(0)} is Helm 2: the kit speaks Helm 3 (no Tiller, `upgrade --install`, "
                       "`uninstall`, `--create-namespace`)",
                       hint="install Helm 3; migrate old releases with the helm-2to3 plugin", code=2)
    return match.group(0)


def parse_releases(output: str) -> list[dict[str, Any]]:
    """`helm list --output json`: a JSON array of releases (name, namespace, revision, status, chart…)."""
    try:
        data = json.loads(output or "[]")
    except ValueError:
        raise KitError("`helm list` did not print JSON", evidence=output[-2000:]) from None
    if not isinstance(data, list):
        raise KitError("`helm list` printed JSON that is not a list of releases", evidence=output[-2000:])
    return [r for r in data if isinstance(r, dict)]
