"""The cycle lock: taken, refused with the holder's name, taken over when stale, nested, released; the
holder's liveness from real processes (psutil)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from devloop.core import lock
from devloop.core.errors import KitError


def holder(pid: int, command: str = "inv dev", since: float = 1_700_000_000.0, host: str = "",
           start: str = "") -> lock.Holder:
    return lock.Holder(pid, command, since, host or socket.gethostname(), start)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return lock.lock_file(tmp_path, "k8s-local", "kit-ns")


def test_the_lock_file_is_named_by_context_and_namespace(tmp_path: Path) -> None:
    assert lock.lock_file(tmp_path, "kind-dev", "").name == "lock-kind-dev--default.json"
    assert lock.lock_file(tmp_path, "arn:aws:eks:eu/x", "web").name == "lock-arn_aws_eks_eu_x--web.json"


def test_a_free_lock_is_taken_and_released(path: Path) -> None:
    me = holder(os.getpid())
    taken = lock.acquire(path, me)
    assert taken == lock.Taken(None, False)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release(path, me)
    assert not path.exists()


def test_a_live_holder_is_named(path: Path) -> None:
    lock.acquire(path, holder(12345, "inv dev --env dev", since=1_700_000_000.0))
    with pytest.raises(KitError) as raised:
        lock.acquire(path, holder(os.getpid(), "inv up"), alive=lambda h: True)
    message = raised.value.message
    assert "pid 12345 (inv dev --env dev), since 20" in message and "ago)" in message
    assert raised.value.code == 75 and "kill 12345" in raised.value.hint and str(path) in raised.value.hint


def test_a_dead_holder_is_taken_over(path: Path) -> None:
    lock.acquire(path, holder(12345))
    me = holder(os.getpid(), "inv up")
    taken = lock.acquire(path, me, alive=lambda h: False)
    assert taken.stale is not None and taken.stale.pid == 12345
    assert json.loads(path.read_text())["command"] == "inv up"


def test_the_same_process_may_take_it_again_and_keeps_it(path: Path) -> None:
    me = holder(os.getpid())
    with lock.hold(path, me):
        with lock.hold(path, me):
            pass
        assert path.exists()  # the inner block did not release the outer one
    assert not path.exists()


def test_release_leaves_someone_elses_lock_alone(path: Path) -> None:
    lock.acquire(path, holder(12345))
    lock.release(path, holder(os.getpid()))
    assert path.exists()


def test_a_corrupt_lock_file_is_replaced(path: Path) -> None:
    path.write_text("{not json")
    assert lock.acquire(path, holder(os.getpid())).stale is None


def test_hold_says_when_it_takes_over(path: Path) -> None:
    lock.acquire(path, holder(12345, "inv watch"))
    said: list[str] = []
    with lock.hold(path, holder(os.getpid()), said.append, alive=lambda h: False):
        pass
    assert said and said[0].startswith("lock: taking over a stale lock from pid 12345") and "that process is gone" in said[0]


def test_liveness_checks_pid_reuse_and_hosts() -> None:
    me = os.getpid()
    start = lock.process_start(me)
    assert start
    assert lock.holder_alive(holder(me, start=start))
    assert not lock.holder_alive(holder(me, start=f"{float(start) + 1:.2f}"))  # same pid, another process
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert not lock.holder_alive(holder(gone.pid))
    assert lock.process_start(gone.pid) == ""
    assert lock.holder_alive(holder(gone.pid, host="another-machine"))  # cannot tell: respected
    assert not lock.pid_alive(-1)  # a corrupt lock file


def test_a_child_that_exited_is_not_alive_even_before_it_is_reaped() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        start = lock.process_start(child.pid)
        assert lock.holder_alive(holder(child.pid, start=start))
        assert start == f"{psutil.Process(child.pid).create_time():.2f}"
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while lock.pid_alive(child.pid):  # a zombie until reaped below: it has exited all the same
            assert time.monotonic() < deadline, "the killed child still counts as alive"
            time.sleep(0.01)
        assert psutil.pid_exists(child.pid)  # not reaped yet
    finally:
        child.kill()
        child.wait()


def test_command_line_shows_the_program_name_only() -> None:
    assert lock.command_line(["/home/dev/app/.venv/bin/inv", "dev", "--env", "qa"]) == "inv dev --env qa"


def test_describe_says_how_long_ago() -> None:
    h = holder(7, "inv up", since=1000.0)
    assert h.describe(now=1000.0 + 30).endswith("(30s ago)")
    assert h.describe(now=1000.0 + 600).endswith("(10 min ago)")
    assert h.describe(now=1000.0 + 7300).endswith("(2 h 1 min ago)")
    assert "on build-box" in holder(7, host="build-box").describe()


def test_a_kit_folder_that_is_a_file_is_named_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / ".kit").write_text("not a folder\n")
    path = lock.lock_file(tmp_path / ".kit", "k8s-local", "kit-ns")
    with pytest.raises(KitError) as raised:
        lock.acquire(path, holder(os.getpid()))
    assert raised.value.message == f"cannot take the lock in {tmp_path / '.kit'}: Not a directory"
    assert "chmod u+rwx" in raised.value.hint and raised.value.code == 73


def test_a_kit_folder_that_cannot_be_written_is_named_with_the_fix(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(name: str, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(lock.os, "open", refused)  # root ignores permission bits: refuse the way a read-only folder does
    with pytest.raises(KitError) as raised:
        lock.acquire(path, holder(os.getpid()))
    assert raised.value.message == f"cannot take the lock in {path.parent}: Permission denied"
    assert str(path.parent) in raised.value.hint
