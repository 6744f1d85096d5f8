"""Helm releases of the app's chart: one per environment by default, each with its own Ingress host and TLS secret.

Helm 3 syntax only. The kit passes the built image's repository and tag, the Ingress host and the
release's TLS secret name as chart values (app.helm.set says which values take them).
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Context

from devloop import image as images
from devloop import shell
from devloop import tls as tls_tasks
from devloop.core import config, render
from devloop.core import helm as core
from devloop.core.errors import KitError
from devloop.environment import apply_secrets, builtin_var, secret_documents
from devloop.kit import STATE_DIR, App, kit_task, print_table


def helm_version(app: App) -> str:
    """`helm version --short`, once per run; Helm 2 stops here with the way out."""
    def compute() -> str:
        argv = ["helm", "version", "--short"]
        result = app.run(argv, query=True, capture=True, check=False)
        output = (result.stdout or "") + (result.stderr or "")
        if result.exited != 0 and "v2." not in output:
            raise shell.failure(argv, result.exited, output, "install Helm 3 (https://helm.sh/docs/intro/install/)")
        return core.check_version(output)

    return str(app.fact("helm_version", compute))


def chart_image(app: App) -> config.Image:
    """The app image the chart runs: app.helm.image, or the only one in app.images."""
    s = app.settings
    name = str(s.helm.get("image") or "")
    if name:
        return s.image(name)
    if len(s.images) == 1:
        return s.images[0]
    if not s.images:
        raise KitError("app.helm.set uses ${IMAGE_REPOSITORY}/${IMAGE_TAG} but app.images is empty",
                       hint="add the app's image under app.images, or drop those values from app.helm.set", code=2)
    raise KitError(f"app.images has {len(s.images)} images; which one does the chart run?",
                   hint="set app.helm.image to one of: " + ", ".join(i.name for i in s.images), code=2)


class Plan:
    """One release's command-line inputs, computed from config and cluster facts (nothing run yet)."""

    def __init__(self, release: core.Release, namespace: str, app: App) -> None:
        self.release, self.namespace, self.app = release, namespace, app
        self._facts: dict[str, str] = {}

    def fact(self, name: str) -> str:
        if name not in self._facts:
            self._facts[name] = self._compute(name)
        return self._facts[name]

    def _compute(self, name: str) -> str:
        app, rel = self.app, self.release
        if name in ("IMAGE_REPOSITORY", "IMAGE_TAG"):
            planned = images.plan(app, chart_image(app))
            return render.image_repository(images.deliver_ref(app, planned)) if name == "IMAGE_REPOSITORY" else planned.tag
        if name == "INGRESS_HOST":
            env_host = str(builtin_var(app, "INGRESS_HOST")) if rel.is_default else ""
            return core.release_host(rel, env_host, "" if rel.is_default else app.minikube_ip())
        if name == "TLS_SECRET":
            return core.release_tls_secret(rel, str(builtin_var(app, "TLS_SECRET")))
        if name == "MINIKUBE_IP":
            return app.minikube_ip()
        return {"RELEASE": rel.name, "NAMESPACE": self.namespace, "ENV": app.settings.env}[name]

    def chart(self) -> str:
        return core.chart_ref(str(self.app.settings.helm.get("chart") or ""), self.app.settings.root)

    def values(self) -> list[Path]:
        configured = self.app.settings.helm.get("values") or []
        patterns = [configured] if isinstance(configured, str) else [str(v) for v in configured]
        return core.values_files(patterns, self.app.settings.root, self.app.settings.env)

    def sets(self, user: list[str] | None) -> list[str]:
        templates = dict(self.app.settings.helm.get("set") or {})
        facts = {name: self.fact(name) for name in sorted(core.needed_facts(templates)) if name in core.FACTS}
        return core.set_args(templates, facts) + core.user_set_args(user)


def plan(app: App, release: str | None) -> Plan:
    s = app.settings
    rel = core.release(s.name, s.env, str(s.helm.get("release") or ""), release)
    return Plan(rel, s.namespace, app)


def apply_release_secrets(app: App, p: Plan, host: str, tls: bool = True) -> None:
    """The Secrets the release needs, applied before Helm runs: app.secrets (from .env files, shared by the
    environment's releases) and the release's own TLS Secret (a self-signed certificate for its host)."""
    documents = secret_documents(app)
    if tls:
        secret = p.fact("TLS_SECRET")
        files = tls_tasks.ensure_certificate(app, host, secret)
        if not shell.is_dry(app.c):
            documents.append(tls_tasks.secret_document(app, files, secret))
    if documents or (tls and shell.is_dry(app.c)):
        path = app.settings.root / STATE_DIR / "helm" / app.settings.env / f"{p.release.name}-secrets.yaml"
        apply_secrets(app, documents, path)


# -- tasks --------------------------------------------------------------------------------------

RELEASE_HELP = "release name (default app.helm.release or the app's name, + -<env> outside dev)"
SET_HELP = "extra chart value KEY=VALUE, Helm's --set syntax (repeatable)"


@kit_task(iterable=["set"], help={
    "release": RELEASE_HELP, "set": SET_HELP,
    "build": "build and deliver the chart's image first (like `inv image.build image.load`)",
    "wait": "wait until the release's resources are ready (helm --wait, app.timeout)",
    "no_tls": "skip the self-signed certificate and its Secret",
})
def upgrade(c: Context, release: str | None = None, env: str | None = None, set: list[str] | None = None,
            build: bool = False, wait: bool = False, no_tls: bool = False, allow_context: bool = False) -> None:
    """Install or upgrade the chart's release for an env."""
    app = App.load(c, env, allow_context)
    helm_version(app)
    p = plan(app, release)
    chart, values, sets = p.chart(), p.values(), p.sets(set)
    context = app.context()
    if build:
        planned = images.build_one(app, chart_image(app))
        images.deliver_one(app, planned)
    host = p.fact("INGRESS_HOST")
    apply_release_secrets(app, p, host, tls=not no_tls)
    app.run(core.upgrade_argv(p.release.name, chart, p.namespace, values, sets, context,
                              app.settings.timeout if wait else None),
            hint=f"see the release: helm status {p.release.name}" + (f" -n {p.namespace}" if p.namespace else ""))
    app.say(f"helm: release {p.release.name} ({app.settings.env}) serves https://{host}/")


@kit_task(iterable=["set"], help={"release": RELEASE_HELP, "set": SET_HELP})
def template(c: Context, release: str | None = None, env: str | None = None, set: list[str] | None = None) -> None:
    """Print the chart's YAML for a release (helm template)."""
    app = App.load(c, env)
    helm_version(app)
    p = plan(app, release)
    app.run(core.template_argv(p.release.name, p.chart(), p.namespace, p.values(), p.sets(set)), query=True)


@kit_task(help={"release": RELEASE_HELP})
def delete(c: Context, release: str | None = None, env: str | None = None, allow_context: bool = False) -> None:
    """Uninstall a release and its TLS Secret; absent is ok."""
    app = App.load(c, env, allow_context)
    helm_version(app)
    p = plan(app, release)
    context = app.context()
    listed = app.run(core.list_argv(p.namespace, context, p.release.name), query=True, capture=True)
    where = f"namespace {p.namespace}" if p.namespace else "the context's namespace"
    if any(r.get("name") == p.release.name for r in core.parse_releases(listed.stdout)):
        app.run(core.uninstall_argv(p.release.name, p.namespace, context))
    else:
        app.say(f"helm: release {p.release.name} is not installed in {where}: nothing to uninstall")
    app.run(app.kubectl("delete", "secret", p.fact("TLS_SECRET"), "--ignore-not-found"))


@kit_task(name="list")
def list_(c: Context, env: str | None = None, allow_context: bool = False) -> None:
    """List the Helm releases in the env's namespace."""
    app = App.load(c, env, allow_context)
    helm_version(app)
    listed = app.run(core.list_argv(app.settings.namespace, app.context()), query=True, capture=True)
    releases = core.parse_releases(listed.stdout)
    if not releases:
        app.say("helm: no releases in " + (f"namespace {app.settings.namespace}" if app.settings.namespace
                                           else "the context's namespace"))
        return
    rows = [["NAME", "NAMESPACE", "REVISION", "STATUS", "CHART", "UPDATED"]]
    rows += [[str(r.get(k, "")) for k in ("name", "namespace", "revision", "status", "chart", "updated")] for r in releases]
    print_table(rows)


ns = Collection("helm")
for _t in (upgrade, template, delete, list_):
    ns.add_task(_t)
