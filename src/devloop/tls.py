"""TLS for the Ingress: a self-signed certificate per environment, made again when the host changes, kept as a Secret.

Files live in the app's ``.kit/tls/<env>/<secret>/`` (git-ignored, key mode 0600). The key never
appears in an echoed command: Secrets are applied from a 0600 file.
"""

from __future__ import annotations

import os
import time
from typing import Any

from invoke import Collection, Context

from devloop import shell
from devloop.core import render
from devloop.core import tls as core
from devloop.environment import apply_secrets, builtin_var
from devloop.kit import STATE_DIR, App, kit_task, shown_path


def now() -> float:
    """The wall clock (certificates expire in calendar time); tests replace it."""
    return time.time()


def env_host_and_secret(app: App) -> tuple[str, str]:
    """${INGRESS_HOST} and ${TLS_SECRET} of the app's environment, exactly as manifests get them."""
    return str(builtin_var(app, "INGRESS_HOST")), str(builtin_var(app, "TLS_SECRET"))


def files_for(app: App, secret: str) -> core.CertFiles:
    """Where the environment's certificate for ``secret`` lives (nothing is created here)."""
    core.check_secret_name(secret)
    return core.cert_files(app.settings.root / STATE_DIR, app.settings.env, secret)


def recorded(files: core.CertFiles) -> core.CertInfo | None:
    return core.read_info(files.info.read_text(encoding="utf-8")) if files.present() else None


def ensure_certificate(app: App, host: str, secret: str, force: bool = False) -> core.CertFiles:
    """A current self-signed certificate for ``host`` (made with openssl only when missing, stale or forced)."""
    core.check_host(host)
    files = files_for(app, secret)
    info = recorded(files)
    reason = "--force was given" if force else core.renewal_reason(info, host, now())
    if reason is None and info is not None:
        app.say(f"tls: the certificate for {host} is current (valid until {core.day(info.not_after)}); kept")
        return files
    app.say(f"tls: making a self-signed certificate for {host}: {reason}")
    if shell.is_dry(app.c):
        app.run(core.openssl_argv(files))
        return files
    kit_dir = app.state_dir  # creates .kit/ (git-ignored) on first use
    files.folder.mkdir(parents=True, exist_ok=True)
    for folder in (kit_dir / "tls", files.folder.parent, files.folder):
        folder.chmod(0o700)
    files.request_config.write_text(core.request_config(host, app.settings.name), encoding="utf-8")
    app.run(core.openssl_argv(files), capture=True,
            hint="check that openssl works: openssl version (Debian: apt-get install openssl)")
    staged_key, staged_cert = files.staged(files.key), files.staged(files.cert)
    staged_key.chmod(0o600)
    os.replace(staged_key, files.key)
    os.replace(staged_cert, files.cert)
    files.info.write_text(core.new_info(host, now()).to_json(), encoding="utf-8")
    return files


def secret_document(app: App, files: core.CertFiles, secret: str) -> dict[str, Any]:
    """The kubernetes.io/tls Secret, labelled like everything the kit applies (so `down` removes it)."""
    doc = core.secret_document(secret, files.cert.read_bytes(), files.key.read_bytes(), app.settings.namespace)
    shell.register_secret(doc["data"]["tls.key"])
    render.label([doc], app.settings.name, app.settings.env, app.settings.namespace)
    return doc


def apply_certificate(app: App, files: core.CertFiles, secret: str) -> None:
    """Store the certificate as a kubernetes.io/tls Secret in the environment's namespace."""
    apply_secrets(app, [] if shell.is_dry(app.c) else [secret_document(app, files, secret)], files.secret)


def tls_documents(app: App) -> list[dict[str, Any]]:
    """The environment's TLS Secret when `inv tls.cert` made a certificate for the current host; else nothing.

    A certificate made for another host (the minikube IP changed) is left out with a warning, never served.
    """
    secret = str(builtin_var(app, "TLS_SECRET"))
    files = files_for(app, secret)
    info = recorded(files)
    if info is None:
        return []
    host = str(builtin_var(app, "INGRESS_HOST"))
    reason = core.renewal_reason(info, host, now())
    if reason is not None and (info.host != host or info.not_after <= now()):
        app.warn(f"TLS secret {secret} left out: {reason}; make a new one: inv tls.cert --env {app.settings.env}")
        return []
    return [secret_document(app, files, secret)]


# -- tasks --------------------------------------------------------------------------------------


@kit_task(default=True, help={"force": "make a new certificate even if the current one fits the host"})
def cert(c: Context, env: str | None = None, force: bool = False, allow_context: bool = False) -> None:
    """Make the Ingress host's TLS cert; store as a Secret."""
    app = App.load(c, env, allow_context)
    app.context()  # the guard, before any file is written: a refused run leaves no key or Secret behind
    host, secret = env_host_and_secret(app)
    files = ensure_certificate(app, host, secret, force)
    apply_certificate(app, files, secret)
    where = f"namespace {app.settings.namespace}" if app.settings.namespace else "the context's namespace"
    holds = "would hold" if shell.is_dry(app.c) else "holds"
    app.say(f"tls: Secret {secret} ({where}) {holds} a self-signed certificate for {host}; an Ingress serves it on "
            f"https://{host}/ when its tls: section names ${{TLS_SECRET}} for ${{INGRESS_HOST}}. Trust it with: "
            f"curl --cacert {shown_path(files.cert)} https://{host}/")


ns = Collection("tls")
ns.add_task(cert)
