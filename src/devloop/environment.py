"""One environment on the cluster: the values its manifests get, its namespace, and its Secrets.

Shared by the manifest renderer (k8s), the TLS certificate (tls) and Helm releases (helm), none of
which needs the others for these. Secrets are applied from a 0600 file: no value is ever echoed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devloop import shell
from devloop.core import render
from devloop.core.errors import KitError
from devloop.core.schema import read_dotenv
from devloop.kit import App, shown_path


def builtin_var(app: App, name: str, minikube_ip: Callable[[], str] | None = None) -> str | None:
    """MINIKUBE_IP (from the cluster, once), INGRESS_HOST and TLS_SECRET (per environment)."""
    s = app.settings
    ip_of = minikube_ip or app.minikube_ip
    if name == "MINIKUBE_IP":
        return ip_of()
    if name == "INGRESS_HOST":
        configured = str(s.tls.get("host") or "")
        ip = ip_of() if not configured or "${MINIKUBE_IP}" in configured else ""
        return render.ingress_host(s.name, s.env, ip, configured)
    if name == "TLS_SECRET":
        return render.tls_secret(s.name, s.env, str(s.tls.get("secret") or ""))
    return None


NAMESPACE_SEEN = "namespace:"  # app fact: this run has seen (or made) the namespace


def ensure_namespace(app: App) -> None:
    """Create the environment's namespace on first use (each environment has its own).

    Asked once per run, before Secrets, TLS secrets and Helm releases are applied; the manifests' apply does not
    ask first: refused for want of the namespace, it forgets the answer, makes it and applies again."""
    namespace = app.settings.namespace
    if namespace:
        app.fact(f"{NAMESPACE_SEEN}{namespace}", lambda: _create_if_missing(app, namespace))


def _create_if_missing(app: App, namespace: str) -> bool:
    found = app.run(app.kubectl("get", "namespace", namespace, "-o", "name", namespaced=False), query=True,
                    capture=True, check=False)
    if found.exited != 0:
        app.run(app.kubectl("create", "namespace", namespace, namespaced=False))
    return True


def _secret_file(app: App, name: str, pattern: str) -> Path:
    """The .env-style file of one app.secrets entry ({env} filled in); a missing one says how to make it."""
    path = app.settings.root / pattern.replace("{env}", app.settings.env)
    if not path.is_file():
        example = path.with_name(path.name + ".example")
        copy = f"cp {os.path.relpath(example, app.settings.root)} {os.path.relpath(path, app.settings.root)} and edit it" \
            if example.is_file() else f"create {path.name} with KEY=value lines"
        raise KitError(f"secret {name}: file {path} not found (environment {app.settings.env})", hint=copy, code=2)
    return path


def secret_documents(app: App) -> list[dict[str, Any]]:
    """Secrets generated from .env-style files (app.secrets: NAME -> file, {env} allowed)."""
    documents = []
    for name, pattern in sorted(app.settings.secrets.items()):
        path = _secret_file(app, name, pattern)
        parsed = read_dotenv(path)
        if parsed.errors:
            raise KitError(f"secret {name}: {path} has lines that cannot be read:\n" +
                           "\n".join(f"  - {e}" for e in parsed.errors), hint="write each line as KEY=value", code=2)
        for value in parsed.values.values():
            shell.register_secret(value)
        document = render.secret_document(name, parsed.values)
        app.origins[id(document)] = path
        documents.append(document)
    return documents


def write_private(path: Path, documents: list[dict[str, Any]]) -> None:
    """Write Secrets to a file only the user can read (mode 0600, also when it already existed)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render.dump(documents))


def apply_secrets(app: App, documents: list[dict[str, Any]], path: Path) -> None:
    """`kubectl apply` Secrets from a 0600 file in the environment's namespace: no value is ever echoed."""
    if not shell.is_dry(app.c):  # nothing is written under --dry; the commands are shown
        app.state_dir.mkdir(exist_ok=True)  # .kit/ with its .gitignore, before anything goes in it
        render.label(documents, app.settings.name, app.settings.env, app.settings.namespace)
        write_private(path, documents)
    ensure_namespace(app)
    app.run(app.kubectl("apply", "-f", shown_path(path)),
            hint=f"the file {shown_path(path)} is kept (mode 0600); `kubectl apply -f` it by hand to retry")
