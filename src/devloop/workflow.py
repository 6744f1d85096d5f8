"""The whole loop: `up` (build → deliver → render → apply → ready), `down`, and `doctor`."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from typing import Any

from invoke import Context

from devloop import compose, docker_api, k8s, livesync, observe, rollout, shell
from devloop.build import Planned, build_one, plan
from devloop.core import compose as compose_core
from devloop.core import lock, ports
from devloop.core import registry as registry_core
from devloop.core.errors import KitError
from devloop.delivery import deliver_one
from devloop.kit import App, kit_task, print_table


def cycle(app: App, sets: dict[str, str] | None = None, timeout: int | None = None, build: bool = True,
          deliver: bool = True, strict: bool = False, prune: bool = True, volumes: bool = False,
          built: Callable[[], list[Planned]] | None = None) -> list[dict[str, Any]]:
    """One pass of the loop, each phase timed into ``app.timings``; returns the applied documents.

    ``build=False`` deploys what the current tags name; ``deliver=False`` also skips delivery (a
    manifest-only change in `inv watch`: the node already has these images). ``prune``: delete what the
    manifests no longer have (PersistentVolumeClaims only with ``volumes``); changed Jobs run again.
    ``built``: the build phase of a watch cycle (its build runs on a thread, devloop/prebuild.py).
    """
    with app.phase("build"):
        planned = built() if built else [build_one(app, i) if build else plan(app, i) for i in app.settings.images]
    if deliver:
        with app.phase("deliver"):
            for p in planned:
                deliver_one(app, p)
    with app.phase("render"):
        documents = k8s.rendered(app, sets)
        if strict and app.undeclared:  # --ci: a placeholder left in a manifest is not a warning
            raise KitError("--ci: placeholders no value was given for are left in the manifests:\n"
                           + "\n".join(f"  - {u} is not declared in app.vars" for u in app.undeclared),
                           hint="declare them under app.vars in invoke.yaml (with a default, or set them with --set / .env)",
                           code=1)
        converging, _ = k8s.check(app, documents, strict=strict, prune=prune, volumes=volumes)
    with app.phase("apply"):
        k8s.apply_converged(app, documents, converging)
    with app.phase("ready"):
        rollout.wait_ready(app, rollout.wanted_workloads(app, documents), timeout, documents)
    return documents


def cycle_lock(app: App) -> contextlib.AbstractContextManager[Any]:
    """Keeps two `up`/`watch`/`dev` runs on this app, kube context and namespace apart (not under --dry)."""
    if shell.is_dry(app.c):
        return contextlib.nullcontext()
    return lock.hold(lock.lock_file(app.state_dir, app.context(), app.settings.namespace), lock.me(), app.say)


@kit_task(iterable=["set"], help={
    "no_build": "skip building; deliver and deploy what the current tags name",
    "ci": "CI gate: lint warnings fail too; exit 0 only when every workload is ready",
    **k8s.CONVERGE_HELP,
})
def up(c: Context, env: str | None = None, set: list[str] | None = None, timeout: int | None = None,
       no_build: bool = False, ci: bool = False, no_prune: bool = False, volumes: bool = False,
       allow_context: bool = False) -> None:
    """Build, deliver, render, apply, and wait until ready."""
    app = App.load(c, env, allow_context)
    app.context()  # the guard runs before anything is built
    with cycle_lock(app):
        documents = cycle(app, k8s.parse_sets(set), timeout, build=not no_build, strict=ci, prune=not no_prune,
                          volumes=volumes)
        if livesync.converge(app):  # pods a watch session left with synced files: back to the image as built
            with app.phase("ready"):
                rollout.wait_ready(app, rollout.wanted_workloads(app, documents), timeout)
    observe.summary(app, documents)
    total = sum(app.timings.values())
    app.say("timings: " + "  ".join(f"{k} {v:.1f}s" for k, v in app.timings.items()) + f"  total {total:.1f}s")
    if ci and not shell.is_dry(c):  # a dry run waited for nothing: it claims nothing
        app.say("ci: every workload is ready")


@kit_task(help={"volumes": "also delete PersistentVolumeClaims (their data is lost)"})
def down(c: Context, env: str | None = None, volumes: bool = False, allow_context: bool = False) -> None:
    """Delete everything `up` applied (by the kit's label)."""
    app = App.load(c, env, allow_context)
    k8s.delete_applied(app, volumes)


def docker_daemon_version() -> str:
    """The daemon's version through its API (a ping, no process; DOCKER_HOST is honoured), or ""."""
    return docker_api.server_version()


def _checks(app: App) -> list[tuple[str, bool, str]]:
    """(check, ok, detail-or-fix) for every prerequisite of the configured loop."""
    s = app.settings
    rows: list[tuple[str, bool, str]] = []
    tools = ["docker", "kubectl"] + (["minikube"] if s.cluster.provider == "minikube" else []) \
        + (["kind"] if s.cluster.provider == "kind" else []) + (["helm"] if s.helm.get("chart") else [])
    for tool in tools:
        path = shutil.which(tool)
        rows.append((f"{tool} on PATH", bool(path), path or f"{tool} not found: {shell.INSTALL_HINTS.get(tool, 'install it')}"))
    version = docker_daemon_version()
    rows.append(("docker daemon reachable", bool(version), f"server {version}" if version else
                 "start Docker (sudo systemctl start docker / Docker Desktop) or fix DOCKER_HOST"))
    if shutil.which("kubectl"):
        try:
            ctx = app.context()
            rows.append(("kube context", True, f"{ctx} (allowed)"))
            result = app.run(app.kubectl("get", "--raw", "/readyz", namespaced=False), query=True, capture=True,
                             check=False)
            rows.append(("cluster reachable", result.exited == 0,
                         f"context {ctx}: apiserver ready" if result.exited == 0 else
                         f"context {ctx} does not answer: start it (inv minikube.start) or fix KUBECONFIG"))
        except KitError as exc:
            rows.append(("kube context", False, exc.message + (f" — {exc.hint}" if exc.hint else "")))
    for spec in s.forwards:
        try:
            forward = ports.parse_forward(spec)
        except KitError as exc:
            rows.append((f"forward {spec}", False, exc.message))
            continue
        for local, _ in forward.ports:
            free = ports.port_free(local)
            who = None if free else ports.holder(local)
            rows.append((f"local port {local} free", free,
                         f"for {forward.target}" if free else
                         f"{ports.taken_message(local, who, forward.target)}: {ports.stop_hint(who, local)}"))
    rows += _compose_port_checks(app)
    rows += _registry_checks(app)
    return rows


def _compose_port_checks(app: App) -> list[tuple[str, bool, str]]:
    """The host ports the compose files publish (the seed's "port is already allocated", found first)."""
    rows: list[tuple[str, bool, str]] = []
    for preview in (False, True):
        try:
            target = compose.target(app, preview)
            published = compose_core.published_ports(compose.read_file(target), str(target.file))
        except KitError:
            continue  # no such compose file: nothing to check
        for port in published:
            if port.protocol != "tcp" or ":" in port.bind_host:
                continue
            what = f"{target.file.name}: {port.service}"
            if ports.port_free(port.port, port.bind_host):
                rows.append((f"local port {port.port} free", True, f"for {what}"))
                continue
            try:
                owner = compose.container_on(app, port.port)
            except KitError:  # no docker CLI: its own row says so; the port's holder is found another way
                owner = None
            if owner and owner[1] == target.project:  # the app's own compose container, from `inv compose.up`
                rows.append((f"local port {port.port}", True, f"published by {owner[0]}, this app's {what}"))
                continue
            if owner:
                of = f" of compose project {owner[1]}" if owner[1] else ""
                rows.append((f"local port {port.port} free", False, f"published by container {owner[0]}{of}, not "
                             f"this app's {what}: docker stop {owner[0]}"))
                continue
            who = ports.holder(port.port)
            rows.append((f"local port {port.port} free", False,
                         f"{ports.taken_message(port.port, who, what)}: {ports.stop_hint(who, port.port)}"))
    return rows


REGISTRY_TIMEOUT = 3  # seconds: a registry that takes longer to say hello will not take a push either


def _registry_checks(app: App) -> list[tuple[str, bool, str]]:
    """Provider `registry`: that the push target answers its API (`GET /v2/`), asked from here."""
    cluster = app.settings.cluster
    if cluster.provider != "registry":
        return []
    if not cluster.registry:
        return [("registry set", False, "provider is 'registry' but app.cluster.registry is not set: set it in "
                 "invoke.yaml (e.g. registry.example.com/team) or INVOKE_APP_CLUSTER_REGISTRY=... in .env")]
    host = registry_core.registry_host(cluster.registry)
    url = registry_core.probe_url(cluster.registry)
    app.say(f"· registry API: GET {url}")
    status, error = ask_registry(url, direct=registry_core.is_loopback(host))
    ok, detail = registry_core.verdict(cluster.registry, url, status, error)
    return [(f"registry {host} answers", ok, detail)]


def ask_registry(url: str, direct: bool) -> tuple[int | None, str]:
    """``GET url``: (HTTP status, "") or (None, why nothing answered). ``direct``: no proxy (loopback)."""
    # urllib.request brings http.client and email (~8 ms), for doctor alone:
    import http.client  # kept local for start-up time
    import urllib.error  # kept local for start-up time
    import urllib.request  # kept local for start-up time

    opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if direct else []))
    try:
        with opener.open(url, timeout=REGISTRY_TIMEOUT) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except urllib.error.URLError as exc:
        return None, str(exc.reason)
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc) or type(exc).__name__


@kit_task
def doctor(c: Context, env: str | None = None) -> None:
    """Check every prerequisite and say how to fix what fails."""
    app = App.load(c, env)
    rows = _checks(app)
    print_table([["ok" if ok else "FAIL", name, detail] for name, ok, detail in rows])
    failed = [name for name, ok, _ in rows if not ok]
    if failed:
        raise KitError(f"{len(failed)} check(s) failed: {', '.join(failed)}", code=1)
