"""The cycle lock: one `inv up` / `inv watch` / `inv dev` at a time per app, kube context and namespace.

The lock is a small JSON file in the app's ``.kit/`` naming its holder (pid, command, since when).
A holder that is gone (dead pid, or a pid reused by another process) leaves a stale lock, which the
next run takes over. Checking and taking happen under a short ``flock`` so two runs starting at the
same moment cannot both win. Also here: the process facts this needs, from psutil (Linux and macOS alike).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .errors import KitError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no guard, the JSON file alone
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: float  # seconds since the epoch
    host: str
    start: str = ""  # when the process started (process_start), against pid reuse

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.command}), since {when} ({_ago(now - self.since)})"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


def lock_file(state_dir: Path, context: str, namespace: str) -> Path:
    """One lock per kube context and namespace, in the app's .kit/ folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{context}--{namespace or 'default'}")
    return state_dir / f"lock-{slug}.json"


def command_line(argv: list[str] | None = None) -> str:
    argv = sys.argv if argv is None else argv
    return " ".join([os.path.basename(argv[0]), *argv[1:]]) if argv else "?"


def me(command: str | None = None) -> Holder:
    pid = os.getpid()
    return Holder(pid, command or command_line(), time.time(), socket.gethostname(), process_start(pid))


# -- processes ---------------------------------------------------------------------------------


def process_start(pid: int) -> str:
    """When the process started (seconds since the epoch, as text), or "" when that cannot be told."""
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except (psutil.Error, ValueError):  # gone, hidden, or not a pid at all
        return ""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # not a process (a corrupt lock file)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie has exited
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else


def holder_alive(holder: Holder) -> bool:
    if holder.host != socket.gethostname():
        return True  # another machine sharing the folder: cannot tell, so respect it
    if not pid_alive(holder.pid):
        return False
    return not (holder.start and process_start(holder.pid) not in ("", holder.start))


# -- the lock ----------------------------------------------------------------------------------


def parse(text: str) -> Holder | None:
    try:
        data = json.loads(text)
        return Holder(int(data["pid"]), str(data.get("command", "?")), float(data.get("since", 0)),
                      str(data.get("host", "")), str(data.get("start", "")))
    except (ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def _guard(path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(str(path) + ".guard", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


@dataclass(frozen=True)
class Taken:
    stale: Holder | None  # the dead holder this run took the lock over from
    again: bool  # this process already held it (nested: leave it held on the way out)


def unwritable(folder: Path, exc: OSError) -> KitError:
    """The kit's folder refuses the lock (read-only, not a folder, not ours): name it and the fix."""
    return KitError(
        f"cannot take the lock in {folder}: {exc.strerror or exc}",
        hint=f"make {folder} a folder you can write (chmod u+rwx {folder}); if it is a file or on a read-only "
             "mount, move it out of the way: the kit makes it again",
        code=73,  # EX_CANTCREAT
    )


def acquire(path: Path, holder: Holder, alive: Callable[[Holder], bool] = holder_alive) -> Taken:
    """Take the lock for ``holder``.

    Raises KitError naming the current holder when another live process has it, or naming the folder
    when the lock cannot be written there. Taking it again from the process that holds it is fine
    (``inv dev`` running its own cycles).
    """
    try:
        return _take(path, holder, alive)
    except OSError as exc:
        raise unwritable(path.parent, exc) from None


def _take(path: Path, holder: Holder, alive: Callable[[Holder], bool]) -> Taken:
    with _guard(path):
        try:
            current = parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            current = None
        if current and current.pid != holder.pid and alive(current):
            raise KitError(
                f"another kit run is deploying this app to the same cluster and namespace: {current.describe()}",
                hint=f"wait for it or stop it (Ctrl-C in its terminal, or kill {current.pid}); "
                     f"if that process is not the kit, remove {path}",
                code=75,  # EX_TEMPFAIL: try again later
            )
        if current and current.pid == holder.pid:
            return Taken(None, True)
        tmp = path.with_name(path.name + f".{holder.pid}.tmp")
        tmp.write_text(json.dumps(asdict(holder)) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return Taken(current, False)


def release(path: Path, holder: Holder) -> None:
    """Remove the lock if ``holder`` still has it."""
    with _guard(path):
        try:
            current = parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        if current is None or current.pid == holder.pid:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@contextlib.contextmanager
def hold(path: Path, holder: Holder, say: Callable[[str], None] | None = None,
         alive: Callable[[Holder], bool] = holder_alive) -> Iterator[Holder]:
    """Hold the lock for a block; say so when a stale lock is taken over."""
    taken = acquire(path, holder, alive)
    if taken.stale and say:
        say(f"lock: taking over a stale lock from {taken.stale.describe()}: that process is gone")
    try:
        yield holder
    finally:
        if not taken.again:
            release(path, holder)
