"""Rollout: wait until the workloads are ready, failing fast on hopeless states with the reason.

The wait reads the workloads once, then keeps that state current from watch events (one
`kubectl get --raw …?watch=1` child per kind), so readiness and failures are
seen within a fraction of a second without re-listing; a full re-list is the slow backstop. Every kubectl
call it makes ends by the deadline.
"""

from __future__ import annotations

import contextlib
import json
import math
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from devloop import flags, shell
from devloop.core import converge, kube, render, supervise
from devloop.core.clusterstate import ClusterState
from devloop.core.errors import KitError
from devloop.kit import App

WATCHED_KINDS = "deployments,statefulsets,daemonsets,jobs,replicasets,pods"
BACKSTOP_SECONDS = 2.0  # the wait looks at its watch children at least this often (observe re-reads this often)
RELIST_SECONDS = 15.0  # the wait re-lists everything when no event came for this long (the slow backstop)
REQUEST_TIMEOUT = 10  # seconds one kubectl request of the wait may take (less when the deadline is nearer)
EVENTS_EVERY = 5.0  # seconds a pod runs but is not ready before the wait watches Warning events
REPORT_SECONDS = 3.0  # what the final "not ready" report may take to read the probe messages
SYNC_SECONDS = 3.0  # a kept watch shows an apply within this, else the wait reads the workloads
SETTLE_SECONDS = 0.25  # after a wake-up the wait lets a burst of events arrive, then judges them all at once
PACE_FROM = 3  # with more workloads than this still waiting, one event rarely ends the wait: judge at a pace (see pace)
PACE_PER_WAITING = 0.05  # seconds between judgements per workload still waiting (past PACE_FROM)
PACE_AT_MOST = 1.0  # the longest gap between judgements of a changed state
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
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
        raise cluster_failure(app, what, result.stderr or "")
    return list(json.loads(result.stdout or "{}").get("items", []))


def cluster_failure(app: App, what: str, stderr: str) -> KitError:
    """One line: which cluster, and why (kubectl repeats its connection error five or six times)."""
    _, why = kube.cluster_error(stderr)
    return KitError(f"cannot read {what} from {which_cluster(app, stderr)}: {why}", hint="check the cluster is up: inv doctor")


def which_cluster(app: App, stderr: str) -> str:
    """'the cluster of context C (https://HOST:PORT)', the server when kubectl's error names it.

    Not asked of `kubectl config view`: some kubectl builds (gcloud's dispatcher) ask the server for its
    version before any command, which against a hanging server costs seconds past the deadline.
    """
    server, _ = kube.cluster_error(stderr)
    return f"the cluster of context {app.context()}" + (f" ({server})" if server else "")


# -- waiting ----------------------------------------------------------------------------------------


def wait_ready(app: App, workloads: list[str], timeout: int | None = None,
               documents: list[dict[str, Any]] | None = None) -> kube.Verdict:
    """Wait until every workload is ready; stop at once on a hopeless state; one deadline for all.

    ``documents``: what was just applied (a watch session's wait then needs no listing; see Waiter)."""
    if app.c.config.run.dry:
        app.say(f"would wait for {', '.join(workloads) or 'nothing'} (--dry)")
        return kube.Verdict()
    limit = flags.int_flag(timeout, "timeout") or app.settings.timeout
    return Waiter(app, workloads, limit, applied_workloads(documents or [], workloads)).run()


def watch_kinds(workloads: list[str]) -> list[str]:
    """The kinds whose events the wait needs: pods, the wanted workloads' kinds, and a Deployment's ReplicaSets."""
    kinds = {FEED_KINDS[w.split("/")[0]] for w in workloads if w.split("/")[0] in FEED_KINDS}
    if "deployments" in kinds:
        kinds.add("replicasets")  # which ReplicaSet is the newest decides which pods are current
    return ["pods"] + sorted(kinds)


API_PATHS = {"pods": "/api/v1", "deployments": "/apis/apps/v1", "statefulsets": "/apis/apps/v1",
             "daemonsets": "/apis/apps/v1", "replicasets": "/apis/apps/v1", "jobs": "/apis/batch/v1", "events": "/api/v1"}


def watch_url(namespace: str, kind: str, selector: str = "", fields: str = "") -> str:
    """The API server's watch of one kind in one namespace (only objects with ``selector``'s labels, and ``fields``'
    field values, if given); its first events are the objects that exist."""
    labels = f"&labelSelector={quote(selector, safe='')}" if selector else ""
    labels += f"&fieldSelector={quote(fields, safe='')}" if fields else ""
    return f"{API_PATHS[kind]}/namespaces/{namespace}/{kind}?watch=1{labels}"


def open_events(app: App, kinds: list[str], on_event: Callable[[Any], None], notify: Callable[[], None],
                listed: list[dict[str, Any]] | None = None, selector: str = "", fields: str = "") -> supervise.EventFeed:
    """An EventFeed on ``kinds`` in the app's namespace (no request timeout: a watch has to stay open).

    Each child is `kubectl get --raw` on a watch URL: kubectl passes the server's events through, one JSON
    object per line, where `kubectl get KIND --watch -o json` decodes and prints each one again, at twice
    the CPU (bench/rollout_cpu_bench.py). ``listed``: objects already read, which name the namespace when
    the environment does not.
    """
    namespace = watched_namespace(app, listed or [])
    argvs = [app.kubectl("get", "--raw", watch_url(namespace, kind, selector, fields), namespaced=False) for kind in kinds]
    return supervise.EventFeed(argvs, spawner(app), on_event, notify, clock)


def watched_namespace(app: App, listed: list[dict[str, Any]]) -> str:
    """The environment's namespace, else the one the listed objects are in, else the kube context's own."""
    if app.settings.namespace:
        return app.settings.namespace
    for obj in listed:
        found = (obj.get("metadata") or {}).get("namespace")
        if found:
            return str(found)
    result = app.run(app.kubectl("config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}",
                                 namespaced=False), query=True, capture=True, check=False, quiet=True,
                     timeout=REQUEST_TIMEOUT)
    return (result.stdout or "").strip() or "default"


def query(app: App, args: list[str], deadline: float, quiet: bool = True) -> Any:
    """A kubectl read that ends by the deadline: its requests time out, and the process is killed at it."""
    left = deadline - clock()
    seconds = max(1, min(REQUEST_TIMEOUT, math.floor(left)))
    return app.run(app.kubectl(*args, f"--request-timeout={seconds}s"), query=True, capture=True, check=False,
                   quiet=quiet, timeout=max(left, 1.0))


class Watched:
    """What the wait knows of the cluster: objects from a listing, kept current by watch events.

    One wait owns it; a watch session keeps it from one cycle's wait to the next (``kept_watches``), so that
    wait starts no kubectl. Events are applied as they arrive, from the readers' threads, under a lock.
    """

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds
        self.state = ClusterState()
        self.lock = threading.Lock()
        self.changes = 0  # events that changed the state so far
        self.wake = supervise.Wakeup(settle=SETTLE_SECONDS)
        self.feed: supervise.EventFeed | None = None
        self.seeded = 0  # the feed's start count when the state was last read whole: a later start missed events
        self.held: list[Any] | None = None  # events that came while a listing ran (see listing)
        self.heard_at = -math.inf  # when the last event came

    def on_event(self, event: Any) -> None:
        """Apply one event (held back while a listing runs) and wake the wait: at once for a workload's own status
        (it decides readiness); pod and ReplicaSet events are gathered for a moment first."""
        with self.lock:
            if self.held is not None:
                self.held.append(event)
            else:
                self.changes += self.state.apply(event)
            self.heard_at = clock()
        obj = event.get("object") if isinstance(event, dict) else None
        self.wake.set(urgent=isinstance(obj, dict) and obj.get("kind") in WORKLOAD_KINDS)

    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.state.items()

    @contextlib.contextmanager
    def listing(self) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
        """While a listing runs, events are held back; the state is then replaced by what it read (if it read
        anything) and the held events applied after it, so an object that appeared meanwhile is not lost."""
        with self.lock:
            self.held = []
        listed: list[list[dict[str, Any]]] = []
        try:
            yield listed.append
        finally:
            with self.lock:
                if listed:
                    self.state.replace(listed[-1])
                for event in self.held or []:
                    self.changes += self.state.apply(event)
                self.held = None

    def current(self) -> bool:
        """Watching, and no watch child ended or started again since the state was last read whole."""
        if self.feed is None:
            return False
        self.feed.check()  # a child that ended is started again now: then the state needs a listing
        return self.feed.starts == self.seeded and self.feed.running()

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
            self.feed = None


class Warnings:
    """The namespace's Warning events (probe failures, mounts, scheduling), kept current by one watch: opened once a
    pod has run without becoming ready for EVENTS_EVERY, so a long rollout starts one kubectl for them, not a read
    every few seconds. Its events wake nothing: a failing probe's event is counted again at each probe, and a new
    message is said when the wait next looks (within BACKSTOP_SECONDS)."""

    def __init__(self, app: App, listed: list[dict[str, Any]]) -> None:
        self.state = ClusterState()
        self.lock = threading.Lock()
        self.feed = open_events(app, ["events"], self.on_event, lambda: None, listed, fields="type=Warning")
        self.feed.open()

    def on_event(self, event: Any) -> None:
        with self.lock:
            self.state.apply(event)

    def of(self, verdict: kube.Verdict) -> dict[str, list[str]]:
        """The Warning events of the pods of workloads that are not ready."""
        self.feed.check()  # a child that ended starts again (its first events are those that exist)
        with self.lock:
            return kube.warning_events(self.state.items(), waiting_pods(verdict))

    def close(self) -> None:
        self.feed.close()


class Kept:
    """A watch session's Watched, kept between its cycles' waits."""

    def __init__(self) -> None:
        self.watched: Watched | None = None


KEPT = "rollout:kept"


@contextlib.contextmanager
def kept_watches(app: App) -> Iterator[None]:
    """For `inv watch`/`dev`: the wait's watch children stay open from one cycle to the next (closed at the end)."""
    app.forget(KEPT)
    kept = app.fact(KEPT, Kept)
    try:
        yield
    finally:
        app.forget(KEPT)
        if kept.watched is not None:
            kept.watched.close()


def applied_workloads(documents: list[dict[str, Any]], workloads: list[str]) -> dict[str, dict[str, Any]]:
    """The wanted workloads' documents, as just applied (see Waiter.behind)."""
    wanted = {kube.normalise_workload(w) for w in workloads}
    return {kube.key_of(d): d for d in documents
            if d.get("kind") in WORKLOAD_KINDS and (d.get("metadata") or {}).get("name") and kube.key_of(d) in wanted}


class Waiter:
    """One wait: the state (a listing, then watch events), what was said, and the deadline.

    In a watch session the state of the previous cycle's wait is still current; the wait then starts from it
    without a listing, and judges once every workload it waits for shows the documents just applied (kubectl's
    annotation on it carries their spec): a moment after the apply, as its events arrive. A listing settles it
    if they have not arrived within SYNC_SECONDS. When no event came in the last SYNC_SECONDS and none is due (the
    apply changed none of them), nothing shows that the watches still flow (a laptop that slept may hold a stalled
    connection), so the wait lists as usual.
    """

    def __init__(self, app: App, workloads: list[str], limit: int,
                 applied: dict[str, dict[str, Any]] | None = None) -> None:
        self.app, self.workloads, self.limit = app, workloads, limit
        self.deadline = clock() + limit
        registry = app.settings.cluster.registry if app.settings.cluster.provider == "registry" else ""
        self.ours = [f"{registry}/{i.name}" if registry else i.name for i in app.settings.images]  # names: no hashing
        self.kinds = watch_kinds(workloads)
        self.applied = applied or {}
        self.kept: Kept | None = app.fact(KEPT, lambda: None)
        self.watched = Watched(self.kinds)
        self.sync_by: float | None = None  # while set, the state may be from before the apply (see behind)
        self.shown: set[str] = set()
        self.delivered: set[str] = app.fact("delivered", set)  # images this run put on the node (delivery.py)
        self.older: set[str] = set()  # pods from before the wait: one restart each for a pull the kit has fixed
        self.seen_changes = 0
        self.quiet_since = clock()
        self.warnings: Warnings | None = None  # watched once a pod has run not ready for EVENTS_EVERY
        self.not_ready_since: dict[str, float] = {}  # pod -> when this wait first saw it running but not ready
        self.judge_at = -math.inf  # a changed state is judged again from then on (see pace)

    def run(self) -> kube.Verdict:
        reused = self.reuse()
        if reused:
            self.app.say(f"watching {', '.join(self.watched.kinds)} (open since an earlier cycle) until ready or "
                         f"{self.limit}s")
        else:
            argv = self.app.kubectl("get", WATCHED_KINDS, "-o", "json",
                                    f"--request-timeout={min(REQUEST_TIMEOUT, self.limit)}s")
            self.app.say(f"$ {shlex.join(argv)}    # then kept current by watching {', '.join(self.kinds)}, "
                         f"until ready or {self.limit}s")
        with stop_on_signals(), contextlib.ExitStack() as stack:
            if self.kept is None:
                stack.callback(self.watched.close)
            stack.callback(self.close_warnings)
            if reused:
                self.seen_changes = self.watched.changes
            else:
                self.relist()
            self.older = {o["metadata"]["name"] for o in self.watched.items() if o.get("kind") == "Pod"}
            verdict = self.judge()
            stale = False  # the state changed since the verdict: judged again once the pace allows
            while True:
                now = clock()
                if stale and now >= min(self.judge_at, self.deadline):
                    verdict, stale = self.judge(), False
                    now = clock()  # a judgement that lists again takes time
                if verdict is not None:
                    self.say_waiting(verdict)
                    if verdict.hopeless:
                        raise KitError(explain(self.app, verdict.hopeless, self.deadline), code=1)
                    if verdict.done:
                        self.app.say(f"ready: {', '.join(verdict.ready) or 'nothing to wait for'}")
                        self.app.seen_ready = self.watched.items()  # with the pods' own events of that moment
                        return verdict
                    if now >= self.deadline:
                        raise self.not_ready(verdict)
                    self.say_probe_failures(verdict, now)
                self.watch()
                until = min(self.deadline, self.sync_by) if self.sync_by is not None else self.deadline
                if stale:
                    until = min(until, self.judge_at)
                self.watched.wake.wait(min(until - now, BACKSTOP_SECONDS))
                # judged again only when the state changed: assess is the wait's main cost
                stale = self.catch_up() or verdict is None or stale

    def reuse(self) -> bool:
        """Take the session's Watched when it is current, watches what this wait needs, and the documents just applied
        name every workload waited for (so the state can be told from the one before the apply); its state is used
        as it is when the watches show they flow: an event came a moment ago (the apply's own), or one is due (the
        state is behind). Otherwise this wait's own Watched becomes the session's (its watches, kinds added, replace
        the old ones)."""
        if self.kept is None:
            return False
        kept = self.kept.watched
        if kept is not None and set(self.kinds) <= set(kept.kinds) and kept.current() \
                and all(kube.normalise_workload(w) in self.applied for w in self.workloads):
            self.watched = kept  # its watches are kept either way
            self.sync_by = min(clock() + SYNC_SECONDS, self.deadline)
            return clock() - kept.heard_at < SYNC_SECONDS or self.behind()
        if kept is not None:
            kept.close()
            self.kinds = ["pods"] + sorted((set(kept.kinds) | set(self.kinds)) - {"pods"})
            self.watched = Watched(self.kinds)
        self.kept.watched = self.watched
        return False

    def watch(self) -> None:
        """Open the watches (once the first read was not already the answer); start again any child that ended."""
        watched = self.watched
        if watched.feed is None:
            watched.feed = open_events(self.app, watched.kinds, watched.on_event, watched.wake.set, watched.items())
            watched.feed.open()
            watched.seeded = watched.feed.starts
        watched.feed.check()

    # -- the state ------------------------------------------------------------------------------

    def relist(self) -> None:
        """The whole state from one listing (events applied meanwhile are kept where they are newer)."""
        with self.watched.listing() as replace:
            result = query(self.app, ["get", WATCHED_KINDS, "-o", "json"], self.deadline)
            if shell.STOPPING.is_set():
                raise KeyboardInterrupt  # a signal landed while kubectl ran (invoke's runner swallowed it)
            if result.exited == 124:
                raise self.silent_cluster(result.stderr or "")
            if result.exited != 0:
                raise cluster_failure(self.app, "workload state", result.stderr or "")
            replace(json.loads(result.stdout or "{}").get("items", []))
        self.sync_by = None  # read after the apply
        self.quiet_since = clock()

    def catch_up(self) -> bool:
        """Take in what the watches sent; re-list after a watch restarted, or after a long silence.

        True when the state may have changed (events applied, or a fresh listing)."""
        watched = self.watched
        assert watched.feed is not None
        if watched.feed.starts > watched.seeded:
            watched.seeded = watched.feed.starts
            self.relist()  # a restarted watch missed what happened while it was down
        elif watched.changes != self.seen_changes:
            self.seen_changes = watched.changes
            self.quiet_since = clock()
        elif clock() - self.quiet_since >= RELIST_SECONDS:
            self.relist()
        else:
            return False
        return True

    def behind(self) -> bool:
        """Whether the state may still be from before the apply: some workload waited for does not show the spec
        just applied yet (its events are on their way). Once all do, or a listing was taken, it is current."""
        if self.sync_by is None:
            return False
        seen = {kube.key_of(o): o for o in self.watched.items() if o.get("kind") in WORKLOAD_KINDS}
        if any(key not in seen or not converge.applied_from(doc, seen[key]) for key, doc in self.applied.items()):
            return True
        self.sync_by = None
        return False

    def judge(self) -> kube.Verdict | None:
        """Assess the state: None while it may be from before the apply (a listing settles that after SYNC_SECONDS);
        a hopeless verdict from watch events is confirmed by a fresh listing first. Sets when to judge a changed state
        next (see pace)."""
        verdict = self.verdict()
        self.judge_at = clock() + pace(verdict)
        return verdict

    def verdict(self) -> kube.Verdict | None:
        if self.behind():
            if clock() < self.sync_by:  # type: ignore[operator]
                return None
            self.app.say(f"  the watches did not show the apply within {SYNC_SECONDS:.0f}s: reading the workloads")
            self.relist()
        verdict = self.assess()
        if verdict.hopeless and self.watched.feed is not None:
            self.relist()
            verdict = self.assess()
        return verdict

    def assess(self) -> kube.Verdict:
        verdict = kube.assess(self.watched.items(), self.workloads, self.ours)
        retry = kube.pulls_to_retry(verdict, self.delivered, self.older)
        if retry:
            self.say_waiting(verdict)
            self.restart([p.pod for p in retry])
            verdict = kube.assess(self.watched.items(), self.workloads, self.ours)
        return verdict

    def restart(self, pods: list[str]) -> None:
        """Delete pods that failed to pull an image before the kit delivered it: their controller starts new ones
        now, where the kubelet would retry only after its back-off (up to tens of seconds)."""
        self.older -= set(pods)
        result = self.app.run(self.app.kubectl("delete", "pod", *pods, "--wait=false"), check=False,
                              timeout=max(self.deadline - clock(), 1.0))
        if result.exited != 0:
            raise cluster_failure(self.app, f"pod(s) {', '.join(pods)} (to restart them)", result.stderr or "")
        self.relist()  # the deleted pods now carry their deletionTimestamp: no longer current

    # -- what is said ---------------------------------------------------------------------------

    def say_waiting(self, verdict: kube.Verdict) -> None:
        lines = [f"{k}: {v}" for k, v in verdict.waiting.items()] + \
                [f"{p.workload} pod {p.pod}: {p.sentence}" for p in verdict.problems if not p.hopeless and p.pod]
        for line in lines:
            if line not in self.shown:
                self.shown.add(line)
                self.app.say(f"  waiting: {line}")

    def say_probe_failures(self, verdict: kube.Verdict, now: float) -> None:
        """Name the readiness probe's message of a pod that has run without becoming ready for EVENTS_EVERY (from
        then on Warning events are watched); in a healthy rollout each new pod is ready sooner, and none is watched."""
        not_ready = [p.pod for p in verdict.problems if p.reason == "NotReady"]
        for pod in not_ready:
            self.not_ready_since.setdefault(pod, now)
        if self.warnings is None:
            if not any(now - self.not_ready_since[pod] >= EVENTS_EVERY for pod in not_ready):
                return
            self.warnings = Warnings(self.app, self.watched.items())
        for pod, lines in self.warnings.of(verdict).items():
            message = kube.probe_failure(lines)
            seen = f"pod {pod}: readiness probe failing: {kube.uncounted(message or '')}"  # a new count is not news
            if message and seen not in self.shown:
                self.shown.add(seen)
                self.app.say(f"  waiting: pod {pod}: readiness probe failing: {message}")

    def close_warnings(self) -> None:
        if self.warnings is not None:
            self.warnings.close()
            self.warnings = None

    def not_ready(self, verdict: kube.Verdict) -> KitError:
        # Without a watch of them, the report's own read of Warning events gets a few seconds past the deadline.
        warnings = self.warnings.of(verdict) if self.warnings else events_of(self.app, verdict, clock() + REPORT_SECONDS)
        report = kube.deadline_report(verdict, warnings)
        return KitError(f"not ready after {self.limit}s:\n" + "\n".join(f"  {line}" for line in report),
                        hint="see `inv k8s.status` and `inv k8s.logs`; raise app.timeout (or --timeout) if the "
                             "app is just slow to start", code=1)

    def silent_cluster(self, stderr: str) -> KitError:
        return KitError(f"not ready after {self.limit}s: {which_cluster(self.app, stderr)} did not answer in time",
                        hint="check the cluster is up and not overloaded: inv doctor", code=1)


def pace(verdict: kube.Verdict | None) -> float:
    """Seconds until a changed state is judged again. Judging reads every object, and a rollout of many workloads
    sends events all along: while more than PACE_FROM are waiting, one event ends the wait only if all but one of
    them got ready meanwhile, so judging after each burst costs CPU for little. A failure, or an end where several
    get ready at once, is then seen up to one pace (PACE_AT_MOST at most) later; with few left, at once."""
    waiting = len(verdict.waiting) if verdict is not None else 0
    return 0.0 if waiting <= PACE_FROM else min(PACE_AT_MOST, PACE_PER_WAITING * waiting)


def explain(app: App, problems: list[kube.Problem], deadline: float | None = None) -> str:
    lines = []
    until = deadline if deadline is not None else clock() + REQUEST_TIMEOUT
    for problem in problems:
        where = f"{problem.workload}" + (f" pod {problem.pod}" if problem.pod else "")
        lines.append(f"{where}: {problem.reason}: {problem.sentence}")
        if problem.wants_previous_log and problem.pod:
            log = query(app, ["logs", problem.pod, "-c", problem.container, "--previous", "--tail", "10"], until)
            lines += log_lines(log)
        elif problem.reason == "JobFailed":
            lines += log_lines(query(app, ["logs", problem.workload, "--tail", "10"], until))
    return "rollout failed:\n" + "\n".join(f"  {line}" for line in lines)


def log_lines(log: Any) -> list[str]:
    """A log tail under a failure; a container that printed nothing is said to have done so."""
    lines = [f"    | {line}" for line in (log.stdout or log.stderr).rstrip().splitlines()]
    return lines or (["    (it printed nothing)"] if log.exited == 0 else [])


def events_of(app: App, verdict: kube.Verdict, deadline: float | None = None) -> dict[str, list[str]]:
    """Warning events of the pods of workloads that are not ready (probe failures, mounts, scheduling)."""
    pods = waiting_pods(verdict)
    if not pods:
        return {}
    result = query(app, ["get", "events", "--field-selector", "type=Warning", "-o", "json"],
                   deadline if deadline is not None else clock() + REQUEST_TIMEOUT)
    if result.exited != 0:
        return {}
    return kube.warning_events(json.loads(result.stdout or "{}").get("items", []), pods)


def waiting_pods(verdict: kube.Verdict) -> set[str]:
    return {pod for key in verdict.waiting for pod in verdict.pods.get(key, [])}
