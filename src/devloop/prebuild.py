"""A watch cycle's build, started as soon as its save has settled (watcher.SETTLE) while the debounce's quiet
window still runs: the build overlaps that wait instead of following it.

It builds untagged (`docker build --iidfile`). The cycle tags the result only if no change arrived after the
build started. Otherwise docker may have read a newer file than the one the tag's hash saw: that build is set
aside (left untagged, as any replaced build is) and the cycle builds again. A tag always names its content.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from devloop.build import Planned, build_one, tag_built
from devloop.core import debounce
from devloop.kit import App


class Early:
    """The images' build for cycle ``number``, on a thread of its own, from the files as they were at ``started``
    (the watch session's clock). The loop's thread only waits for events meanwhile: the App is not shared."""

    def __init__(self, app: App, number: int, started: float) -> None:
        self.app, self.number, self.started = app, number, started
        self.planned: list[Planned] = []
        self.error: BaseException | None = None
        self.took = 0.0
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

    def result(self) -> list[Planned]:
        """Wait for the build and tag what it built; raise its error if it failed."""
        self._thread.join()
        try:
            if self.error is not None:
                raise self.error
            for planned in self.planned:
                if planned.built:
                    tag_built(self.app, planned, self._iidfile(planned.image.name))
            return self.planned
        finally:
            self._folder.cleanup()

    def discard(self) -> None:
        """Wait for the build and leave what it made untagged."""
        self._thread.join()
        self._folder.cleanup()
