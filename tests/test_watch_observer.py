"""The real observers (native events and --poll) wired to the filter: a save arrives as one batch,
ignored writes never do, a folder created later is watched. Waits on the inbox, never sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devloop.core.watchfilter import WatchFilter
from devloop.watch import Session


def context(root: Path) -> WatchFilter:
    (root / "app").mkdir()
    (root / "app" / "main.rb").write_text("puts 1\n")
    (root / "node_modules" / "left-pad").mkdir(parents=True)
    (root / "k8s").mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / ".dockerignore").write_text("node_modules/\nk8s/\n")
    return WatchFilter(root, [("web", root, root / "Dockerfile")], [root / "k8s"])


def within(seconds: float) -> Callable[[], None]:
    deadline = time.monotonic() + seconds

    def check() -> None:
        assert time.monotonic() < deadline, f"no batch within {seconds}s"

    return check


@pytest.mark.parametrize("poll", [False, True], ids=["native", "poll"])
def test_a_save_arrives_as_one_batch_and_ignored_writes_never(tmp_path: Path, poll: bool) -> None:
    session = Session(context(tmp_path), 0.05, 1.0, poll)
    session.start()
    try:
        assert type(session.watcher._observer).__name__ == ("PollingObserver" if poll else "InotifyObserver")
        assert str(tmp_path / "node_modules") not in {w.path for w in session.watcher.watches}
        (tmp_path / "node_modules" / "left-pad" / "index.js").write_text("ignored")
        (tmp_path / "app" / "main.rb").write_text("puts 2\n")
        check = within(10)
        seen: set[str] = set()
        while "app/main.rb" not in seen:
            batch, plan = session.next(check)
            seen |= set(batch.paths)
            assert "node_modules/left-pad/index.js" not in batch.paths
            assert plan.images == {"web"}
        (tmp_path / "lib").mkdir()  # a new folder beside the ignored one: watched from now on
        (tmp_path / "k8s" / "web.yaml").write_text("kind: ConfigMap\n")
        batch, plan = session.next(check)
        while "k8s/web.yaml" not in batch.paths:
            batch, plan = session.next(check)
        assert plan.manifests
        # the root is watched flat (node_modules/ is left out): the new folder got a watch of its own
        assert str(tmp_path / "lib") in {w.path for w in session.watcher.watches}
        (tmp_path / "lib" / "util.rb").write_text("x")
        batch, _ = session.next(check)
        while "lib/util.rb" not in batch.paths:
            batch, _ = session.next(check)
    finally:
        session.stop()
