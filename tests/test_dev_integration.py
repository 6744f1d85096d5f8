"""`inv dev` on the real cluster: Ctrl-C (SIGINT) in the middle of a cycle stops every child — log
followers, port-forward, the build — leaves no process behind and exits 130; while it runs, a second
`inv up` on the same app and namespace is refused and names it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import inv, make_app
from watch_helpers import Running, alive, cluster_env, free_port, namespace, processes_mentioning, tree

from devloop.core import lock, ports

pytestmark = pytest.mark.integration


def wait_for_children(pid: int, words: list[str], timeout: float) -> dict[int, str]:
    """The process tree below ``pid`` once it has a process mentioning each word."""
    deadline = time.monotonic() + timeout
    while True:
        found = tree(pid)
        if all(any(word in cmd for cmd in found.values()) for word in words):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no child mentioning each of {words} after {timeout}s: {found}")
        time.sleep(0.05)


def test_ctrl_c_stops_every_child_and_exits_130(cluster: str, base_image: str, tmp_path: Path) -> None:
    app = make_app(tmp_path)
    port = free_port()
    config = app / "invoke.yaml"
    config.write_text(config.read_text().replace("deploy/hello-web 8080:8080", f"deploy/hello-web {port}:8080"))
    with namespace("kit-dev") as ns:
        env = cluster_env(base_image, ns)
        dev = Running(app, "dev", env=env)
        try:
            dev.wait_for(r"── cycle 0 ready", 240)
            before_edit = wait_for_children(dev.proc.pid, ["logs", "port-forward"], 60)

            # A second run against the same app and namespace is refused and names the holder.
            second = inv(app, "up", env=env, timeout=120)
            assert second.returncode == 75, second.stderr
            assert f"pid {dev.proc.pid} (inv dev), since " in second.stderr

            # Save a change, then interrupt the cycle it starts while the build runs.
            with (app / "app" / "worker.sh").open("a") as script:  # outside the sync rules: a rebuild
                script.write("# interrupted build\n")
            dev.wait_for(r"── cycle 1: app/worker.sh changed", 30)
            during = wait_for_children(dev.proc.pid, ["docker"], 30)
            children = {pid: lock.process_start(pid) for pid in {**before_edit, **during}}
            children = {pid: start for pid, start in children.items() if start}
            os.kill(dev.proc.pid, signal.SIGINT)
            code = dev.proc.wait(timeout=30)
        finally:
            dev.stop()

        assert code == 130, dev.text[-3000:]
        assert "interrupted" in dev.text
        left = {pid: cmd for pid, cmd in {**before_edit, **during}.items()
                if pid in children and alive(pid, children[pid])}
        assert left == {}, f"processes left after Ctrl-C: {left}"
        assert processes_mentioning(ns) == {}  # no kubectl logs / port-forward / get --watch for our namespace
        assert ports.port_free(port)
        assert not list((app / ".kit").glob("lock-*.json"))
