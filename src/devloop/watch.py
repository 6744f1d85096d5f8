"""The watch loop: `inv watch` rebuilds and redeploys on change; `inv dev` is up, then logs and watch.

watchdog reports file events (inotify/FSEvents, or polling with ``--poll``); tasks/core/watchfilter.py
says what each change asks for; tasks/core/debounce.py says when a cycle starts and spots a loop.
A cycle is ``workflow.cycle``: build → deliver → render → apply → ready, with per-phase timings.
``ROOT_TASKS`` join the root namespace.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from invoke import Context

from devloop import k8s, shell, workflow
from devloop.core import debounce, lock, watchfilter
from devloop.core.errors import KitError
from devloop.kit import App, kit_task

POLL_INTERVAL = 0.5  # seconds between two snapshots with --poll
STOP_GRACE = 3.0  # seconds children get to exit on SIGTERM before SIGKILL
# Event kinds that change what a build or an apply would see. "opened"/"closed_no_write" are reads
# (docker build reads the whole context); "closed" repeats "modified".
CHANGE_KINDS = frozenset({"created", "modified", "deleted", "moved", "attrib"})


def _event_types() -> list[Any]:
    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        FileAttribEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
    )

    return [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileDeletedEvent, FileMovedEvent,
            DirCreatedEvent, DirDeletedEvent, DirMovedEvent]


# -- from events to batches ----------------------------------------------------------------------


class Inbox:
    """The observer thread adds changes; the main thread waits for a due batch. The debouncer
    decides when; this only adds the lock and the wake-ups."""

    def __init__(self, debouncer: debounce.Debouncer, wait: Callable[[threading.Condition, float], Any] | None = None) -> None:
        self.debouncer = debouncer
        self._cond = threading.Condition()
        self._changes: dict[str, watchfilter.Change] = {}
        # How to wait for an event or a deadline (tests pass one that advances a fake clock instead).
        self._wait = wait or (lambda cond, seconds: cond.wait(seconds))

    def add(self, change: watchfilter.Change) -> None:
        with self._cond:
            self.debouncer.add(change.path)
            self._changes[change.path] = change
            self._cond.notify()

    def take(self) -> tuple[debounce.Batch, list[watchfilter.Change]] | None:
        """The due batch and its changes, or None (never blocks)."""
        with self._cond:
            batch = self.debouncer.take()
            if batch is None:
                return None
            return batch, [self._changes.pop(p) for p in batch.paths]

    def wait(self, check: Callable[[], None] = lambda: None, tick: float = 0.5) -> tuple[debounce.Batch, list[watchfilter.Change]]:
        """Block until a batch is due. ``check`` runs at least every ``tick`` seconds (it may raise)."""
        while True:
            with self._cond:
                taken = self.take()
                if taken:
                    return taken
                due = self.debouncer.due_in()
                self._wait(self._cond, tick if due is None else min(due, tick))
            check()

    @contextmanager
    def cycle(self) -> Iterator[None]:
        with self._cond:
            self.debouncer.cycle_started()
        try:
            yield
        finally:
            with self._cond:
                self.debouncer.cycle_finished()
                self._cond.notify()


class ChangeHandler:
    """watchdog's handler protocol (``dispatch``): classify each event's path(s), hand changes on."""

    def __init__(self, watch_filter: watchfilter.WatchFilter, inbox: Inbox,
                 new_folder: Callable[[str], None] | None = None) -> None:
        self.filter = watch_filter
        self.inbox = inbox
        self.new_folder = new_folder
        self.seen = 0  # events received, ignored ones included
        self.ignored = 0

    def dispatch(self, event: Any) -> None:
        self.seen += 1
        kind = event.event_type
        if kind not in CHANGE_KINDS or (event.is_directory and kind in ("modified", "attrib")):
            self.ignored += 1
            return
        paths = [os.fsdecode(event.src_path)]
        if kind == "moved" and event.dest_path:
            paths.append(os.fsdecode(event.dest_path))
        changes = [c for c in (self.filter.classify(p) for p in paths) if c is not None]
        if not changes:
            self.ignored += 1
        for change in changes:
            self.inbox.add(change)
        if event.is_directory and kind in ("created", "moved") and self.new_folder:
            self.new_folder(paths[-1])


class Watcher:
    """The observer and its watches: planned around ignored folders, extended as folders appear."""

    def __init__(self, watch_filter: watchfilter.WatchFilter, handler: ChangeHandler, poll: bool = False) -> None:
        self.filter = watch_filter
        self.handler = handler
        self.poll = poll
        self.watches: list[watchfilter.Watch] = []
        self.missing: list[str] = []
        self._flat: set[str] = set()
        self._recursive: set[str] = set()
        self._observer: Any = None
        handler.new_folder = self.folder_appeared

    def start(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        self._observer = PollingObserver(timeout=POLL_INTERVAL) if self.poll else Observer()
        targets = self.filter.targets()
        self.missing = [t for t in targets if not os.path.exists(t)]
        for target in watchfilter.plan_watches([t for t in targets if t not in self.missing], self.filter.prunable):
            self._schedule(target)
        self._observer.start()

    def _schedule(self, target: watchfilter.Watch) -> None:
        if not os.path.isdir(target.path):
            return  # gone since it was planned
        self._observer.schedule(self.handler, target.path, recursive=target.recursive, event_filter=_event_types())
        (self._recursive if target.recursive else self._flat).add(target.path)
        self.watches.append(target)

    def folder_appeared(self, path: str) -> None:
        """A new folder inside a non-recursively watched one: watch it too (unless it is ignored)."""
        if os.path.dirname(path) in self._flat and path not in self._recursive and not self.filter.prunable(path):
            for target in watchfilter.plan_watches([path], self.filter.prunable):
                if target.path not in self._recursive and target.path not in self._flat:
                    self._schedule(target)

    def stop(self) -> None:
        if self._observer is not None:
            import logging

            # watchdog logs a harmless race between its reader thread and stop() as an error.
            logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
            self._observer.stop()
            self._observer.join(timeout=2)

    def describe(self) -> str:
        kind = f"polling every {POLL_INTERVAL}s" if self.poll else "native file events"
        return f"{len(self.watches)} watch(es), {kind}"


class Session:
    """Watching one app: filter → handler → inbox, the loop guard, and the cycle count."""

    def __init__(self, filter: watchfilter.WatchFilter, quiet: float, max_delay: float, poll: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Condition, float], Any] | None = None) -> None:
        self.filter, self.quiet, self.max_delay, self.poll, self.clock, self.wait = filter, quiet, max_delay, poll, clock, wait
        self.cycles = 0
        # Polling reports a write up to one interval late: still count it as made during the cycle.
        grace = POLL_INTERVAL + 0.1 if poll else 0.05
        self.inbox = Inbox(debounce.Debouncer(quiet, max_delay, clock, grace), wait)
        self.handler = ChangeHandler(filter, self.inbox)
        self.watcher = Watcher(filter, self.handler, poll)
        self.guard = debounce.LoopGuard()

    def start(self) -> float:
        """Start watching; the seconds it took until changes are seen."""
        started = self.clock()
        self.watcher.start()
        return self.clock() - started

    def stop(self) -> None:
        self.watcher.stop()

    def next(self, check: Callable[[], None] = lambda: None) -> tuple[debounce.Batch, watchfilter.Plan]:
        """Wait for the next batch that asks for something; stop a self-triggering loop."""
        while True:
            batch, changes = self.inbox.wait(check)
            plan = self.filter.plan(changes)
            looping = self.guard.check(batch)
            if looping:
                raise self_trigger_error(looping, self.guard.streak)
            if plan.anything:
                return batch, plan

    def run(self, cycle: Callable[[int, debounce.Batch, watchfilter.Plan], Any], limit: int | None = None,
            check: Callable[[], None] = lambda: None) -> Any:
        """Run ``cycle`` for each batch until ``limit`` cycles (None: until interrupted); the last result."""
        result = None
        while limit is None or self.cycles < limit:
            batch, plan = self.next(check)
            self.cycles += 1
            with self.inbox.cycle():
                result = cycle(self.cycles, batch, plan)
            check()
        return result


def self_trigger_error(paths: tuple[str, ...], cycles: int) -> KitError:
    shown = "\n".join(f"  - {p}" for p in paths[:10]) + (f"\n  - … and {len(paths) - 10} more" if len(paths) > 10 else "")
    return KitError(
        f"stopped: the cycles trigger themselves: {cycles} times in a row, the only changes were writes made "
        f"while the previous cycle ran, to the same path(s):\n{shown}",
        hint="keep generated files out of the watched tree: add them to .dockerignore (if the image does not need "
             "them) or to app.watch.ignore in invoke.yaml. If you saved them yourself during the cycles, restart.",
        code=1,
    )


def make_filter(app: App) -> watchfilter.WatchFilter:
    s = app.settings
    return watchfilter.WatchFilter(s.root, [(i.name, i.context, i.dockerfile) for i in s.images], s.manifests,
                       ignore=s.watch_ignore, watch_paths=s.watch_paths)


# -- stopping cleanly ----------------------------------------------------------------------------


class Stopper:
    """Ctrl-C, SIGTERM and SIGHUP for a long-running task: stop the in-flight command at once, then
    let the task unwind through its ``finally`` blocks (which stop the rest)."""

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        shell.STOPPING.clear()
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        shell.STOPPING.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        again = self.signal is not None
        self.signal = signum
        shell.STOPPING.set()  # the funnel starts no new command from now on
        # invoke's runner only forwards ^C to a command's stdin and keeps waiting: end the commands of
        # our own process group (builds, kubectl) now. Followers in their own sessions stop later.
        terminate(foreground_children(), signal.SIGKILL if again else signal.SIGTERM)
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt

    def exit_error(self) -> KitError | None:
        """How to end after a signal other than SIGINT (Ctrl-C gives 130 through kit_task)."""
        if self.signal in (None, signal.SIGINT):
            return None
        name = signal.Signals(self.signal).name
        return KitError(f"stopped by {name}; every child process was stopped", code=128 + int(self.signal))


def foreground_children() -> list[int]:
    """Descendants in our own process group: what `app.run` is running right now."""
    me = os.getpid()
    try:
        group = os.getpgid(me)
    except OSError:
        return []
    found = []
    for pid in lock.descendants(me, lock.process_table()):
        try:
            if os.getpgid(pid) == group:
                found.append(pid)
        except OSError:
            continue
    return found


def terminate(pids: list[int], sig: int = signal.SIGTERM) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            continue


def stop_descendants(grace: float = STOP_GRACE) -> list[int]:
    """Stop every process this one started (SIGTERM, SIGKILL after ``grace``); reap our own children."""
    me = os.getpid()
    table = lock.process_table()
    pids = lock.descendants(me, table)
    if not pids:
        return []
    terminate(pids)
    if not _gone(pids, [p for p in pids if table.get(p) == me], grace):
        terminate([p for p in pids if lock.pid_alive(p)], signal.SIGKILL)
        _gone(pids, [p for p in pids if table.get(p) == me], 1.0)
    return pids


def _gone(pids: list[int], children: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        for pid in children:
            try:
                os.waitpid(pid, os.WNOHANG)  # no zombie left behind
            except OSError:
                pass
        if not any(lock.pid_alive(p) for p in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


# -- the tasks' shared parts ---------------------------------------------------------------------


def phase_line(timings: dict[str, float]) -> str:
    return "  ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())


def cycle_runner(app: App, sets: dict[str, str], timeout: int | None,
                 stopper: Stopper) -> Callable[[int, debounce.Batch, watchfilter.Plan], bool]:
    """The loop's cycle: say why, run workflow.cycle, report timings; a failure is reported, not fatal."""

    def run(number: int, batch: debounce.Batch, plan: watchfilter.Plan) -> bool:
        app.forget("plan:")  # file contents changed: tags are computed again
        app.timings.clear()
        what = f"rebuild {', '.join(sorted(plan.images))}" if plan.build else "manifests only: no rebuild"
        app.say(f"── cycle {number}: {batch.describe()} changed ({what})")
        try:
            workflow.cycle(app, sets, timeout, build=plan.build, deliver=plan.build)
        except Exception as exc:
            stopper.check()  # a command ended by Ctrl-C is not a failed cycle
            if not isinstance(exc, KitError):
                raise
            failed_in = list(app.timings)[-1] if app.timings else "start"
            app.say(shell.mask(exc.render()))
            app.say(f"── cycle {number} failed in {failed_in} after {sum(app.timings.values()):.1f}s; "
                    "still watching: the next change retries")
            return False
        app.say(f"── cycle {number} ready: {phase_line(app.timings)}  │ save→ready {App.clock() - batch.first:.1f}s")
        return True

    return run


def first_cycle(app: App, session: Session, sets: dict[str, str], timeout: int | None, stopper: Stopper) -> bool:
    """`up` as cycle 0 of `inv dev`: changes saved meanwhile become one follow-up cycle."""
    app.say("── cycle 0: up")
    started = App.clock()
    with session.inbox.cycle():
        try:
            workflow.cycle(app, sets, timeout)
        except Exception as exc:
            stopper.check()
            if not isinstance(exc, KitError):
                raise
            app.say(shell.mask(exc.render()))
            app.say("── cycle 0 failed; still watching: the next change retries")
            return False
    app.say(f"── cycle 0 ready: {phase_line(app.timings)}  │ total {App.clock() - started:.1f}s")
    return True


def start_session(app: App, poll: bool, debounce_ms: int | None, max_delay_ms: int | None) -> Session:
    quiet = (debounce_ms or app.settings.debounce_ms) / 1000
    max_delay = (max_delay_ms or app.settings.max_delay_ms) / 1000
    session = Session(make_filter(app), quiet, max_delay, poll)
    took = session.start()
    for path in session.watcher.missing:
        app.say(f"warning: {path} does not exist: not watched (check app.watch.paths / app.images / app.manifests)")
    if not session.watcher.watches:
        session.stop()
        raise KitError("nothing to watch: no image context, manifest folder or app.watch.paths exists",
                       hint="check app.images.<name>.context, app.manifests and app.watch.paths in invoke.yaml", code=2)
    targets = ", ".join(session.filter.shown(t) for t in session.filter.targets())
    app.say(f"watching {targets} ({session.watcher.describe()}, ready in {took * 1000:.0f} ms; "
            f"debounce {quiet * 1000:.0f} ms, max delay {max_delay * 1000:.0f} ms) — Ctrl-C stops")
    return session


# -- logs and port-forwards beside the loop (`inv dev`) -------------------------------------------


class Background:
    """A blocking follower (tasks/observe.py: logs, port-forwards) on a thread, until ``stop()``.

    It gets its own App (facts and timings are per thread) and a ``stop_when`` to poll; its children
    are stopped by its own ``finally`` blocks, and anything left by the final sweep of ``inv dev``.
    """

    def __init__(self, name: str, app: App, body: Callable[[App, Callable[[], bool]], None]) -> None:
        self.name = name
        self.app = app
        self.body = body
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"kit-{name}", daemon=True)

    def start(self) -> Background:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.body(self.app, self._stop.is_set)
        except KeyboardInterrupt:
            pass
        except KitError as exc:
            if not self._stop.is_set() and not shell.STOPPING.is_set():
                self.app.say(f"{self.name}: stopped: " + shell.mask(exc.render()))
        except Exception as exc:  # a broken follower must not take the watch loop down
            if not self._stop.is_set():
                self.app.say(f"{self.name}: stopped: {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.thread.join(timeout)


def _print_line(line: str) -> None:
    print(shell.mask(line), flush=True)


def start_followers(app: App, logs: bool, forwards: bool, allow_context: bool) -> list[Background]:
    """Logs (`inv k8s.logs`) and port-forwards (`inv k8s.forward`) from tasks/observe.py, when it has them."""
    from devloop import observe
    from devloop.core import ports

    def sibling() -> App:
        other = App(app.c, app.settings)
        if allow_context:
            other.allow_context()
        return other

    started: list[Background] = []
    follow = getattr(observe, "follow_logs", None)
    if logs and follow is None:
        app.say("logs: tasks/observe.py has no follow_logs: not following logs (`inv k8s.logs` in another terminal)")
    elif logs:
        s = app.settings
        follow_logs = cast(Callable[..., None], follow)
        started.append(Background("logs", sibling(), lambda a, stop: follow_logs(
            a, s.selector, s.since, None, False, _print_line, stop_when=stop)).start())
    supervise = getattr(observe, "supervise_forwards", None)
    if forwards and app.settings.forwards and supervise is not None:
        specs = [ports.parse_forward(spec) for spec in app.settings.forwards]
        started.append(Background("forwards", sibling(), lambda a, stop: supervise(a, specs, stop_when=stop)).start())
    return started


# -- tasks ---------------------------------------------------------------------------------------

WATCH_HELP = {
    "env": "environment (dev, staging, qa…); default app.env",
    "set": k8s.SET_HELP,
    "poll": "poll the files instead of native events (VM shares, network file systems)",
    "timeout": "seconds each cycle waits for readiness (default app.timeout)",
    "debounce_ms": "quiet window before a cycle starts (default app.watch.debounce_ms)",
    "max_delay_ms": "start a cycle at the latest this long after the first change (default app.watch.max_delay_ms)",
    "cycles": "stop after this many cycles (default: run until Ctrl-C)",
    "allow_context": "act even if the kube context is not in app.cluster.allowed_contexts",
}


def whole_number(value: Any, flag: str) -> int | None:
    """A numeric flag (invoke passes strings for options that default to None)."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number <= 0:
        raise KitError(f"--{flag} must be a whole number greater than 0, got {value!r}", hint=f"e.g. --{flag} 2",
                       code=2)
    return number


def _options(sets: list[str] | None, timeout: Any, cycles: Any, debounce_ms: Any,
             max_delay_ms: Any) -> tuple[dict[str, str], int | None, int | None, int | None, int | None]:
    """The flags watch and dev share, checked (invoke passes a number flag whose default is None as text)."""
    return (k8s.parse_sets(sets), whole_number(timeout, "timeout"), whole_number(cycles, "cycles"),
            whole_number(debounce_ms, "debounce-ms"), whole_number(max_delay_ms, "max-delay-ms"))


def _loaded(c: Context, env: str | None, allow_context: bool) -> App:
    app = App.load(c, env, allow_context)
    app.context()  # the guard runs before anything is watched or built
    return app


@kit_task(iterable=["set"], help=WATCH_HELP)
def watch(c: Context, env: str | None = None, set: list[str] | None = None, poll: bool = False,
          timeout: int | None = None, debounce_ms: int | None = None, max_delay_ms: int | None = None,
          cycles: int | None = None, allow_context: bool = False) -> None:
    """Rebuild and redeploy on each change (Ctrl-C stops)."""
    app = _loaded(c, env, allow_context)
    sets, timeout, cycles, debounce_ms, max_delay_ms = _options(set, timeout, cycles, debounce_ms, max_delay_ms)
    stopper = Stopper()
    stopper.install()
    try:
        with workflow.cycle_lock(app):
            session = start_session(app, poll, debounce_ms, max_delay_ms)
            try:
                last_ok = session.run(cycle_runner(app, sets, timeout, stopper), cycles, stopper.check)
            finally:
                session.stop()
    except KeyboardInterrupt:
        stop_descendants()
        raise stopper.exit_error() or KeyboardInterrupt from None
    finally:
        stopper.restore()
    if last_ok is False:
        raise KitError(f"the last of the {cycles} cycle(s) failed (see above)", code=1)


@kit_task(iterable=["set"], help=dict(WATCH_HELP, cleanup="on exit, delete what was applied (inv down)",
                                      no_logs="do not follow logs", no_forwards="do not run app.forwards"))
def dev(c: Context, env: str | None = None, set: list[str] | None = None, poll: bool = False,
        timeout: int | None = None, debounce_ms: int | None = None, max_delay_ms: int | None = None,
        cycles: int | None = None, cleanup: bool = False, no_logs: bool = False, no_forwards: bool = False,
        allow_context: bool = False) -> None:
    """Up, then logs + forwards, and redeploy on change."""
    app = _loaded(c, env, allow_context)
    sets, timeout, cycles, debounce_ms, max_delay_ms = _options(set, timeout, cycles, debounce_ms, max_delay_ms)
    stopper = Stopper()
    stopper.install()
    followers: list[Background] = []
    try:
        with workflow.cycle_lock(app):
            session = start_session(app, poll, debounce_ms, max_delay_ms)
            try:
                first_cycle(app, session, sets, timeout, stopper)
                followers = start_followers(app, not no_logs, not no_forwards, allow_context)
                last_ok = session.run(cycle_runner(app, sets, timeout, stopper), cycles, stopper.check)
            finally:
                session.stop()
                for follower in followers:
                    follower.stop()
                stop_descendants()
                if cleanup:
                    stopper.restore()  # a second Ctrl-C now stops the cleanup itself
                    app.say("cleanup: deleting what was applied (--cleanup)")
                    k8s.delete_applied(app)
    except KeyboardInterrupt:
        raise stopper.exit_error() or KeyboardInterrupt from None
    finally:
        stopper.restore()
    if last_ok is False:
        raise KitError(f"the last of the {cycles} cycle(s) failed (see above)", code=1)


ROOT_TASKS: list[Any] = [watch, dev]
