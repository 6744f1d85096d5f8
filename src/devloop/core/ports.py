"""Local ports: parse forward specs, tell whether a port is free, and name the process holding it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

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


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """'pid 1234 (mysqld)' for the process listening on ``port``, when this user can see it."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = (pid_dir / "comm").read_text().strip()
                    return f"pid {pid_dir.name} ({name})"
        except OSError:
            continue
    return "a process of another user (try: sudo ss -ltnp)"


def taken_message(port: int, who: str | None, what: str) -> str:
    held = f" by {who}" if who else ""
    return f"local port {port} ({what}) is already in use{held}"


def stop_hint(who: str | None, port: int) -> str:
    if who and who.startswith("pid "):
        pid = who.split()[1]
        name = who.split("(", 1)[-1].rstrip(")")
        extra = " (a local MySQL: `sudo systemctl stop mysql` or `brew services stop mysql`)" if "mysql" in name else ""
        return f"stop it (kill {pid}){extra}, or map another local port"
    return f"free port {port} (see `ss -ltnp 'sport = :{port}'`), or map another local port"
