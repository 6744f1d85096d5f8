"""The cycle lock: one `inv up` / `inv watch` / `inv dev` at a time per app, kube context and namespace.

The lock is a small JSON file in the app's ``.kit/`` naming its holder (pid, command, since when).
A holder that is gone (dead pid, or a pid reused by another process) leaves a stale lock, which the
next run takes over. Checking and taking happen under a short ``flock`` so two runs starting at the
same moment cannot both win. Also here: the process facts this needs, read from ``/proc``.
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

from .errors import KitError


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    since: float  # seconds since the epoch
    host: str
    start: str = ""  # the process's start time in clock ticks (/proc/<pid>/stat), against pid reuse

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


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")".
    return text[text.rfind(")") + 2:].split()


def process_start(pid: int) -> str:
    """The process's start time (clock ticks since boot), or "" where /proc is not available."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    fields = _stat_fields(pid)
    return not (fields and fields[0] == "Z")  # a zombie has exited


def holder_alive(holder: Holder) -> bool:
    if holder.host != socket.gethostname():
        return True  # another machine sharing the folder: cannot tell, so respect it
    if not pid_alive(holder.pid):
        return False
    return not (holder.start and process_start(holder.pid) not in ("", holder.start))


def process_table() -> dict[int, int]:
    """pid -> parent pid for every process (empty where /proc is not available)."""
    table: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields and len(fields) > 1:
                table[int(name)] = int(fields[1])
    return table


def descendants(pid: int, table: dict[int, int]) -> list[int]:
    """Every process below ``pid`` (children first, then theirs)."""
    children: dict[int, list[int]] = {}
    for child, parent in table.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        if current in found or current == pid:
            continue
        found.append(current)
        queue += children.get(current, [])
    return found


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
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no guard, the JSON file alone
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


def acquire(path: Path, holder: Holder, alive: Callable[[Holder], bool] = holder_alive) -> Taken:
    """Take the lock for ``holder``.

    Raises KitError naming the current holder when another live process has it. Taking it again
    from the process that holds it is fine (``inv dev`` running its own cycles).
    """
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
