"""A watch cycle's build, on a thread of its own: started as soon as its save has settled (watcher.SETTLE) while
the debounce's quiet window still runs, so the build overlaps that wait instead of following it; or, when none
was started then, as the cycle begins.

It builds untagged (`docker build --iidfile`) and is tagged only if no file an image is built from changed after
the build started. Otherwise docker may have read a newer file than the one the tag's hash saw: that build is
set aside (left untagged, as any replaced build is). A change before the cycle took its batch is in that batch,
and the cycle builds again; a later one is in the next batch, and the cycle stops without deploying. A tag
always names its content.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from devloop.build import Planned, build_one, tag_built
from devloop.core import debounce
from devloop.kit import App


class Early:
    """The images' build for cycle ``number``, on a thread of its own, from the files as they were at ``started``
    (the watch session's clock). The loop's thread only waits for events meanwhile: the App is not shared.
    ``changed_since(moment)``: whether a file an image is built from changed after ``moment``."""

    def __init__(self, app: App, number: int, started: float, changed_since: Callable[[float], bool],
                 paths: tuple[str, ...] = ()) -> None:
        self.app, self.number, self.started, self.changed_since = app, number, started, changed_since
        self.paths = paths  # the changes it builds from, as they had settled
        self.planned: list[Planned] = []
        self.error: BaseException | None = None
        self.took = 0.0
        self.stale = False  # a file changed while it built: set aside untagged
        self._folder = tempfile.TemporaryDirectory(prefix="devloop-build-")
        self._thread = threading.Thread(target=self._run, name=f"build for cycle {number}", daemon=True)

    def start(self) -> Early:
        self._thread.start()
        return self

    def _iidfile(self, image: str) -> Path:
        return Path(self._folder.name) / f"{image}.iid"

    def _run(self) -> None:
        began = App.clock()
        try:
            self.app.forget("plan:")  # file contents changed: tags are computed again
            self.planned = [build_one(self.app, image, iidfile=self._iidfile(image.name))
                            for image in self.app.settings.images]
        except BaseException as exc:  # noqa: BLE001 - handed to the cycle, which raises it in its build phase
            self.error = exc
        self.took = App.clock() - began

    def answers(self, number: int, batch: debounce.Batch) -> bool:
        """Whether this is the build cycle ``number`` asks for: no change arrived after it started."""
        return number == self.number and batch.last <= self.started

    def result(self) -> list[Planned] | None:
        """Wait for the build and tag what it built; raise its error if it failed. None: a file changed while it
        built, so it is set aside untagged (``stale``)."""
        self._thread.join()
        try:
            if self.error is not None:
                raise self.error
            built = [planned for planned in self.planned if planned.built]
            if built and self.changed_since(self.started):
                self.stale = True
                return None
            for planned in built:
                tag_built(self.app, planned, self._iidfile(planned.image.name))
            return self.planned
        finally:
            self._folder.cleanup()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def discard(self) -> None:
        """Wait for the build and leave what it made untagged."""
        self._thread.join()
        self._folder.cleanup()
