"""Turning a stream of file events into cycles: one batch per burst, one follow-up for changes made
during a cycle, and a guard that stops a loop whose cycles keep re-triggering themselves.

Nothing here sleeps or reads the clock directly: the clock is injected, so tests drive time by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Batch:
    """The changes one cycle answers."""

    paths: tuple[str, ...]  # in the order first seen, each once
    first: float  # clock time of the batch's first event (the save the user waits on longest)
    last: float
    events: int  # raw events folded into this batch
    during: frozenset[str]  # paths changed only while a cycle ran: candidates for a self-trigger

    def describe(self, limit: int = 3) -> str:
        return describe(self.paths, limit)


def describe(paths: tuple[str, ...], limit: int = 3) -> str:
    """The first ``limit`` paths, and how many more."""
    shown = ", ".join(paths[:limit])
    more = len(paths) - limit
    return shown + (f" and {more} more" if more > 0 else "")


class Debouncer:
    """Collects changed paths; a batch is due after ``quiet`` seconds without a new event, or at the
    latest ``max_delay`` seconds after the first one (a change that never stops still gets a cycle).

    While a cycle runs nothing is due: the changes made meanwhile wait and become exactly one batch
    when the cycle finishes. The maximum delay then counts from the end of that cycle.
    ``grace`` extends "during a cycle" a little past its end, for observers that report late (polling).
    """

    def __init__(self, quiet: float, max_delay: float, clock: Callable[[], float] = time.monotonic,
                 grace: float = 0.0) -> None:
        self.quiet = quiet
        self.max_delay = max(max_delay, quiet)
        self.clock = clock
        self.grace = grace
        self._pending: dict[str, bool] = {}  # path -> every event for it arrived during a cycle
        self._first = 0.0
        self._last = 0.0
        self._events = 0
        self._busy = False
        self._finished_at: float | None = None
        self._hurried: int | None = None  # the event count at which the pending batch was made due at once

    # -- events -----------------------------------------------------------------------------------

    def add(self, path: str) -> None:
        now = self.clock()
        during = self._busy or (self._finished_at is not None and now - self._finished_at <= self.grace)
        if not self._pending:
            self._first = now
        self._last = now
        self._events += 1
        self._pending[path] = self._pending.get(path, True) and during

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def events(self) -> int:
        """Events in the pending batch so far."""
        return self._events

    @property
    def busy(self) -> bool:
        return self._busy

    # -- when -------------------------------------------------------------------------------------

    def due_in(self) -> float | None:
        """Seconds until a batch is due (0 = now); None when nothing is pending or a cycle runs."""
        if not self._pending or self._busy:
            return None
        if self._hurried == self._events:
            return 0.0
        start = self._first if self._finished_at is None else max(self._first, self._finished_at)
        due = min(self._last + self.quiet, start + self.max_delay)
        return max(0.0, due - self.clock())

    def settled_in(self, settle: float) -> float | None:
        """Seconds until the pending changes have been quiet for ``settle`` (0 = now); None when nothing is
        pending or a cycle runs. A short ``settle`` marks a save as written: work that can be thrown away (a
        build) may start then, while the quiet window still runs."""
        if not self._pending or self._busy:
            return None
        start = self._last if self._finished_at is None else max(self._last, self._finished_at)
        return max(0.0, start + settle - self.clock())

    def hurry(self, events: int) -> None:
        """The pending batch is due now, if no event came since it had ``events`` (a later one must settle first):
        for a batch whose cycle is cheap and simply runs again for a later save (a live update)."""
        self._hurried = events

    def take(self) -> Batch | None:
        """The due batch (and forget it), or None when none is due yet."""
        if self.due_in() != 0.0:
            return None
        batch = Batch(tuple(self._pending), self._first, self._last, self._events,
                      frozenset(p for p, during in self._pending.items() if during))
        self._pending = {}
        self._events = 0
        self._hurried = None
        return batch

    # -- cycles -----------------------------------------------------------------------------------

    def cycle_started(self) -> None:
        self._busy = True

    def cycle_finished(self) -> None:
        self._busy = False
        self._finished_at = self.clock()


class LoopGuard:
    """Spots cycles that trigger themselves: a batch made only of paths written while the previous
    cycle ran, the same paths ``limit`` batches in a row. A build or render that writes into the
    watched tree does exactly that, forever (skaffold#5933); a person saving files does not keep it up.
    """

    def __init__(self, limit: int = 2) -> None:
        self.limit = limit
        self._streak = 0
        self._paths: frozenset[str] = frozenset()

    def check(self, batch: Batch) -> tuple[str, ...] | None:
        """Call before a cycle for ``batch``: the looping paths once the limit is reached, else None."""
        if not batch.paths or not all(p in batch.during for p in batch.paths):
            self._streak, self._paths = 0, frozenset()
            return None
        paths = frozenset(batch.paths)
        if paths == self._paths:
            self._streak += 1
        else:
            self._streak, self._paths = 1, paths
        return tuple(sorted(paths)) if self._streak >= self.limit else None

    def reset(self) -> None:
        """The cycle that just ran wrote nothing into the tree (a live update): what changed meanwhile was saved."""
        self._streak, self._paths = 0, frozenset()

    @property
    def streak(self) -> int:
        return self._streak
