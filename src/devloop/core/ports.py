"""Local ports: parse forward specs, tell whether a port is free, and name the process holding it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import psutil

from .errors import KitError


@dataclass(frozen=True)
class Forward:
    target: str  # deploy/web, svc/mysql, pod/x
    ports: tuple[tuple[int, int], ...]  # (local, remote)

    def __str__(self) -> str:
        return f"{self.target} " + " ".join(f"{a}:{b}" for a, b in self.ports)


def parse_forward(spec: str) -> Forward:
    """``"deploy/mysql 3306"`` or ``"deploy/web 3000:8080 9000"``."""
    parts = spec.split()
    if len(parts) < 2 or "/" not in parts[0]:
        raise KitError(f"port forward {spec!r} is not 'KIND/NAME LOCAL[:REMOTE] ...'",
                       hint="write e.g. 'deploy/mysql 3306' or 'svc/web 3000:80' in app.forwards", code=2)
    pairs = []
    for item in parts[1:]:
        local, _, remote = item.partition(":")
        try:
            pair = (int(local), int(remote or local))
        except ValueError:
            raise KitError(f"port forward {spec!r}: {item!r} is not a port or LOCAL:REMOTE pair",
                           hint="ports are numbers 1-65535", code=2) from None
        if not all(0 < p < 65536 for p in pair):
            raise KitError(f"port forward {spec!r}: {item!r} is outside 1-65535", hint="use a valid port", code=2)
        pairs.append(pair)
    return Forward(parts[0], tuple(pairs))


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def holder(port: int) -> str | None:
    """'pid 1234 (mysqld)' for the process listening on ``port``; None when none can be seen listening."""
    try:
        listening = [c for c in psutil.net_connections(kind="inet") if _listens_on(c, port)]
    except psutil.AccessDenied:  # macOS: the system-wide table needs root; ask each process we may see
        return _holder_among_visible_processes(port)
    pids = [c.pid for c in listening if c.pid]
    if not pids:
        return f"a process of another user (try: sudo lsof -nP -iTCP:{port} -sTCP:LISTEN)" if listening else None
    return _named(pids[0])


def _listens_on(conn: Any, port: int) -> bool:
    return bool(conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port)


def _holder_among_visible_processes(port: int) -> str | None:
    for proc in psutil.process_iter():
        try:
            if any(_listens_on(c, port) for c in proc.net_connections(kind="inet")):
                return _named(proc.pid)
        except psutil.Error:  # another user's process, or gone
            continue
    return None  # not ours: cannot tell whose


def _named(pid: int) -> str:
    try:
        return f"pid {pid} ({psutil.Process(pid).name()})"
    except psutil.Error:
        return f"pid {pid} (?)"


def taken_message(port: int, who: str | None, what: str) -> str:
    held = f" by {who}" if who else ""
    return f"local port {port} ({what}) is already in use{held}"


def stop_hint(who: str | None, port: int) -> str:
    if who and who.startswith("pid "):
        pid = who.split()[1]
        name = who.split("(", 1)[-1].rstrip(")")
        extra = " (a local MySQL: `sudo systemctl stop mysql` or `brew services stop mysql`)" if "mysql" in name else ""
        return f"stop it (kill {pid}){extra}, or map another local port"
    return f"free port {port} (see `lsof -nP -iTCP:{port} -sTCP:LISTEN`), or map another local port"
