"""Rollout: wait until the workloads are ready, failing fast on hopeless states with the reason.

The state is re-read whenever the cluster reports a change (one `kubectl get KIND --watch` child per
kind), so readiness and failures are seen within a fraction of a second, with a slow poll as a backstop.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from devloop import flags, shell
from devloop.core import kube, render, supervise
from devloop.core.errors import KitError
from devloop.kit import App

WATCHED_KINDS = "deployments,statefulsets,daemonsets,jobs,replicasets,pods"
BACKSTOP_SECONDS = 2.0  # re-read at least this often even if no change was reported
EVENTS_EVERY = 5.0  # seconds between reads of Warning events while a pod runs but is not ready
FEED_KINDS = {"deployment": "deployments", "statefulset": "statefulsets", "daemonset": "daemonsets", "job": "jobs"}

clock: Callable[[], float] = time.monotonic


def wanted_workloads(app: App, documents: list[dict[str, Any]]) -> list[str]:
    return [kube.normalise_workload(w) for w in app.settings.workloads] or render.workloads(documents)


# -- children and signals (shared with tasks/observe.py) --------------------------------------------


def spawner(app: App, *, merge_stderr: bool = False, quiet: bool = True) -> Callable[[list[str]], supervise.Proc | None]:
    """Start a kubectl child through the funnel, its stdout piped (stderr too, or discarded)."""
    def start(argv: list[str]) -> supervise.Proc | None:
        return shell.spawn(app.c, argv, quiet=quiet, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, bufsize=1)

    return start


def open_feed(app: App, kinds: list[str], notify: Callable[[], None], selector: str = "") -> supervise.ChangeFeed:
    """A ChangeFeed on ``kinds`` (plural resource names) in the app's namespace."""
    extra = ["-l", selector] if selector else []
    argvs = [app.kubectl("get", kind, "--watch", "-o", "name", *extra) for kind in kinds]
    return supervise.ChangeFeed(argvs, spawner(app), notify, clock)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP become KeyboardInterrupt while children run, so `finally` blocks stop them.

    invoke's runner swallows a KeyboardInterrupt that lands while a command runs, so the handler also
    sets ``shell.STOPPING`` (the funnel then refuses new commands by raising it again). Handlers that
    someone else installed (`inv watch`'s) are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        shell.STOPPING.set()
        raise KeyboardInterrupt

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL}
    previous = {sig: signal.getsignal(sig) for sig in defaults}
    mine = [sig for sig, handler in previous.items() if handler == defaults[sig]]
    for sig in mine:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig in mine:
            signal.signal(sig, previous[sig])
        if mine:
            shell.STOPPING.clear()


def list_json(app: App, argv: list[str], what: str) -> list[dict[str, Any]]:
    result = app.run(argv, query=True, capture=True, check=False, quiet=True)
    if shell.STOPPING.is_set():
        raise KeyboardInterrupt  # a signal landed while kubectl ran (invoke's runner swallowed it)
    if result.exited != 0:
        raise KitError(f"cannot read {what} from the cluster", evidence=result.stderr,
                       hint="check the cluster is up: inv doctor")
    return list(json.loads(result.stdout or "{}").get("items", []))


# -- waiting ----------------------------------------------------------------------------------------


def wait_ready(app: App, workloads: list[str], timeout: int | None = None) -> kube.Verdict:
    """Wait until every workload is ready; stop at once on a hopeless state; one deadline for all."""
    if app.c.config.run.dry:
        app.say(f"would wait for {', '.join(workloads) or 'nothing'} (--dry)")
        return kube.Verdict()
    limit = flags.int_flag(timeout, "timeout") or app.settings.timeout
    deadline = clock() + limit
    registry = app.settings.cluster.registry if app.settings.cluster.provider == "registry" else ""
    ours = [f"{registry}/{i.name}" if registry else i.name for i in app.settings.images]  # names: no hashing here
    argv = app.kubectl("get", WATCHED_KINDS, "-o", "json")
    kinds = ["pods"] + sorted({FEED_KINDS[w.split("/")[0]] for w in workloads if w.split("/")[0] in FEED_KINDS})
    app.say(f"$ {shlex.join(argv)}    # re-read on every change, until ready or {limit}s")
    shown: set[str] = set()
    wake = supervise.Wakeup()
    events_at = clock() + EVENTS_EVERY
    feed: supervise.ChangeFeed | None = None  # opened only if the first read is not already the answer
    with stop_on_signals(), contextlib.ExitStack() as stack:
        while True:
            verdict = kube.assess(list_json(app, argv, "workload state"), workloads, ours)
            for line in [f"{k}: {v}" for k, v in verdict.waiting.items()] + \
                        [f"{p.workload} pod {p.pod}: {p.sentence}" for p in verdict.problems if not p.hopeless and p.pod]:
                if line not in shown:
                    shown.add(line)
                    app.say(f"  waiting: {line}")
            if verdict.hopeless:
                raise KitError(explain(app, verdict.hopeless), code=1)
            if verdict.done:
                app.say(f"ready: {', '.join(verdict.ready) or 'nothing to wait for'}")
                return verdict
            now = clock()
            if now >= deadline:
                raise KitError(f"not ready after {limit}s:\n"
                               + "\n".join(f"  {line}" for line in kube.deadline_report(verdict, events_of(app, verdict))),
                               hint="see `inv k8s.status` and `inv k8s.logs`; raise app.timeout (or --timeout) if the "
                                    "app is just slow to start", code=1)
            if now >= events_at and any(p.reason == "NotReady" for p in verdict.problems):
                events_at = now + EVENTS_EVERY
                for pod, lines in events_of(app, verdict).items():
                    message = kube.probe_failure(lines)
                    line = f"pod {pod}: readiness probe failing: {message}"
                    if message and line not in shown:
                        shown.add(line)
                        app.say(f"  waiting: {line}")
            if feed is None:
                feed = stack.enter_context(open_feed(app, kinds, wake.set))
            feed.check()
            wake.wait(min(deadline - now, BACKSTOP_SECONDS))


def explain(app: App, problems: list[kube.Problem]) -> str:
    lines = []
    for problem in problems:
        where = f"{problem.workload}" + (f" pod {problem.pod}" if problem.pod else "")
        lines.append(f"{where}: {problem.reason}: {problem.sentence}")
        if problem.wants_previous_log and problem.pod:
            log = app.run(app.kubectl("logs", problem.pod, "-c", problem.container, "--previous", "--tail", "10"),
                          query=True, capture=True, check=False, quiet=True)
            lines += [f"    | {line}" for line in (log.stdout or log.stderr).rstrip().splitlines()]
        elif problem.reason == "JobFailed":
            log = app.run(app.kubectl("logs", problem.workload, "--tail", "10"), query=True, capture=True, check=False,
                          quiet=True)
            lines += [f"    | {line}" for line in (log.stdout or log.stderr).rstrip().splitlines()]
    return "rollout failed:\n" + "\n".join(f"  {line}" for line in lines)


def events_of(app: App, verdict: kube.Verdict) -> dict[str, list[str]]:
    """Warning events of the pods of workloads that are not ready (probe failures, mounts, scheduling)."""
    pods = {pod for key in verdict.waiting for pod in verdict.pods.get(key, [])}
    if not pods:
        return {}
    result = app.run(app.kubectl("get", "events", "-o", "json"), query=True, capture=True, check=False, quiet=True)
    if result.exited != 0:
        return {}
    return kube.warning_events(json.loads(result.stdout or "{}").get("items", []), pods)
