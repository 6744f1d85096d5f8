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

from devloop import children
from devloop.build import Planned, build_one, plan, read_iid, remember, tag_built
from devloop.kit import App


class Reports(Protocol):
    """What the watcher reports (devloop/watcher.py Inbox), on the watch session's clock."""

    def now(self) -> float: ...

    def changed_since(self, start: float, end: float) -> tuple[str, ...]: ...

    def stale(self, start: float, settle: float) -> bool: ...


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
        self.stopped = False  # stopped before it ended (``stop``): what it made is of no use
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
                if not self._cancelled.is_set():
                    plan(self.app, image)  # the slow part with a big context: hashing it
            for image in self.app.settings.images:
                if self._cancelled.is_set():
                    break
                self.planned.append(build_one(self.app, image, iidfile=self._iidfile(image.name)))
        except BaseException as exc:  # noqa: BLE001 - handed to the cycle, which raises it in its build phase
            self.error = exc
        self.ended = self.reports.now()

    def result(self) -> list[Planned] | None:
        """Wait for the build and tag what it built; raise its error if it failed. None: a file changed while it
        built (``changed``), so it is set aside untagged (a failed one too: the change may be the fix)."""
        self._thread.join()
        try:
            built = [planned for planned in self.planned if planned.built]
            looked = built or self.error or self.stopped
            self.changed = self.reports.changed_since(self.started, self.ended) if looked else ()
            if self.changed:
                return None
            if self.error is not None:
                raise self.error
            for planned in built:
                tag_built(self.app, planned, self._iidfile(planned.image.name))
                self._iidfile(planned.image.name).unlink()  # tagged (and noted): not set aside
            return self.planned
        finally:
            self._note_set_aside()  # what it built and no one tagged: set aside, or left by a failed image
            self._folder.cleanup()

    def wait(self, timeout: float) -> bool:
        """Whether it has ended, waiting at most ``timeout`` seconds."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stale(self, settle: float) -> bool:
        """A file it is built from changed after it started, and that save has settled: its result is of no use."""
        return self.reports.stale(self.started, settle)

    def cancel(self) -> None:
        """Start no build from now on (one already running goes on until its process is stopped)."""
        self._cancelled.set()

    def stop(self) -> None:
        """Start no build, stop the one running (its `docker build` is found by its own --iidfile folder), and wait
        for the thread."""
        self.cancel()
        self.stopped = True
        while not self.wait(0.1):
            children.stop_running(self._folder.name)

    def discard(self) -> None:
        """Stop it, and leave what it made untagged."""
        self.stop()
        self._note_set_aside()
        self._folder.cleanup()

    def _note_set_aside(self) -> None:
        """Note the images it built but no one tags: image.prune removes them."""
        for image in self.app.settings.images:
            remember(self.app, read_iid(self._iidfile(image.name)))
