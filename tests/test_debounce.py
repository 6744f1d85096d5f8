"""The debouncer and the loop guard, driven by a hand-moved clock: no sleeps."""

from __future__ import annotations

import pytest

from devloop.core.debounce import Batch, Debouncer, LoopGuard


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def debouncer(clock: Clock, quiet: float = 0.3, max_delay: float = 2.0, grace: float = 0.0) -> Debouncer:
    return Debouncer(quiet, max_delay, clock, grace)


def drive(d: Debouncer, clock: Clock, until: float, step: float = 0.01) -> list[Batch]:
    """Advance time in small steps, taking every batch that falls due (as the watch loop does)."""
    batches = []
    end = clock.now + until
    while clock.now < end:
        batch = d.take()
        if batch:
            batches.append(batch)
        clock.advance(step)
    return batches


def test_nothing_pending_means_nothing_due(clock: Clock) -> None:
    d = debouncer(clock)
    assert d.due_in() is None and d.take() is None


def test_a_burst_of_500_writes_is_one_batch(clock: Clock) -> None:
    d = debouncer(clock)
    for i in range(500):
        d.add(f"app/file{i % 250}.rb")
        clock.advance(0.0002)
    batches = drive(d, clock, 5.0)
    assert len(batches) == 1
    assert len(batches[0].paths) == 250 and batches[0].events == 500
    assert batches[0].paths[:2] == ("app/file0.rb", "app/file1.rb")  # first-seen order


@pytest.mark.parametrize(("after", "due"), [(0.0, False), (0.299, False), (0.3, True), (1.0, True)])
def test_a_batch_is_due_after_the_quiet_window(clock: Clock, after: float, due: bool) -> None:
    d = debouncer(clock)
    d.add("a")
    clock.advance(after)
    assert (d.take() is not None) is due


def test_each_event_restarts_the_quiet_window(clock: Clock) -> None:
    d = debouncer(clock)
    d.add("a")
    clock.advance(0.2)
    d.add("b")
    clock.advance(0.2)
    assert d.take() is None
    assert d.due_in() == pytest.approx(0.1)
    clock.advance(0.1)
    batch = d.take()
    assert batch is not None and batch.paths == ("a", "b")
    assert batch.first == pytest.approx(100.0) and batch.last == pytest.approx(100.2)


def test_a_change_that_never_stops_still_gets_a_cycle_at_the_max_delay(clock: Clock) -> None:
    d = debouncer(clock, quiet=0.3, max_delay=2.0)
    starts = []
    for step in range(70):  # a write every 0.1 s for 7 s: never quiet
        clock.now = 100.0 + step / 10
        d.add("log/development.log")
        if d.take():
            starts.append(round(clock.now - 100.0, 2))
    assert starts == [2.0, 4.1, 6.2]  # each batch's max delay counts from its own first event


def test_max_delay_is_never_shorter_than_the_quiet_window(clock: Clock) -> None:
    assert Debouncer(0.5, 0.1, clock).max_delay == 0.5


def test_nothing_is_due_while_a_cycle_runs(clock: Clock) -> None:
    d = debouncer(clock)
    d.cycle_started()
    d.add("a")
    clock.advance(10)
    assert d.busy and d.due_in() is None and d.take() is None


def test_changes_during_a_cycle_become_exactly_one_follow_up(clock: Clock) -> None:
    d = debouncer(clock)
    d.add("a")
    clock.advance(0.3)
    first = d.take()
    assert first is not None and first.paths == ("a",)
    d.cycle_started()
    for path in ("b", "c", "b", "d"):  # saved while the build runs
        clock.advance(1.0)
        d.add(path)
    clock.advance(1.0)
    d.cycle_finished()
    batches = drive(d, clock, 10.0)
    assert [b.paths for b in batches] == [("b", "c", "d")]


def test_the_follow_up_starts_at_once_when_the_changes_are_older_than_the_quiet_window(clock: Clock) -> None:
    d = debouncer(clock)
    d.cycle_started()
    d.add("a")
    clock.advance(5.0)
    d.cycle_finished()
    assert d.due_in() == 0.0


def test_the_follow_up_still_waits_for_quiet_when_changes_arrive_as_the_cycle_ends(clock: Clock) -> None:
    d = debouncer(clock)
    d.cycle_started()
    d.add("a")
    clock.advance(0.1)
    d.cycle_finished()
    assert d.due_in() == pytest.approx(0.2)


def test_max_delay_counts_from_the_end_of_the_cycle(clock: Clock) -> None:
    d = debouncer(clock, quiet=0.3, max_delay=2.0)
    d.cycle_started()
    d.add("a")  # the first change: 10 s before the cycle ends
    clock.advance(10.0)
    d.cycle_finished()
    d.add("b")  # a burst goes on after the cycle: wait for quiet, not for the stale first event
    assert d.due_in() == pytest.approx(0.3)


def test_a_save_settles_before_its_quiet_window_ends(clock: Clock) -> None:
    d = debouncer(clock, quiet=0.3)
    assert d.settled_in(0.05) is None  # nothing pending
    d.add("a")
    clock.advance(0.03)
    assert d.settled_in(0.05) == pytest.approx(0.02) and d.due_in() == pytest.approx(0.27)
    d.add("a")  # the editor's second event of the same save: settling starts over
    clock.advance(0.05)
    assert d.settled_in(0.05) == 0.0 and d.due_in() == pytest.approx(0.25) and d.take() is None


def test_a_hurried_batch_is_due_at_once_unless_an_event_came_since(clock: Clock) -> None:
    d = debouncer(clock, quiet=0.3)
    d.add("a")
    clock.advance(0.02)
    d.hurry(d.events)  # a live update: its cycle need not wait out the quiet window
    assert d.due_in() == 0.0
    d.add("b")  # saved again before it was taken: that save settles first, then the quiet window decides
    assert d.due_in() == pytest.approx(0.3)
    d.hurry(d.events)
    batch = d.take()
    assert batch is not None and batch.paths == ("a", "b")
    d.add("c")  # the next batch is not hurried by the last one
    assert d.due_in() == pytest.approx(0.3)


def test_nothing_is_hurried_while_a_cycle_runs(clock: Clock) -> None:
    d = debouncer(clock)
    d.add("a")
    d.hurry(d.events)
    d.cycle_started()
    assert d.due_in() is None and d.take() is None
    d.cycle_finished()
    assert d.due_in() == 0.0


def test_nothing_settles_while_a_cycle_runs_and_the_follow_up_settles_after_it(clock: Clock) -> None:
    d = debouncer(clock)
    d.cycle_started()
    d.add("a")
    clock.advance(5.0)
    assert d.settled_in(0.05) is None
    d.cycle_finished()
    assert d.settled_in(0.05) == pytest.approx(0.05)  # counted from the end of the cycle, not from the old save


def test_paths_changed_only_during_a_cycle_are_marked(clock: Clock) -> None:
    d = debouncer(clock)
    d.cycle_started()
    d.add("generated.txt")
    d.add("app/x.rb")
    clock.advance(1.0)
    d.cycle_finished()
    clock.advance(0.1)
    d.add("app/x.rb")  # saved again after the cycle: a person, not the cycle
    d.add("app/y.rb")
    clock.advance(0.3)
    batch = d.take()
    assert batch is not None
    assert batch.during == frozenset({"generated.txt"})


def test_grace_counts_late_reports_as_during_the_cycle(clock: Clock) -> None:
    d = debouncer(clock, grace=0.6)
    d.cycle_started()
    clock.advance(1.0)
    d.cycle_finished()
    clock.advance(0.5)
    d.add("late.txt")  # a polling observer saw it half a second late
    clock.advance(0.7)
    d.add("later.txt")
    clock.advance(0.3)
    batch = d.take()
    assert batch is not None and batch.during == frozenset({"late.txt"})


def test_describe_names_the_first_paths_and_counts_the_rest() -> None:
    batch = Batch(("a", "b", "c", "d", "e"), 0.0, 0.0, 5, frozenset())
    assert batch.describe() == "a, b, c and 2 more"
    assert Batch(("a",), 0.0, 0.0, 1, frozenset()).describe() == "a"


# -- the loop guard ------------------------------------------------------------------------------


def batch(paths: tuple[str, ...], during: tuple[str, ...] = ()) -> Batch:
    return Batch(paths, 0.0, 0.0, len(paths), frozenset(during))


def test_a_person_saving_is_never_a_loop() -> None:
    guard = LoopGuard(limit=2)
    for _ in range(10):
        assert guard.check(batch(("app/x.rb",))) is None


def test_the_same_self_written_paths_twice_in_a_row_stop_the_loop() -> None:
    guard = LoopGuard(limit=2)
    assert guard.check(batch(("app/x.rb",))) is None  # cycle 1: the user
    assert guard.check(batch(("public/packs/app.js",), ("public/packs/app.js",))) is None  # cycle 2: written by 1
    assert guard.check(batch(("public/packs/app.js",), ("public/packs/app.js",))) == ("public/packs/app.js",)


def test_a_save_between_cycles_resets_the_guard() -> None:
    guard = LoopGuard(limit=2)
    assert guard.check(batch(("gen.txt",), ("gen.txt",))) is None
    assert guard.check(batch(("gen.txt", "app/x.rb"), ("gen.txt",))) is None  # the user saved too
    assert guard.check(batch(("gen.txt",), ("gen.txt",))) is None
    assert guard.streak == 1


def test_different_self_written_paths_start_a_new_streak() -> None:
    guard = LoopGuard(limit=2)
    assert guard.check(batch(("a",), ("a",))) is None
    assert guard.check(batch(("b",), ("b",))) is None
    assert guard.check(batch(("b",), ("b",))) == ("b",)


def test_a_limit_of_one_stops_at_the_first_self_triggered_batch() -> None:
    assert LoopGuard(limit=1).check(batch(("a", "b"), ("a", "b"))) == ("a", "b")


def test_a_cycle_that_wrote_nothing_resets_the_loop_guard() -> None:
    """A live update writes nothing into the tree: the same file saved during two syncs in a row is the user's."""
    guard = LoopGuard()
    during = Batch(("app/www/index.html",), 0.0, 0.0, 1, frozenset({"app/www/index.html"}))
    assert guard.check(during) is None
    guard.reset()
    assert guard.check(during) is None  # without the reset this would be the second in a row: a loop
    assert guard.check(during) == ("app/www/index.html",)
