"""A watch cycle's build, on a thread of its own: started as soon as its save has settled (watcher.SETTLE) while
the debounce's quiet window still runs, so the build overlaps that wait instead of following it; or, when none
was started then, as the cycle begins.

It builds untagged (`docker build --iidfile`) and is tagged only if no file an image is built from changed after
the build started: docker may have read a newer file than the one the tag's hash saw. Such a build is set aside
(left untagged, as any replaced build is) and the cycle builds again. A tag names the content it was computed
from, as far as the watcher sees (it ignores some paths: devloop/core/watchfilter.py).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Protocol

from devloop.build import Planned, build_one, plan, tag_built
from devloop.kit import App


class Reports(Protocol):
    """What the watcher reports (devloop/watcher.py Inbox), on the watch session's clock."""

    def now(self) -> float: ...

    def changed_since(self, start: float, end: float) -> tuple[str, ...]: ...


class Build:
    """The images' build, from the files as they were at ``started`` (the watch session's clock).

    Its thread reads and fills ``app``'s facts (tags, image IDs) until ``result``; meanwhile the loop's thread
    only waits, decides and says lines. ``cancel`` stops it before it starts a build (the watch is ending)."""

    def __init__(self, app: App, reports: Reports, started: float) -> None:
        self.app, self.reports, self.started = app, reports, started
        self.planned: list[Planned] = []
        self.error: BaseException | None = None
        self.ended = started
        self.changed: tuple[str, ...] = ()  # files that changed while it built: set aside untagged
        self._folder = tempfile.TemporaryDirectory(prefix="devloop-build-")
        self._thread = threading.Thread(target=self._run, name="devloop build", daemon=True)
        self._cancelled = threading.Event()

    def start(self) -> Build:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _iidfile(self, image: str) -> Path:
        return Path(self._folder.name) / f"{image}.iid"

    def _run(self) -> None:
        try:
            self.app.forget("plan:")  # file contents changed: tags are computed again
            for image in self.app.settings.images:
                plan(self.app, image)  # the slow part with a big context: hashing it
            if not self._cancelled.is_set():
                self.planned = [build_one(self.app, image, iidfile=self._iidfile(image.name))
                                for image in self.app.settings.images]
        except BaseException as exc:  # noqa: BLE001 - handed to the cycle, which raises it in its build phase
            self.error = exc
        self.ended = self.reports.now()

    def result(self) -> list[Planned] | None:
        """Wait for the build and tag what it built; raise its error if it failed. None: a file changed while it
        built (``changed``), so it is set aside untagged (a failed one too: the change may be the fix)."""
        self._thread.join()
        try:
            built = [planned for planned in self.planned if planned.built]
            self.changed = self.reports.changed_since(self.started, self.ended) if built or self.error else ()
            if self.changed:
                return None
            if self.error is not None:
                raise self.error
            for planned in built:
                tag_built(self.app, planned, self._iidfile(planned.image.name))
            return self.planned
        finally:
            self._folder.cleanup()

    def cancel(self) -> None:
        """Start no build from now on (one already running goes on until its process is stopped)."""
        self._cancelled.set()

    def discard(self) -> None:
        """Wait for it, and leave what it made untagged."""
        self._thread.join()
        self._folder.cleanup()
