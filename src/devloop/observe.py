"""Watching a running app: status table, logs that survive rollouts, supervised port-forwards, URL, kubectl.

Its tasks join the ``k8s`` namespace (see ``K8S_TASKS``). ``summary`` is the end of `inv up`.
"""

from __future__ import annotations

import io
import json
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from invoke import Context

from devloop import livesync, rollout, shell
from devloop.core import kube, logmux, ports, render, status, supervise
from devloop.core.errors import KitError
from devloop.kit import App, kit_task, print_table

TICK = 0.25  # seconds between supervisor checks while something is starting
CLEAR = "\x1b[H\x1b[2J"


def load(c: Context, env: str | None, allow_context: bool) -> App:
    app = App.load(c, env, allow_context)
    app.context()  # the guard, before anything runs
    return app


# -- status ---------------------------------------------------------------------------------------


def app_workloads(app: App, items: list[dict[str, Any]]) -> list[str] | None:
    """The workloads that are this app's: configured ones and those carrying the kit's label; None = show all."""
    found = [kube.normalise_workload(w) for w in app.settings.workloads]
    for obj in items:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") in status.WORKLOAD_ORDER and labels.get(render.LABEL) == app.settings.name:
            found.append(kube.key_of(obj))
    return list(dict.fromkeys(found)) or None


def status_table(app: App, only: list[str] | None = None, everything: bool = False,
                 items: list[dict[str, Any]] | None = None) -> list[list[str]]:
    """The table of workloads, ReplicaSets and pods: from ``items`` when given, else from a fresh listing."""
    if items is None:
        items = rollout.list_json(app, app.kubectl("get", rollout.WATCHED_KINDS, "-o", "json"), "workload state")
    scope = None if everything else (only if only is not None else app_workloads(app, items))
    probes: dict[str, str] = {}
    unready = status.not_ready_pods(items)
    if unready:
        result = app.run(app.kubectl("get", "events", "-o", "json"), query=True, capture=True, check=False, quiet=True)
        if result.exited == 0:
            events = kube.warning_events(json.loads(result.stdout or "{}").get("items", []), unready)
            probes = {pod: msg for pod, lines in events.items() if (msg := kube.probe_failure(lines))}
    return status.rows(items, time.time(), scope, probes, livesync.live_marks(app))


def show_table(table: list[list[str]]) -> None:
    print_table([[shell.mask(cell) for cell in row] for row in table])
    sys.stdout.flush()


@kit_task(name="status", help={
    "watch": "keep refreshing (in place on a terminal, a new table per change otherwise) until Ctrl-C",
    "all": "every workload in the namespace, not only this app's"})
def status_(c: Context, env: str | None = None, watch: bool = False, all: bool = False, allow_context: bool = False) -> None:
    """Show workloads, replicasets and pods in one table."""
    app = load(c, env, allow_context)
    argv = app.kubectl("get", rollout.WATCHED_KINDS, "-o", "json")
    if not watch or shell.is_dry(app.c):
        app.say(f"$ {shlex.join(argv)}")
        table = status_table(app, everything=all)
        show_table(table)
        if len(table) == 1 and not shell.is_dry(app.c):  # the header alone
            where = f"namespace {app.settings.namespace}" if app.settings.namespace else "the context's namespace"
            whose = "" if all else f" of app {app.settings.name} (environment {app.settings.env})"
            app.say(f"no workload{whose} in {where}" + ("" if all else ": `inv up` deploys it"))
        return
    tty = sys.stdout.isatty()
    app.say(f"$ {shlex.join(argv)}    # on every change until Ctrl-C")
    wake = supervise.Wakeup()
    last = ""
    with rollout.stop_on_signals(), rollout.open_feed(app, ["pods", "deployments"], wake.set) as feed:
        while True:  # until Ctrl-C, which the task boundary ends with 130 like every long-running task
            last = show_refreshed(status_table(app, everything=all), tty, last)
            feed.check()
            wake.wait(1.0 if tty else rollout.BACKSTOP_SECONDS)


def show_refreshed(table: list[list[str]], tty: bool, last: str) -> str:
    """One refresh of `status --watch`: in place on a terminal, else a new table when it changed; its fingerprint."""
    if tty:
        frame = io.StringIO()
        print_table([[shell.mask(cell) for cell in row] for row in table], frame)
        sys.stdout.write(f"{CLEAR}{frame.getvalue()}\n{time.strftime('%H:%M:%S')}  refreshed on every "
                         "change · Ctrl-C to stop\n")
        sys.stdout.flush()
        return last
    if status.fingerprint(table) != last:
        print(f"--- {time.strftime('%H:%M:%S')}", flush=True)
        show_table(table)
    return status.fingerprint(table)


# -- logs -----------------------------------------------------------------------------------------


_CHANGE = ("change",)


def _log_start(app: App, events: queue.Queue[tuple[Any, ...]]) -> Callable[[list[str], logmux.Key], supervise.Proc | None]:
    """Start one `kubectl logs -f` child; its lines, then its end (with stderr's last line), go to ``events``."""

    def start(argv: list[str], key: logmux.Key) -> supervise.Proc | None:
        proc = shell.spawn(app.c, argv, quiet=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, bufsize=1)
        if proc is None:
            return None
        errors: deque[str] = deque(maxlen=3)
        stderr = proc.stderr

        def pump_errors() -> None:
            for line in stderr or []:
                errors.append(line.strip())

        err_thread = threading.Thread(target=pump_errors, daemon=True)
        err_thread.start()

        def finished() -> None:
            proc.wait()
            err_thread.join(timeout=1)
            events.put(("end", key, errors[-1] if errors else ""))

        supervise.read_lines(proc, lambda line: events.put(("line", key, line)), finished)
        return proc

    return start


def follow_logs(app: App, selector: str, since: str, container: str | None, timestamps: bool,
                out: Callable[[str], None], stop_when: Callable[[], bool] = lambda: False) -> None:
    """Follow every pod matching ``selector`` until Ctrl-C (or ``stop_when()``); children stopped on the way out."""
    events: queue.Queue[tuple[Any, ...]] = queue.Queue()
    list_argv = app.kubectl("get", "pods", "-l", selector, "-o", "json")

    def logs_argv(pod: str, name: str, *args: str) -> list[str]:
        return app.kubectl("logs", "-f", pod, "-c", name, *args)

    mux = logmux.LogMux(_log_start(app, events), logs_argv, out, since=since, container=container,
                 colour=sys.stdout.isatty(), timestamps=timestamps, clock=rollout.clock)
    app.say(f"$ {shlex.join(list_argv)}    # on every change; one `kubectl logs -f` per container")
    with rollout.stop_on_signals(), rollout.open_feed(app, ["pods"], lambda: events.put(_CHANGE), selector) as feed:
        try:
            pods = rollout.list_json(app, list_argv, "pods")
            if not pods:
                app.say(f"no pod matches {selector} yet; waiting for one (Ctrl-C to stop)")
            mux.reconcile(pods)
            if shell.is_dry(app.c):
                return  # the commands were printed, not run
            relist_at = rollout.clock() + rollout.BACKSTOP_SECONDS
            while not stop_when():
                relist = False
                try:
                    item = events.get(timeout=TICK)
                    while True:
                        if item is _CHANGE:
                            relist = True
                        elif item[0] == "line":
                            mux.line(item[1], item[2])
                        else:
                            mux.ended(item[1], item[2])
                        item = events.get_nowait()
                except queue.Empty:
                    pass
                if relist or rollout.clock() >= relist_at:
                    pods = rollout.list_json(app, list_argv, "pods")
                    relist_at = rollout.clock() + rollout.BACKSTOP_SECONDS
                mux.reconcile(pods)
                feed.check()
        finally:  # Ctrl-C goes on to the task boundary: exit 130, like `inv watch`
            mux.close()


def _print_line(line: str) -> None:
    print(shell.mask(line), flush=True)


@kit_task(help={"selector": "pod label selector (default app.logs.selector, else app=<name>)",
                "since": "show lines this recent from pods already running, e.g. 10s, 5m (default app.logs.since)",
                "container": "only this container of each pod", "timestamps": "print each line's timestamp"})
def logs(c: Context, env: str | None = None, selector: str | None = None, since: str | None = None,
         container: str | None = None, timestamps: bool = False, allow_context: bool = False) -> None:
    """Follow logs of every matching pod, across rollouts."""
    app = load(c, env, allow_context)
    follow_logs(app, selector or app.settings.selector, since or app.settings.since, container, timestamps, _print_line)


# -- port-forward ---------------------------------------------------------------------------------


def forward_specs(app: App, target: str | None, port_args: str | None) -> list[ports.Forward]:
    """--target/--ports, else app.forwards; a --target without ports takes its ports from app.forwards."""
    configured = [ports.parse_forward(spec) for spec in app.settings.forwards]
    if port_args and not target:
        raise KitError(f"ports {port_args!r} given without --target",
                       hint="write inv k8s.forward --target deploy/web --ports 3000:8080", code=2)
    if target and port_args:
        return [ports.parse_forward(f"{target} {port_args.replace(',', ' ')}")]
    if target:
        same = [f for f in configured if kube.normalise_workload(f.target) == kube.normalise_workload(target)]
        if not same:
            raise KitError(f"--target {target} given without ports, and app.forwards has none for it",
                           hint=f"write inv k8s.forward --target {target} --ports 3000:8080", code=2)
        return same
    if not configured:
        raise KitError("no port forwards configured", hint="add e.g. 'deploy/web 3000:3000' to app.forwards in invoke.yaml, "
                                                           "or pass --target deploy/web --ports 3000:3000", code=2)
    return configured


def check_ports_free(forwards: list[ports.Forward]) -> None:
    """Refuse before starting anything if a local port is taken, naming who holds it."""
    for forward in forwards:
        for local, _ in forward.ports:
            if not ports.port_free(local):
                who = ports.holder(local)
                raise KitError(ports.taken_message(local, who, forward.target), hint=ports.stop_hint(who, local), code=1)


def supervisor(app: App, forward: ports.Forward) -> supervise.ForwardSupervisor:
    """Resolve the target's pod selector so the supervisor can pick (and follow) pods itself."""
    kind, _, name = kube.normalise_workload(forward.target).partition("/")
    selector: dict[str, str] | None = None
    service: Mapping[str, Any] | None = None
    if kind != "pod":
        result = app.run(app.kubectl("get", f"{kind}/{name}", "-o", "json"), query=True, capture=True, check=False)
        if result.exited != 0 and "NotFound" not in (result.stderr or ""):  # the cluster did not answer
            raise rollout.cluster_failure(app, forward.target, result.stderr or "")
        if result.exited != 0:
            raise KitError(f"cannot forward to {forward.target}: it is not in the cluster", evidence=result.stderr,
                           hint="deploy first (inv up), or fix app.forwards / --target", code=1)
        obj = json.loads(result.stdout)
        selector = supervise.pod_selector(obj)
        service = obj if obj.get("kind") == "Service" else None
    start = rollout.spawner(app, merge_stderr=True, quiet=False)

    def start_forward(target: str, pairs: list[tuple[int, int]]) -> supervise.Proc | None:
        return start(app.kubectl("port-forward", "--address", "127.0.0.1", target, *[f"{a}:{b}" for a, b in pairs]))

    return supervise.ForwardSupervisor(forward, start_forward, listening, ports.port_free, app.say, rollout.clock, selector, service)


def listening(port: int) -> bool:
    """kubectl listens on 127.0.0.1:port. Checked by binding, not connecting: a connection would reach the app
    (MySQL counts a connect-and-close as an error and blocks the host after max_connect_errors)."""
    return not ports.port_free(port)


def supervise_forwards(app: App, forwards: list[ports.Forward], stop_when: Callable[[], bool] = lambda: False) -> None:
    """Keep every forward up until Ctrl-C (or ``stop_when()``); each child is stopped on the way out."""
    check_ports_free(forwards)
    sups = [supervisor(app, f) for f in forwards]
    list_argv = app.kubectl("get", "pods", "-o", "json")
    wake = supervise.Wakeup()
    with rollout.stop_on_signals(), rollout.open_feed(app, ["pods"], wake.set) as feed:
        try:
            pods = rollout.list_json(app, list_argv, "pods")
            if shell.is_dry(app.c):
                for sup in sups:
                    sup.step(pods)
                return  # the commands were printed, not run
            relist_at = rollout.clock() + rollout.BACKSTOP_SECONDS
            while not stop_when():
                for sup in sups:
                    sup.step(pods)
                feed.check()
                changed = wake.wait(TICK)  # short: `inv dev` ending (stop_when) is seen at once
                if changed or rollout.clock() >= relist_at:
                    pods = rollout.list_json(app, list_argv, "pods")
                    relist_at = rollout.clock() + rollout.BACKSTOP_SECONDS
        finally:  # Ctrl-C goes on to the task boundary: exit 130, like `inv watch`
            for sup in sups:
                sup.close()


@kit_task(help={
    "target": "forward to this instead of app.forwards: deploy/NAME, sts/NAME, svc/NAME or pod/NAME "
              "(may carry its ports: 'deploy/web 3000:8080')",
    "ports": "LOCAL[:REMOTE] port(s) for --target, e.g. 3000:8080 (comma-separated for several)",
})
def forward(c: Context, target: str | None = None, ports: str | None = None, env: str | None = None,
            allow_context: bool = False) -> None:
    """Port-forward app.forwards; restart when pods change."""
    app = load(c, env, allow_context)
    words = (target or "").split()
    port_args = " ".join(words[1:] + [ports or ""] + remainder_args(c)).strip() or None
    supervise_forwards(app, forward_specs(app, words[0] if words else None, port_args))


# -- URL ------------------------------------------------------------------------------------------


def app_url(app: App, objects: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(URL, where it comes from) — the Ingress host, `minikube service --url`, or a forwarded port."""
    how, value = status.url_plan(objects, app.settings.cluster.provider, app.settings.forwards)
    if how == "url":
        return value, status.ingress_source(objects, app.settings.cluster.provider)
    if how == "forward":
        return value, "a port of app.forwards (served while `inv k8s.forward` runs)"
    if how == "minikube-service":
        extra = ["--namespace", app.settings.namespace] if app.settings.namespace else []
        result = app.run(app.minikube("service", value, "--url", *extra), query=True, capture=True, check=False)
        urls = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("http")]
        if result.exited != 0 or not urls:
            raise KitError(f"`minikube service --url {value}` gave no URL", evidence=result.stderr or result.stdout,
                           hint="check `minikube status`, or add an Ingress / app.forwards entry")
        return urls[0], f"Service {value} through minikube"
    raise KitError(value, code=1)


def require_forward_target(app: App, url: str) -> None:
    """Refuse a forward's URL when the workload it forwards to is not in the cluster: nothing is deployed."""
    target = next((spec.split()[0] for spec in app.settings.forwards if status.forward_url([spec]) == url), None)
    if target is None:
        return
    result = app.run(app.kubectl("get", kube.normalise_workload(target), "-o", "name"), query=True, capture=True,
                     check=False)
    if result.exited != 0 or not result.stdout.strip():
        where = f"namespace {app.settings.namespace}" if app.settings.namespace else "the context's namespace"
        raise KitError(f"nothing of {app.settings.name or 'the app'} is deployed in {where} (context {app.context()}): "
                       f"no Ingress or Service, and {target} of app.forwards is not there", evidence=result.stderr,
                       hint="deploy first: inv up", code=1)


@kit_task(name="open", help={"browser": "also open it in the default browser"})
def open_(c: Context, env: str | None = None, browser: bool = False, allow_context: bool = False) -> None:
    """Print the app's URL (--browser opens it)."""
    app = load(c, env, allow_context)
    objects = rollout.list_json(app, app.kubectl("get", "ingresses,services", "-o", "json"), "ingresses and services")
    mine = [o for o in objects if ((o.get("metadata") or {}).get("labels") or {}).get(render.LABEL) == app.settings.name]
    url, source = app_url(app, mine or objects)
    if not objects:  # the URL can only be a forward's: it answers only while its target runs
        require_forward_target(app, url)
    app.say(f"from {source}")
    print(url, flush=True)
    import webbrowser  # kept local for start-up time: only --browser needs it

    if browser and not webbrowser.open(url):
        raise KitError(f"no browser could be started for {url}", hint="open the URL by hand, or set $BROWSER")


# -- kubectl pass-through ---------------------------------------------------------------------------


def remainder_args(c: Context) -> list[str]:
    """The words after `--`, exactly as typed (invoke joins them with spaces, losing quotes)."""
    remainder = getattr(c, "remainder", "") or ""
    if "--" in sys.argv:
        typed = sys.argv[sys.argv.index("--") + 1:]
        if " ".join(typed) == remainder:
            return typed
    return shlex.split(remainder)


@kit_task(name="kubectl")
def kubectl_(c: Context, env: str | None = None, allow_context: bool = False) -> None:
    """Run kubectl -- ARGS with the kit's context, namespace."""
    args = remainder_args(c)
    if not args:
        raise KitError("nothing to pass to kubectl", hint="write inv k8s.kubectl -- get pods", code=2)
    app = App.load(c, env, allow_context)
    own = kube.option_value(args, "--context")
    if own is not None and not app.settings.cluster.context_allowed(own) and not allow_context:
        raise KitError(f"kube context {own!r} is not in app.cluster.allowed_contexts", code=2,
                       hint="pass --allow-context if you really mean this cluster")
    argv = kube.pass_through(args, own or app.context(), app.settings.namespace)
    result = app.run(argv, check=False, interactive=sys.stdin.isatty() and sys.stdout.isatty())
    if result.exited != 0:
        raise KitError(f"kubectl exited with status {result.exited}", code=result.exited if 0 < result.exited < 126 else 1)


# -- the end of `inv up` ------------------------------------------------------------------------------


def summary(app: App, documents: list[dict[str, Any]]) -> None:
    """Print the status table of what was applied and the URL to open it (the end of `inv up`)."""
    workloads = rollout.wanted_workloads(app, documents)
    if shell.is_dry(app.c):
        app.say("status and URL: decided at run time (--dry)")
        return
    show_table(status_table(app, only=workloads, items=app.seen_ready))  # as the wait saw them ready: no re-read
    try:
        url, source = app_url(app, documents)
    except KitError as exc:
        print(f"url: none — {exc.message}", flush=True)
        return
    print(f"url: {url}    ({source})", flush=True)
    forwarded = status.forward_url(app.settings.forwards)
    if forwarded and forwarded != url:
        print(f"     {forwarded}    (while `inv k8s.forward` runs)", flush=True)


K8S_TASKS: list[Any] = [status_, logs, forward, open_, kubectl_]
