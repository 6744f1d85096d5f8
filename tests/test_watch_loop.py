"""The handler with synthetic watchdog events and the loop with a fake clock: no observer thread, no sleeps."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from devloop import watcher
from devloop.core.debounce import Batch
from devloop.core.errors import KitError
from devloop.core.watchfilter import Plan, Watch, WatchFilter
from devloop.watch import Session
from devloop.watcher import POLL_INTERVAL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wait(self, cond: threading.Condition, seconds: float) -> None:
        self.now += seconds  # instead of blocking: time passes


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def session(app: Path, clock: Clock, quiet: float = 0.3, max_delay: float = 2.0) -> Session:
    f = WatchFilter(app, [("hello", app, app / "Dockerfile")], [app / "k8s"])
    return Session(f, quiet, max_delay, clock=clock, wait=clock.wait)


def p(app: Path, rel: str) -> str:
    return str(app / rel)


def test_reads_and_folder_noise_are_not_changes(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    for event in (FileOpenedEvent(p(app, "app/web.sh")), FileClosedNoWriteEvent(p(app, "app/web.sh")),
                  FileClosedEvent(p(app, "app/web.sh")), DirModifiedEvent(p(app, "app"))):
        s.handler.dispatch(event)
    clock.now += 10
    assert s.inbox.take() is None
    assert s.handler.seen == 4 and s.handler.ignored == 4


def test_fifty_writes_to_ignored_paths_make_no_batch(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    ignored = ["README.md", ".git/index", ".kit/rendered-dev.yaml", "app/www/.index.html.swp", "invoke.yaml"]
    for i in range(50):
        s.handler.dispatch(FileModifiedEvent(p(app, ignored[i % len(ignored)])))
    clock.now += 10
    assert s.inbox.take() is None and s.handler.ignored == 50


def test_an_atomic_save_counts_the_target_of_the_rename(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    s.handler.dispatch(FileCreatedEvent(p(app, "app/www/.index.html.swp")))
    s.handler.dispatch(FileMovedEvent(p(app, "app/www/.index.html.swp"), p(app, "app/www/index.html")))
    clock.now += 0.3
    taken = s.inbox.take()
    assert taken is not None
    batch, changes = taken
    assert batch.paths == ("app/www/index.html",) and changes[0].images == {"hello"}


def test_sed_i_saves_name_the_file_and_not_its_temporary_copy(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    s.handler.dispatch(FileCreatedEvent(p(app, "app/www/sedq7Xw2")))  # sed -i: a temporary file, then a rename
    s.handler.dispatch(FileModifiedEvent(p(app, "app/www/sedq7Xw2")))
    s.handler.dispatch(FileMovedEvent(p(app, "app/www/sedq7Xw2"), p(app, "app/www/index.html")))
    clock.now += 0.3
    taken = s.inbox.take()
    assert taken is not None
    batch, changes = taken
    assert batch.paths == ("app/www/index.html",) and [c.path for c in changes] == ["app/www/index.html"]


def test_a_file_created_in_the_batch_that_still_exists_is_a_change(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    (app / "app" / "www" / "new.txt").write_text("new\n")
    s.handler.dispatch(FileCreatedEvent(p(app, "app/www/new.txt")))
    s.handler.dispatch(FileDeletedEvent(p(app, "app/www/version.txt")))  # gone, but it was there before the batch
    clock.now += 0.3
    taken = s.inbox.take()
    assert taken is not None and taken[0].paths == ("app/www/new.txt", "app/www/version.txt")


def test_a_move_out_of_the_context_counts_its_source(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    s.handler.dispatch(FileMovedEvent(p(app, "app/web.sh"), p(app, "web.sh.md")))
    s.handler.dispatch(FileDeletedEvent(p(app, "app/worker.sh")))
    clock.now += 0.3
    taken = s.inbox.take()
    assert taken is not None and taken[0].paths == ("app/web.sh", "app/worker.sh")


def test_a_new_folder_is_reported_to_the_watcher(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    seen: list[str] = []
    s.handler.new_folder = seen.append
    s.handler.dispatch(DirCreatedEvent(p(app, "app/lib")))
    assert seen == [p(app, "app/lib")]


def test_a_new_folder_inside_a_flat_watch_gets_its_own_watch(tmp_path: Path, clock: Clock) -> None:
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / ".dockerignore").write_text("node_modules/\n")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [])
    s = Session(f, 0.3, 2.0, clock=clock, wait=clock.wait)
    scheduled: list[Watch] = []
    s.watcher._schedule = scheduled.append  # type: ignore[method-assign,assignment]
    s.watcher._flat.add(str(tmp_path))
    (tmp_path / "lib").mkdir()
    s.handler.dispatch(DirCreatedEvent(str(tmp_path / "lib")))
    (tmp_path / "node_modules" / "y").mkdir()
    s.handler.dispatch(DirCreatedEvent(str(tmp_path / "node_modules")))
    assert scheduled == [Watch(str(tmp_path / "lib"), True)]


def run(s: Session, cycles: int, during: Any = None) -> list[tuple[Batch, Plan]]:
    """Run the loop for ``cycles``; ``during(n)`` runs inside cycle n (edits made while it builds)."""
    seen: list[tuple[Batch, Plan]] = []

    def cycle(number: int, batch: Batch, plan: Plan) -> None:
        seen.append((batch, plan))
        if during:
            during(number)

    s.run(cycle, cycles)
    return seen


def test_a_burst_is_one_cycle_and_a_manifest_change_skips_the_build(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    for i in range(500):
        s.handler.dispatch(FileModifiedEvent(p(app, f"app/www/f{i}.html")))
    seen = run(s, 1)
    assert len(seen) == 1 and len(seen[0][0].paths) == 500 and seen[0][1] == Plan(frozenset({"hello"}), False)
    s.handler.dispatch(FileModifiedEvent(p(app, "k8s/web-deploy.yaml")))
    seen = run(s, 2)
    assert seen[0][1] == Plan(frozenset(), True) and not seen[0][1].build


def test_changes_during_a_cycle_coalesce_into_exactly_one_follow_up(app: Path, clock: Clock) -> None:
    s = session(app, clock)

    def edit(number: int) -> None:
        if number == 1:  # three saves while cycle 1 builds
            for rel in ("app/web.sh", "app/worker.sh", "app/web.sh"):
                clock.now += 0.5
                s.handler.dispatch(FileModifiedEvent(p(app, rel)))

    s.handler.dispatch(FileModifiedEvent(p(app, "app/www/index.html")))
    seen = run(s, 2, edit)
    assert [b.paths for b, _ in seen] == [("app/www/index.html",), ("app/web.sh", "app/worker.sh")]
    assert s.inbox.take() is None and s.inbox.debouncer.pending == 0  # nothing left for a third cycle


def test_the_follow_up_waits_only_for_the_quiet_window(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    ends: list[float] = []

    def edit(number: int) -> None:
        if number == 1:
            s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
            clock.now += 5.0  # the rest of the cycle
            ends.append(clock.now)

    s.handler.dispatch(FileModifiedEvent(p(app, "app/www/index.html")))
    started: list[float] = []

    def cycle(number: int, batch: Batch, plan: Plan) -> None:
        started.append(clock.now)
        edit(number)

    s.run(cycle, 2)
    assert started[1] == pytest.approx(ends[0])  # the save is 5 s old: no extra wait


def test_a_cycle_that_rewrites_its_trigger_is_stopped_naming_the_path(app: Path, clock: Clock) -> None:
    s = session(app, clock)

    def build_writes_into_the_context(number: int) -> None:
        clock.now += 1.0
        s.handler.dispatch(FileModifiedEvent(p(app, "app/www/build-info.txt")))
        clock.now += 1.0

    s.handler.dispatch(FileModifiedEvent(p(app, "app/www/index.html")))
    with pytest.raises(KitError) as raised:
        run(s, 10, build_writes_into_the_context)
    assert s.cycles == 2  # the user's change, then one cycle that proves the loop
    assert "app/www/build-info.txt" in raised.value.message
    assert ".dockerignore" in raised.value.hint and "app.watch.ignore" in raised.value.hint


def test_saving_between_cycles_is_not_a_loop(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    for _ in range(5):
        clock.now += 2.0  # the person edits between cycles
        s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
        run(s, s.cycles + 1)
    assert s.cycles == 5


def test_the_check_runs_while_waiting(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    calls = []

    def check() -> None:
        calls.append(clock.now)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        s.run(lambda *a: None, None, check)
    assert len(calls) == 3


def test_a_settled_save_is_handed_on_once_before_its_batch_is_due(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    saved = clock.now
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    announced: list[tuple[int, tuple[str, ...], Plan, float]] = []
    started: list[tuple[float, Batch]] = []
    s.run(lambda number, batch, plan: started.append((clock.now, batch)), 1,
          settled=lambda number, changes, plan, now: announced.append((number, tuple(c.path for c in changes), plan, now)))
    assert [(n, paths, plan) for n, paths, plan, _ in announced] == [(1, ("app/web.sh",), Plan(frozenset({"hello"}), False))]
    assert announced[0][3] == pytest.approx(saved + watcher.SETTLE)  # settled: that long without an event
    assert started[0][0] == pytest.approx(saved + 0.3)  # the batch still waits for the whole quiet window
    assert started[0][1].last <= announced[0][3]  # nothing changed after it was handed on


def test_a_settled_save_answered_with_true_starts_its_cycle_at_once(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    saved = clock.now
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    started: list[tuple[float, Batch]] = []
    s.run(lambda number, batch, plan: started.append((clock.now, batch)), 1, settled=lambda *a: True)
    assert started[0][0] == pytest.approx(saved + watcher.SETTLE)  # not after the 0.3 s quiet window
    assert started[0][1].paths == ("app/web.sh",)


def test_a_save_after_a_live_update_settled_is_waited_for_before_the_cycle(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    announced: list[float] = []

    def settled(number: int, changes: Any, plan: Plan, now: float) -> bool:
        announced.append(now)
        if len(announced) == 1:  # another save lands before the loop takes the batch
            clock.now += 0.005
            s.handler.dispatch(FileModifiedEvent(p(app, "app/worker.sh")))
        return True

    started: list[tuple[float, Batch]] = []
    s.run(lambda number, batch, plan: started.append((clock.now, batch)), 1, settled=settled)
    assert len(announced) == 2  # the new save settled too before the cycle began
    assert started[0][0] == pytest.approx(announced[1]) and started[0][1].paths == ("app/web.sh", "app/worker.sh")


def test_a_save_after_settling_joins_the_batch_and_shows_in_its_last_event(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    announced: list[tuple[float, list[str]]] = []

    def settled(number: int, changes: Any, plan: Plan, now: float) -> None:
        announced.append((now, [c.path for c in changes]))
        if len(announced) == 1:
            clock.now += 0.1  # the early build runs; the user saves again meanwhile
            s.handler.dispatch(FileModifiedEvent(p(app, "app/worker.sh")))

    seen: list[Batch] = []
    s.run(lambda number, batch, plan: seen.append(batch), 1, settled=settled)
    # handed on again once the new save settled (the loop may restart its build), and not again after that
    assert [paths for _, paths in announced] == [["app/web.sh"], ["app/web.sh", "app/worker.sh"]]
    assert announced[1][0] == pytest.approx(announced[0][0] + 0.1 + watcher.SETTLE)
    assert seen[0].paths == ("app/web.sh", "app/worker.sh") and seen[0].last > announced[0][0]


def test_no_save_settles_before_a_quiet_window_shorter_than_the_settling_time(app: Path, clock: Clock) -> None:
    s = session(app, clock, quiet=0.02)
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    announced: list[int] = []
    s.run(lambda *a: None, 1, settled=lambda number, *a: announced.append(number))
    assert announced == []


def test_changes_that_came_to_nothing_are_waited_out_without_spinning(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    waits: list[float] = []

    def wait(cond: threading.Condition, seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) < 100, f"spinning: waited {waits[:5]}... seconds"
        clock.wait(cond, seconds)

    s.inbox._wait = wait
    s.handler.dispatch(FileCreatedEvent(p(app, "app/draft.sh")))  # an editor's temporary file, already gone
    s.handler.dispatch(FileModifiedEvent(p(app, "app/draft.sh")))
    announced: list[Any] = []
    batch, changes = s.inbox.wait(settled=announced.append)
    assert changes == [] and announced == []  # nothing to build from: no early build
    assert waits.count(0) <= 1 and len(waits) <= 4  # the quiet window is waited out, not polled


def test_only_a_change_to_what_an_image_is_built_from_counts_as_changed_since(app: Path, clock: Clock) -> None:
    s = session(app, clock)
    started = clock.now
    clock.now += 1
    s.handler.dispatch(FileModifiedEvent(p(app, "k8s/web-deploy.yaml")))
    assert s.inbox.changed_since(started, clock.now) == ()  # a manifest: no build reads it
    s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))
    assert s.inbox.changed_since(started, clock.now) == ("app/web.sh",)
    assert s.inbox.changed_since(clock.now, clock.now) == ()


def test_with_polling_a_change_reported_late_still_counts(app: Path, clock: Clock) -> None:
    s = Session(WatchFilter(app, [("hello", app, app / "Dockerfile")], [app / "k8s"]), 0.3, 2.0, poll=True,
                clock=clock, wait=clock.wait)
    started, ended = clock.now, clock.now + 1

    def wait(cond: threading.Condition, seconds: float) -> None:
        clock.wait(cond, seconds)
        if not s.inbox.debouncer.pending:  # the poller's next snapshot: a write made before the build ended
            s.handler.dispatch(FileModifiedEvent(p(app, "app/web.sh")))

    s.inbox._wait = wait
    clock.now = ended
    assert s.inbox.changed_since(started, ended) == ("app/web.sh",)
    assert clock.now >= ended + POLL_INTERVAL  # it waited for the poller before answering
