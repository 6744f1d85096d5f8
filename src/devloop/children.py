"""The child processes of a long-running task (`inv watch`, `inv dev`): stop them all on Ctrl-C,
SIGTERM or SIGHUP. The process tree comes from psutil, so Linux and macOS take the same path."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from devloop import shell
from devloop.core.errors import KitError

if TYPE_CHECKING:
    import psutil

STOP_GRACE = 3.0  # seconds children get to exit on SIGTERM before SIGKILL


class Stopper:
    """Ctrl-C, SIGTERM and SIGHUP for a long-running task: stop the in-flight command at once, then
    let the task unwind through its ``finally`` blocks (which stop the rest)."""

    SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        shell.STOPPING.clear()
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        shell.STOPPING.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        again = self.signal is not None
        self.signal = signum
        shell.STOPPING.set()  # the funnel starts no new command from now on
        # invoke's runner only forwards ^C to a command's stdin and keeps waiting: end the commands of
        # our own process group (builds, kubectl) now. Followers in their own sessions stop later.
        send(foreground_children(), signal.SIGKILL if again else signal.SIGTERM)
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt

    def exit_error(self) -> KitError | None:
        """How to end after a signal other than SIGINT (Ctrl-C gives 130 through kit_task)."""
        if self.signal in (None, signal.SIGINT):
            return None
        name = signal.Signals(self.signal).name
        return KitError(f"stopped by {name}; every child process was stopped", code=128 + int(self.signal))


@contextlib.contextmanager
def stopping() -> Iterator[Stopper]:
    """A Stopper for the block; when a signal ends it, stop every child and exit as the signal asks."""
    stopper = Stopper()
    stopper.install()
    try:
        yield stopper
    except KeyboardInterrupt:
        stop_descendants()
        raise stopper.exit_error() or KeyboardInterrupt from None
    finally:
        stopper.restore()


def descendants() -> list[psutil.Process]:
    """Every process below this one (children, theirs, ...)."""
    # Local for start-up time: `inv --list` imports this module, and psutil takes ~20 ms to load.
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def foreground_children() -> list[psutil.Process]:
    """Descendants in our own process group: what `app.run` is running right now."""
    try:
        group = os.getpgid(0)
    except OSError:
        return []
    found = []
    for proc in descendants():
        with contextlib.suppress(OSError):
            if os.getpgid(proc.pid) == group:
                found.append(proc)
    return found


def send(procs: list[psutil.Process], sig: int = signal.SIGTERM) -> None:
    """Signal each process still running (psutil checks its pid was not reused meanwhile)."""
    import psutil  # local for start-up time, as in descendants() (loaded by now)

    for proc in procs:
        with contextlib.suppress(psutil.Error):  # gone, or not ours to signal
            proc.send_signal(sig)


def stop_descendants(grace: float | None = None) -> list[int]:
    """Stop every process this one started (SIGTERM, SIGKILL after ``grace``, default STOP_GRACE); reap our
    own children."""
    grace = STOP_GRACE if grace is None else grace
    procs = descendants()
    if not procs:
        return []
    send(procs)
    left = _wait_gone(procs, grace)
    if left:
        send(left, signal.SIGKILL)
        _wait_gone(left, 1.0)
    return [proc.pid for proc in procs]


def stop_running(marker: str, grace: float | None = None) -> list[int]:
    """Stop the descendants whose command line holds ``marker`` (a path only one command was given), as
    ``stop_descendants`` stops them all; the rest run on."""
    import psutil  # local for start-up time, as in descendants()

    def holds(proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return any(marker in arg for arg in proc.cmdline())
        return False

    procs = [proc for proc in descendants() if holds(proc)]
    if procs:  # not reaped here: the command's runner waits for its exit status
        send(procs)
        left = _wait_gone(procs, STOP_GRACE if grace is None else grace, reap=False)
        if left:
            send(left, signal.SIGKILL)
            _wait_gone(left, 1.0, reap=False)
    return [proc.pid for proc in procs]


def _wait_gone(procs: list[psutil.Process], seconds: float, reap: bool = True) -> list[psutil.Process]:
    """Wait until every process has exited (a zombie has; ``reap``: collect our own children's exit status);
    the ones still running at the deadline."""
    me = os.getpid()
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for proc in procs:
            if reap:
                _reap(proc, me)
            if _running(proc):
                left.append(proc)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _reap(proc: psutil.Process, me: int) -> None:
    """Collect the exit status of a child of ours that has ended: no zombie left behind."""
    import psutil  # local for start-up time, as in descendants() (loaded by now)

    with contextlib.suppress(psutil.Error, OSError):
        if proc.ppid() == me:
            os.waitpid(proc.pid, os.WNOHANG)


def _running(proc: psutil.Process) -> bool:
    import psutil  # local for start-up time, as in descendants() (loaded by now)

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else
