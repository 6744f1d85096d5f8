"""The local cluster: start (idempotent, addons, known failures explained), stop, delete, status, ip, dashboard, docker-env."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from invoke import Collection, Context

from devloop.core import minikube as core
from devloop.core.errors import KitError, tail
from devloop.kit import App, kit_task, print_table
from devloop.shell import INSTALL_HINTS, failure, is_dry


def require_minikube() -> None:
    if shutil.which("minikube") is None:
        raise KitError("minikube not found on PATH", hint=INSTALL_HINTS["minikube"], code=127)


def argv(profile: str, *args: str) -> list[str]:
    return ["minikube", "-p", profile, *args]


def profile_of(app: App, profile: str | None) -> str:
    return profile or app.settings.cluster.minikube.profile


def read_status(app: App, profile: str, details: bool = True) -> core.Status:
    """The profile's state: `minikube status -o json`, plus IP/runtime/driver from `profile list`."""
    command = argv(profile, "status", "-o", "json")
    result = app.run(command, query=True, capture=True, check=False)
    if result.exited == 127 and not result.stdout.strip():
        raise failure(command, 127, result.stderr)
    status = core.parse_status(result.stdout, result.exited, profile, result.stderr)
    if details and status.exists:
        listed = app.run(["minikube", "profile", "list", "-o", "json"], query=True, capture=True, check=False)
        if listed.exited == 0:
            status = core.with_profile(status, listed.stdout)
    return status


def stale_pid_file(profile: str, driver: str) -> core.PidFile:
    """The VM driver's pid file: whether one was left behind, and whether its process still runs."""
    path = core.pid_file(core.minikube_home(os.environ, Path.home()), profile, driver or "hyperkit")
    if not path.is_file():
        return core.PidFile(path, None, alive=False, exists=False)
    try:
        pid: int | None = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    alive = False
    if pid:
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    return core.PidFile(path, pid, alive)


def run_start(app: App, opts: core.StartOptions, recreate: bool) -> None:
    command = argv(opts.profile, *core.start_args(opts))
    result = app.run(command, check=False)
    if result.exited == 0:
        return
    output = (result.stdout or "") + (result.stderr or "")
    if result.exited == 127 and "not found" in output and "minikube" in output:
        raise failure(command, 127, output)
    if recreate and core.IP_FAILURE.search(output):
        app.say(f"the VM never got an IP address: deleting profile {opts.profile!r} and starting once more (--recreate)")
        app.run(argv(opts.profile, "delete"))
        result = app.run(command, check=False)
        if result.exited == 0:
            return
        output = (result.stdout or "") + (result.stderr or "")
    raise core.explain_start_failure(output, result.exited, opts, stale_pid_file(opts.profile, opts.driver))


def enable_addons(app: App, opts: core.StartOptions) -> None:
    if not opts.addons:
        return
    listed = app.run(argv(opts.profile, "addons", "list", "-o", "json"), query=True, capture=True, check=False)
    enabled = core.parse_addons(listed.stdout) if listed.exited == 0 else {}
    for addon in opts.addons:
        if enabled.get(addon):
            app.say(f"addon {addon}: already enabled")
            continue
        app.run(argv(opts.profile, "addons", "enable", addon),
                hint=f"`minikube -p {opts.profile} addons list` shows the addon names; fix app.cluster.minikube.addons")


# -- tasks --------------------------------------------------------------------------------------


@kit_task(help={
    "cpus": "CPUs for a new cluster (default app.cluster.minikube.cpus)",
    "memory": "memory for a new cluster, e.g. 4096 or 4g (default app.cluster.minikube.memory)",
    "driver": "docker, hyperkit, kvm2, virtualbox… (default app.cluster.minikube.driver; empty = minikube picks)",
    "disk_size": "disk for a new cluster, e.g. 20g (default app.cluster.minikube.disk_size)",
    "kubernetes_version": "e.g. v1.28.3 (default app.cluster.minikube.kubernetes_version)",
    "recreate": "if the VM never gets an IP address, delete the profile and start once more (data is lost)",
})
def start(c: Context, profile: str | None = None, cpus: int | None = None, memory: str | None = None,
          driver: str | None = None, disk_size: str | None = None, kubernetes_version: str | None = None,
          recreate: bool = False) -> None:
    """Start minikube (no-op when running), then addons."""
    app = App.load(c)
    opts = core.start_options(app.settings.cluster.minikube, profile=profile, cpus=cpus, memory=memory,
                              driver=driver, disk_size=disk_size, kubernetes_version=kubernetes_version)
    require_minikube()
    status = read_status(app, opts.profile)
    drift = core.size_drift(status, opts)
    if status.running:
        app.say(f"minikube profile {opts.profile!r} is already running (IP {status.ip or '?'}, runtime "
                f"{status.runtime or '?'}): nothing to start")
    else:
        run_start(app, opts, recreate)
    for note in drift:
        app.say(f"note: {note}; minikube applies sizes only when it creates a cluster "
                "(inv minikube.delete, then inv minikube.start)")
    enable_addons(app, opts)
    if not is_dry(c):
        print_table(read_status(app, opts.profile).rows())


@kit_task
def stop(c: Context, profile: str | None = None) -> None:
    """Stop minikube, keeping its state (stopped is fine)."""
    app = App.load(c)
    require_minikube()
    name = profile_of(app, profile)
    status = read_status(app, name, details=False)
    if not status.exists:
        app.say(f"no minikube profile {name!r}: nothing to stop")
        return
    if status.host == "Stopped":
        app.say(f"minikube profile {name!r} is already stopped")
        return
    app.run(argv(name, "stop"))


@kit_task
def delete(c: Context, profile: str | None = None) -> None:
    """Delete the cluster and its data (absent is fine)."""
    app = App.load(c)
    require_minikube()
    app.run(argv(profile_of(app, profile), "delete"))


@kit_task(help={"json": "print the status as JSON"})
def status(c: Context, profile: str | None = None, json_: bool = False) -> None:
    """Show host, kubelet, apiserver, IP and runtime."""
    app = App.load(c)
    require_minikube()
    state = read_status(app, profile_of(app, profile))
    if json_:
        print(json.dumps(state.as_dict(), indent=2))
    else:
        print_table(state.rows())
    if not state.running:
        raise core.explain_not_running("status", state)


@kit_task
def ip(c: Context, profile: str | None = None) -> None:
    """Print the cluster's IP (what ${MINIKUBE_IP} becomes)."""
    app = App.load(c)
    require_minikube()
    name = profile_of(app, profile)
    result = app.run(argv(name, "ip"), query=True, capture=True, check=False)
    address = result.stdout.strip().splitlines()[-1].strip() if result.stdout.strip() else ""
    if result.exited != 0 or not address:
        state = read_status(app, name, details=False)
        if not state.running:
            raise core.explain_not_running("ip", state)
        raise KitError(f"`minikube -p {name} ip` failed (exit {result.exited})",
                       evidence=tail(result.stderr or result.stdout, 6), hint="check inv minikube.status")
    print(address)


@kit_task(help={"url": "print the dashboard URL instead of opening a browser"})
def dashboard(c: Context, profile: str | None = None, url: bool = False) -> None:
    """Open the Kubernetes dashboard (Ctrl-C ends it)."""
    app = App.load(c)
    require_minikube()
    name = profile_of(app, profile)
    state = read_status(app, name, details=False)
    if not state.running and not is_dry(c):
        raise core.explain_not_running("dashboard", state)
    app.say("the dashboard proxy keeps running until Ctrl-C")
    app.run(argv(name, "dashboard", *(["--url"] if url else [])))


@kit_task(help={"shell": "bash, zsh, fish, powershell, cmd or none (default: minikube detects)",
                "unset": "print the commands that undo it"})
def docker_env(c: Context, profile: str | None = None, shell: str | None = None, unset: bool = False) -> None:
    """Print minikube's DOCKER_* settings for eval."""
    app = App.load(c)
    require_minikube()
    name = profile_of(app, profile)
    command = argv(name, "docker-env", *(["--shell", shell] if shell else []), *(["--unset"] if unset else []))
    result = app.run(command, query=True, capture=True, check=False)
    if result.exited != 0:
        output = (result.stdout or "") + (result.stderr or "")
        if not unset:
            state = read_status(app, name, details=False)
            if not state.running:
                raise core.explain_not_running("docker-env", state)
        raise core.explain_docker_env_failure(output, result.exited, name)
    print(result.stdout, end="")


ns = Collection("minikube")
for _t in (start, stop, delete, status, ip, dashboard, docker_env):
    ns.add_task(_t)
