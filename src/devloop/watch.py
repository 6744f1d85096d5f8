"""The watch loop: `inv watch` rebuilds and redeploys on change; `inv dev` is up, then logs and watch.

devloop/watcher.py turns file events into batches (core/watchfilter.py says what each change asks for,
core/debounce.py when a cycle starts); devloop/children.py stops every child on Ctrl-C. A cycle is
``workflow.cycle``: build → deliver → render → apply → ready, with per-phase timings.
``ROOT_TASKS`` join the root namespace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from invoke import Context

from devloop import children, k8s, livesync, observe, prebuild, rollout, shell, workflow
from devloop.build import Planned
from devloop.children import Stopper
from devloop.core import debounce, ports, watchfilter
from devloop.core.errors import KitError
from devloop.kit import App, kit_task
from devloop.watcher import POLL_INTERVAL, SETTLE, ChangeHandler, Inbox, Watcher

# -- the loop ------------------------------------------------------------------------------------

Settled = Callable[[int, list[watchfilter.Change], watchfilter.Plan, float], bool]
NATIVE_GRACE = 0.05  # seconds after a cycle in which a native event still counts as written during it


class Session:
    """Watching one app: filter → handler → inbox, the loop guard, and the cycle count."""

    def __init__(self, filter: watchfilter.WatchFilter, quiet: float, max_delay: float, poll: bool = False,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Condition, float], Any] | None = None) -> None:
        self.filter, self.quiet, self.max_delay, self.poll, self.clock, self.wait = filter, quiet, max_delay, poll, clock, wait
        self.cycles = 0
        # Polling reports a write up to one interval late: still count it as made during the cycle, or the build.
        lag = POLL_INTERVAL + 0.1 if poll else 0.0
        self.inbox = Inbox(debounce.Debouncer(quiet, max_delay, clock, lag if poll else NATIVE_GRACE), wait, lag)
        self.handler = ChangeHandler(filter, self.inbox)
        self.watcher = Watcher(filter, self.handler, poll)
        self.guard = debounce.LoopGuard()
        self.muted: frozenset[str] = frozenset()  # paths that change all the time: alone they start no cycle

    def start(self) -> float:
        """Start watching; the seconds it took until changes are seen."""
        started = self.clock()
        self.watcher.start()
        return self.clock() - started

    def stop(self) -> None:
        self.watcher.stop()

    def next(self, check: Callable[[], None] = lambda: None,
             settled: Settled | None = None) -> tuple[debounce.Batch, watchfilter.Plan]:
        """Wait for the next batch that asks for something; stop a self-triggering loop.

        ``settled(number, changes, plan, now)``: the changes of cycle ``number`` have settled; its batch is not due."""
        def early(changes: list[watchfilter.Change]) -> bool:
            if settled and not self.only_muted(c.path for c in changes):
                return settled(self.cycles + 1, changes, self.filter.plan(changes), self.clock())
            return False

        while True:
            batch, changes = self.inbox.wait(check, settled=early if settled else None)
            if self.only_muted(batch.paths):
                continue
            self.muted = frozenset()
            plan = self.filter.plan(changes)
            looping = self.guard.check(batch)
            if looping:
                raise self_trigger_error(looping, self.guard.streak)
            if plan.anything:
                return batch, plan

    def only_muted(self, paths: Iterable[str]) -> bool:
        return bool(self.muted) and set(paths) <= self.muted

    def run(self, cycle: Callable[[int, debounce.Batch, watchfilter.Plan], Any], limit: int | None = None,
            check: Callable[[], None] = lambda: None,
            settled: Settled | None = None) -> Any:
        """Run ``cycle`` for each batch until ``limit`` cycles (None: until interrupted); the last result."""
        result = None
        while limit is None or self.cycles < limit:
            batch, plan = self.next(check, settled)
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


# -- the tasks' shared parts ---------------------------------------------------------------------


def brief(seconds: float) -> str:
    """A live update's times: milliseconds below a second."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f}s"


def phase_line(timings: dict[str, float]) -> str:
    return "  ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items())


def attempt(app: App, stopper: Stopper, work: Callable[[], object]) -> bool:
    """Run one cycle's work; a KitError is reported and gives False (the loop goes on)."""
    try:
        work()
    except Exception as exc:
        stopper.check()  # a command ended by Ctrl-C is not a failed cycle
        if not isinstance(exc, KitError):
            raise
        app.say(shell.mask(exc.render()))
        return False
    return True


BUILD_ATTEMPTS = 3  # builds in one cycle while files keep changing under them, before the cycle gives up
STALE_LOOK = 0.05  # seconds between looks, while a build runs, for a save that makes it of no use


def set_aside(build: prebuild.Build) -> str:
    """What happens to a build a file changed under (said before it is stopped, if it still runs)."""
    return "is stopped" if build.stopped or build.running else "failed" if build.error else "is set aside untagged"


class Cycles:
    """The loop's cycles: say why, sync or run workflow.cycle, report timings; a failure is reported, not fatal.

    A rebuild's build starts as soon as the save settles (``settled``), while the debounce still waits, else as
    the cycle begins. It is tagged only if no file changed after it started (devloop/prebuild.py); else the
    cycle builds again.
    """

    def __init__(self, app: App, sets: dict[str, str], timeout: int | None, stopper: Stopper, live: livesync.LiveSync,
                 session: Session, prune: bool = True) -> None:
        self.app, self.sets, self.timeout, self.stopper, self.live = app, sets, timeout, stopper, live
        self.session, self.prune = session, prune
        self.early: prebuild.Build | None = None  # started as its save settled; the next cycle takes it
        self.early_for = 0  # the number of the cycle it was started for
        self.restarts = 0  # early builds of that cycle stopped for a newer save (at most BUILD_ATTEMPTS - 1)
        self.build_took = 0.0  # the last build phase, from its first build's start (maybe before the cycle)
        self.latest: prebuild.Build | None = None  # the build started last
        self.build_failed = False  # the last cycle that built failed in its build
        self.noisy: tuple[str, ...] = ()  # files that changed under each build of the cycle that just failed

    def decide(self, plan: watchfilter.Plan, paths: tuple[str, ...]) -> tuple[list[tuple[Any, Any]], str, bool]:
        """The syncs that answer these changes (or none, and why), and whether the images are built."""
        syncs, why = self.live.plan(plan.images, paths) if plan.build else ([], "")
        if plan.manifests and syncs:
            syncs, why = [], "a manifest changed too"
        return syncs, why, plan.build or self.live.active  # synced files only converge through a new image

    def header(self, number: int, paths: tuple[str, ...], plan: watchfilter.Plan, why: str, build: bool) -> str:
        what = f"rebuild {', '.join(sorted(plan.images))}" if plan.build else \
            "rebuild: containers carry synced files" if build else "manifests only: no rebuild"
        what += f": {why}" if why and plan.build else ""
        return f"── cycle {number}: {debounce.describe(paths)} changed ({what})"

    def start_build(self, started: float) -> prebuild.Build:
        self.latest = prebuild.Build(self.app, self.session.inbox, started).start()
        return self.latest

    def settled(self, number: int, changes: list[watchfilter.Change], plan: watchfilter.Plan, now: float) -> bool:
        """The save that opens cycle ``number`` is written: start its build now, if it needs one. True: the changes
        are a live update, and its cycle starts now (a sync is cheap; a later save is synced in a cycle of its own)."""
        paths = tuple(c.path for c in changes)
        syncs, why, build = self.decide(plan, paths)
        early = self.early if self.early_for == number else None  # started as an earlier save of this batch settled
        if syncs or not plan.build or shell.is_dry(self.app.c):  # --dry builds nothing to tag
            self.close()  # a build the batch no longer asks for is stopped
            return bool(syncs)
        changed = self.session.inbox.changed_after(early.started) if early else ()
        if early and (not changed or self.restarts >= BUILD_ATTEMPTS - 1):
            return False  # nothing it is built from changed since; or files keep changing: the build phase decides
        if early:
            when = "while it built" if early.running else "after it started"
            self.app.say(f"   {debounce.describe(changed)} changed {when}: that build {set_aside(early)}; building again")
            self.restarts += 1
        else:
            self.app.say(self.header(number, paths, plan, why, build))
            self.restarts = 0
        self.close()
        self.early, self.early_for = self.start_build(now), number
        return False

    def build_phase(self, first: prebuild.Build | None) -> Callable[[], list[Planned]]:
        """The cycle's build: wait for ``first`` (or start one now), and build again while files change under it."""
        def phase() -> list[Planned]:
            current = first or self.start_build(self.session.inbox.now())
            began = current.started
            changed: list[tuple[str, ...]] = []  # what changed under each of its builds
            for tries in range(1, BUILD_ATTEMPTS + 1):
                self.await_build(current)
                planned = current.result()
                if planned is not None:
                    self.build_took = self.session.inbox.now() - began
                    return planned
                changed.append(current.changed)
                if tries < BUILD_ATTEMPTS:
                    self.app.say(f"   {debounce.describe(current.changed)} changed while it built: that build "
                                 f"{set_aside(current)}; building again")
                    current = self.start_build(self.session.inbox.now())
            every = tuple(p for p in changed[0] if all(p in c for c in changed[1:]))  # under each build
            self.noisy = every
            named = every or tuple(dict.fromkeys(p for c in changed for p in c))
            raise KitError(f"files changed under each of {BUILD_ATTEMPTS} builds in a row ({debounce.describe(named)}): "
                           "a tag must name what its image holds, so none was tagged",
                           hint="if something writes there all the time (a log, a database file), keep it out of the "
                                "build context with .dockerignore; else save again", code=1)
        return phase

    @staticmethod
    def await_build(build: prebuild.Build) -> None:
        """Wait for ``build``; stop it as soon as a file it is built from has changed under it and that save has
        settled: its result would be set aside, so the next build starts now instead of when it ends."""
        while not build.wait(STALE_LOOK):
            if build.stale(SETTLE):
                build.stop()
                return

    def mute_noisy(self) -> None:
        """After a cycle failed for files that changed under each of its builds: they would fail the next cycle
        at once, again and again, so a change to them alone starts none until another file changes."""
        if self.noisy:
            self.session.muted = frozenset(self.noisy)
            self.app.say(f"   changing all the time: {debounce.describe(self.noisy)}; from now on a change there alone "
                         "starts no cycle (a change to any other file, .dockerignore say, does)")
            self.noisy = ()

    def close(self, ending: bool = False) -> None:
        """Set aside a build no cycle took. ``ending``: the loop ends; the latest build starts no process, a running
        one is stopped, and after Ctrl-C nothing is waited for."""
        early, self.early = self.early, None
        if ending and self.latest:
            self.latest.cancel()
            if self.latest.running:
                children.stop_descendants()
        if early and not (ending and shell.STOPPING.is_set()):
            early.discard()

    def __call__(self, number: int, batch: debounce.Batch, plan: watchfilter.Plan) -> bool:
        app, early, self.early = self.app, self.early, None
        app.timings.clear()
        self.build_took, self.noisy = 0.0, ()
        syncs, why, build = self.decide(plan, batch.paths)
        if early and (syncs or not build):  # the batch came to less than the save that started it
            early.discard()
            early = None
        if syncs and live_cycle(app, number, batch, self.live, syncs):
            self.session.guard.reset()  # a sync writes nothing into the tree: saves made during it are the user's
            if self.build_failed:
                app.say("   the last build failed (see above): the containers run the image deployed before it, "
                        "with the synced files")
            return True
        threaded = build and not shell.is_dry(app.c)  # --dry builds nothing to tag
        if not early:  # else its header was said when its save settled
            app.say(self.header(number, batch.paths, plan, why, build))
            app.forget("plan:")  # file contents changed: tags are computed again
        with self.live.rebuilding():
            done = attempt(app, self.stopper, lambda: workflow.cycle(
                app, self.sets, self.timeout, build=build, deliver=build, prune=self.prune,
                built=self.build_phase(early) if threaded else None))
        if early and self.build_took:
            app.timings["build"] = self.build_took  # it started before the debounce ended: its whole length
        if build:
            self.build_failed = not done and list(app.timings)[-1:] == ["build"]
        if not done:
            failed_in = list(app.timings)[-1] if app.timings else "start"
            app.say(f"── cycle {number} failed in {failed_in} after {sum(app.timings.values()):.1f}s; "
                    "still watching: the next change retries")
            self.mute_noisy()
            return False
        if build:
            self.live.reset()
        app.say(f"── cycle {number} ready: {phase_line(app.timings)}  │ save→ready {App.clock() - batch.first:.1f}s")
        if build:
            self.live.warm()  # shells in the new containers, for the next sync
        return True


def live_cycle(app: App, number: int, batch: debounce.Batch, live: livesync.LiveSync,
               syncs: list[tuple[Any, Any]]) -> bool:
    """Copy the batch into the running containers; False (the reason said) when it must rebuild instead."""
    app.say(f"── cycle {number}: {batch.describe()} changed (live update {', '.join(i.name for i, _ in syncs)})")
    try:
        live.sync_all(syncs)
    except KitError as exc:
        app.say(f"live update failed: {shell.mask(exc.message)}; rebuilding instead")
        app.timings.clear()
        return False
    took = "  ".join(f"{name} {brief(seconds)}" for name, seconds in app.timings.items())
    app.say(f"── cycle {number} ready: live update {took}  │ save→ready {brief(App.clock() - batch.first)}")
    return True


def first_cycle(app: App, runner: Cycles) -> bool:
    """`up` as cycle 0 of `inv dev`: changes saved meanwhile become one follow-up cycle."""
    app.say("── cycle 0: up")
    started = App.clock()
    built = None if shell.is_dry(app.c) else runner.build_phase(None)  # the watcher runs: a build is checked too
    with runner.session.inbox.cycle():
        if not attempt(app, runner.stopper, lambda: workflow.cycle(app, runner.sets, runner.timeout,
                                                                   prune=runner.prune, built=built)):
            app.say("── cycle 0 failed; still watching: the next change retries")
            runner.mute_noisy()
            return False
    app.say(f"── cycle 0 ready: {phase_line(app.timings)}  │ total {App.clock() - started:.1f}s")
    return True


def start_session(app: App, poll: bool, debounce_ms: int | None, max_delay_ms: int | None) -> Session:
    quiet = (debounce_ms or app.settings.debounce_ms) / 1000
    max_delay = (max_delay_ms or app.settings.max_delay_ms) / 1000
    session = Session(make_filter(app), quiet, max_delay, poll)
    took = session.start()
    for path in session.watcher.missing:
        app.warn(f"{path} does not exist: not watched (check app.watch.paths / app.images / app.manifests)")
    chosen = session.filter.watch_paths  # when given, each image's Dockerfile and .dockerignore are added to them
    if not session.watcher.watches or chosen and set(chosen) <= set(session.watcher.missing):
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

    def ask_to_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self.ask_to_stop()
        self.thread.join(timeout)


def stop_all(followers: list[Background]) -> None:
    """Tell every follower to stop, then wait for each: they wind down side by side."""
    for follower in followers:
        follower.ask_to_stop()
    for follower in followers:
        follower.stop()


def _print_line(line: str) -> None:
    print(shell.mask(line), flush=True)


def start_followers(app: App, logs: bool, forwards: bool, allow_context: bool) -> list[Background]:
    """Logs (`inv k8s.logs`) and port-forwards (`inv k8s.forward`) from devloop/observe.py, on threads."""

    def sibling() -> App:
        other = App(app.c, app.settings)
        if allow_context:
            other.allow_context()
        return other

    started: list[Background] = []
    if logs:
        s = app.settings
        started.append(Background("logs", sibling(), lambda a, stop: observe.follow_logs(
            a, s.selector, s.since, None, False, _print_line, stop_when=stop)).start())
    if forwards and app.settings.forwards:
        specs = [ports.parse_forward(spec) for spec in app.settings.forwards]
        started.append(Background("forwards", sibling(),
                                  lambda a, stop: observe.supervise_forwards(a, specs, stop_when=stop)).start())
    return started


# -- tasks ---------------------------------------------------------------------------------------

WATCH_HELP = {  # env, set, allow_context: devloop.flags.COMMON_HELP
    "poll": "poll the files instead of native events (VM shares, network file systems)",
    "timeout": "seconds each cycle waits for readiness (default app.timeout)",
    "debounce_ms": "quiet window before a cycle starts; a live update waits only 20 ms (default app.watch.debounce_ms)",
    "max_delay_ms": "start a cycle at the latest this long after the first change (default app.watch.max_delay_ms)",
    "cycles": "stop after this many cycles (default: run until Ctrl-C)",
    "no_prune": "keep objects the manifests no longer have (by default each cycle deletes them)",
}


def _loaded(c: Context, env: str | None, allow_context: bool) -> App:
    app = App.load(c, env, allow_context)
    app.context()  # the guard runs before anything is watched or built
    return app


def _check_last(last_ok: bool | None, cycles: int | None) -> None:
    if last_ok is False:
        raise KitError(f"the last of the {cycles} cycle(s) failed (see above)", code=1)


@kit_task(iterable=["set"], help=WATCH_HELP)
def watch(c: Context, env: str | None = None, set: list[str] | None = None, poll: bool = False,
          timeout: int | None = None, debounce_ms: int | None = None, max_delay_ms: int | None = None,
          cycles: int | None = None, no_prune: bool = False, allow_context: bool = False) -> None:
    """Sync or rebuild and redeploy on each change (Ctrl-C)."""
    sets = k8s.parse_sets(set)  # the numeric flags were checked by kit_task, before any command
    app = _loaded(c, env, allow_context)
    with children.stopping() as stopper, workflow.cycle_lock(app), rollout.kept_watches(app):
        session = start_session(app, poll, debounce_ms, max_delay_ms)
        live = livesync.LiveSync(app)
        runner = Cycles(app, sets, timeout, stopper, live, session, not no_prune)
        try:
            live.warm()
            last_ok = session.run(runner, cycles, stopper.check, runner.settled)
        finally:
            session.stop()
            live.close()
            runner.close(ending=True)
    _check_last(last_ok, cycles)


@kit_task(iterable=["set"], help=dict(WATCH_HELP, cleanup="on exit, delete what was applied (inv down)",
                                      no_logs="do not follow logs", no_forwards="do not run app.forwards"))
def dev(c: Context, env: str | None = None, set: list[str] | None = None, poll: bool = False,
        timeout: int | None = None, debounce_ms: int | None = None, max_delay_ms: int | None = None,
        cycles: int | None = None, cleanup: bool = False, no_logs: bool = False, no_forwards: bool = False,
        no_prune: bool = False, allow_context: bool = False) -> None:
    """Up, then logs + forwards, and redeploy on change."""
    sets = k8s.parse_sets(set)  # the numeric flags were checked by kit_task, before any command
    app = _loaded(c, env, allow_context)
    followers: list[Background] = []
    with children.stopping() as stopper, workflow.cycle_lock(app), rollout.kept_watches(app):
        session = start_session(app, poll, debounce_ms, max_delay_ms)
        live = livesync.LiveSync(app)
        runner = Cycles(app, sets, timeout, stopper, live, session, not no_prune)
        try:
            first_cycle(app, runner)
            live.warm()
            followers = start_followers(app, not no_logs, not no_forwards, allow_context)
            last_ok = session.run(runner, cycles, stopper.check, runner.settled)
        finally:
            session.stop()
            live.close()
            stop_all(followers)
            runner.close(ending=True)
            children.stop_descendants()
            if cleanup:
                stopper.restore()  # a second Ctrl-C now stops the cleanup itself
                app.say("cleanup: deleting what was applied (--cleanup)")
                k8s.delete_applied(app)
    _check_last(last_ok, cycles)


ROOT_TASKS: list[Any] = [watch, dev]
