"""File events: watchdog's observer (inotify/FSEvents, or polling with ``--poll``), the handler that
classifies each event's paths, and the inbox that hands due batches to the watch loop."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from devloop.core import debounce, watchfilter

POLL_INTERVAL = 0.5  # seconds between two snapshots with --poll
# Seconds without a new event after which a save counts as written: an editor's events for one save
# (write, chmod, rename) come within a few ms (vim's: 0.3-7 ms here). A build may start then, before the
# debounce's quiet window ends. A save whose events span longer makes that build stale once they have settled:
# it is stopped and the next one starts then, as it would have with a longer settle.
SETTLE = 0.02
# Event kinds that change what a build or an apply would see. "opened"/"closed_no_write" are reads
# (docker build reads the whole context); "closed" repeats "modified".
CHANGE_KINDS = frozenset({"created", "modified", "deleted", "moved", "attrib"})


def _event_types() -> list[Any]:
    # Local for start-up time: `inv --list` imports this module, and watchdog takes tens of ms to load.
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


def _native_observer() -> Any:
    from watchdog.observers import Observer  # local for start-up time (see _event_types)

    return Observer()


def _polling_observer() -> Any:
    from watchdog.observers.polling import PollingObserver  # local for start-up time (see _event_types)

    return PollingObserver(timeout=POLL_INTERVAL)


class Inbox:
    """The observer thread adds changes; the main thread waits for a due batch. The debouncer
    decides when; this only adds the lock and the wake-ups."""

    def __init__(self, debouncer: debounce.Debouncer, wait: Callable[[threading.Condition, float], Any] | None = None,
                 lag: float = 0.0) -> None:
        self.debouncer = debouncer
        self.lag = lag  # how late the observer may report a change (polling: up to an interval)
        self._cond = threading.Condition()
        self._changes: dict[str, watchfilter.Change] = {}
        self._born: dict[str, str] = {}  # path -> its absolute path: created in this batch, maybe gone again
        self._inputs: dict[str, float] = {}  # path -> when it last changed, for files images are built from
        # How to wait for an event or a deadline (tests pass one that advances a fake clock instead).
        self._wait = wait or (lambda cond, seconds: cond.wait(seconds))

    def add(self, change: watchfilter.Change, created_at: str = "") -> None:
        """One change; ``created_at``: the absolute path, when the event created the file."""
        with self._cond:
            if created_at and change.path not in self._changes:
                self._born[change.path] = created_at
            self.debouncer.add(change.path)
            self._changes[change.path] = change
            if change.images:
                self._inputs[change.path] = self.debouncer.clock()
            self._cond.notify()

    def take(self) -> tuple[debounce.Batch, list[watchfilter.Change]] | None:
        """The due batch and its changes, or None (never blocks).

        A file created and gone again within the batch (an editor's or `sed -i`'s temporary file) changed
        nothing: it is left out, so nothing is synced, deleted or named for it."""
        with self._cond:
            batch = self.debouncer.take()
            if batch is None:
                return None
            born, self._born = self._born, {}
            # No build started before this batch's first change will ask about changes any more.
            self._inputs = {path: at for path, at in self._inputs.items() if at >= batch.first}
            changes = [self._changes.pop(p) for p in batch.paths]
            kept = self._kept(changes, born)
            if len(kept) < len(changes):
                paths = tuple(c.path for c in kept)
                batch = dataclasses.replace(batch, paths=paths, during=batch.during & frozenset(paths))
            return batch, kept

    @staticmethod
    def _kept(changes: list[watchfilter.Change], born: dict[str, str]) -> list[watchfilter.Change]:
        return [c for c in changes if c.path not in born or os.path.lexists(born[c.path])]

    def changed_since(self, start: float, end: float) -> tuple[str, ...]:
        """The files images are built from that changed after ``start``, once every change made before ``end``
        has surely been reported (``lag``; this inbox's clock)."""
        with self._cond:
            while (left := end + self.lag - self.debouncer.clock()) > 0:
                self._wait(self._cond, left)
            return self.changed_after(start)

    def stale(self, start: float, settle: float) -> bool:
        """A file images are built from changed after ``start``, and has been quiet for ``settle`` since."""
        with self._cond:
            latest = max((at for at in self._inputs.values() if at > start), default=None)
            return latest is not None and self.debouncer.clock() - latest >= settle

    def changed_after(self, start: float) -> tuple[str, ...]:
        """The files images are built from that changed after ``start``, as reported so far (no waiting)."""
        with self._cond:
            return tuple(path for path, at in self._inputs.items() if at > start)

    def now(self) -> float:
        return self.debouncer.clock()

    def settled(self, settle: float) -> tuple[list[watchfilter.Change], int] | None:
        """The pending changes once they have been quiet for ``settle`` while their batch is not yet due (an empty
        list when every one was a file created and gone again), with the count of their events; else None."""
        with self._cond:
            if self.debouncer.settled_in(settle) != 0.0 or not self.debouncer.due_in():
                return None
            return self._kept(list(self._changes.values()), self._born), self.debouncer.events

    def wait(self, check: Callable[[], None] = lambda: None, tick: float = 0.5,
             settled: Callable[[list[watchfilter.Change]], bool] | None = None,
             settle: float = SETTLE) -> tuple[debounce.Batch, list[watchfilter.Change]]:
        """Block until a batch is due. ``check`` runs at least every ``tick`` seconds (it may raise).

        ``settled`` is called with the pending changes each time they have been quiet for ``settle`` since a new
        event, while the batch is not yet due (the watch loop starts its build then, and again if saved again); when
        it returns True the batch is due at once, unless another event came meanwhile (a live update)."""
        handed = 0  # the pending batch's event count when ``settled`` was last called
        while True:
            early = self.settled(settle) if settled else None
            if settled is not None and early is not None and early[1] != handed:
                changes, handed = early
                # nothing is left to build from when every change came to nothing
                if changes and settled(changes):
                    with self._cond:
                        self.debouncer.hurry(handed)
            with self._cond:
                taken = self.take()
                if taken:
                    return taken
                due = self.debouncer.due_in()
                if settled and self.debouncer.events != handed:
                    settling = self.debouncer.settled_in(settle)
                    due = due if settling is None or due is None else min(due, settling)
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
        changes = [(c, p) for c, p in ((self.filter.classify(p), p) for p in paths) if c is not None]
        if not changes:
            self.ignored += 1
        for change, path in changes:
            self.inbox.add(change, created_at=path if kind == "created" else "")
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
        self._observer = _polling_observer() if self.poll else _native_observer()
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
            # watchdog logs a harmless race between its reader thread and stop() as an error.
            logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
            self._observer.stop()
            self._observer.join(timeout=2)

    def describe(self) -> str:
        kind = f"polling every {POLL_INTERVAL}s" if self.poll else "native file events"
        return f"{len(self.watches)} watch(es), {kind}"
