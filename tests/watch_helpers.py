"""Shared by the watch/dev integration tests and bench/watch_bench.py: a running `inv` whose output is
read as it comes, its process tree, and a namespace of our own on the real cluster."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from conftest import INV, inv

from devloop.core import lock


class Running:
    """`inv ARGS` started in an app folder; stdout and stderr collected line by line as they arrive."""

    def __init__(self, app: Path, *args: str, env: dict[str, str]) -> None:
        full_env = dict(os.environ, **env)
        full_env["PATH"] = f"{Path(INV).parent}{os.pathsep}{full_env.get('PATH', '')}"
        full_env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen([INV, *args], cwd=app, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self.proc.stdout, self.proc.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> tuple[int, float, str]:
        """The first line (from index ``start``) matching ``pattern``: (index, arrival time, line)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index in range(start, len(self.lines)):
                    at, line = self.lines[index]
                    if regex.search(line):
                        return index, at, line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n{self.text[-4000:]}")
                self._cond.wait(min(left, 0.2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def watch_after_up(app: Path, env: dict[str, str], *args: str) -> Running:
    """`inv up`, then `inv watch ARGS` running and watching."""
    first = inv(app, "up", env=env)
    assert first.returncode == 0, first.stderr
    watcher = Running(app, "watch", *args, env=env)
    try:
        watcher.wait_for(r"^watching ", 60)
    except BaseException:
        watcher.stop()
        raise
    return watcher


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process, its reaped children and its live descendants."""
    def used(times: Any) -> float:
        return float(times.user + times.system + times.children_user + times.children_system)

    root = psutil.Process(pid)
    total = used(root.cpu_times())
    for child in root.children(recursive=True):
        try:
            total += used(child.cpu_times())
        except psutil.NoSuchProcess:
            pass  # ended between the listing and the reading: its CPU is in its parent's children times
    return total


def tree(pid: int) -> dict[int, str]:
    """pid -> command line of every process below ``pid``."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return {}
    found = {}
    for child in below:
        try:
            found[child.pid] = " ".join(child.cmdline())
        except psutil.Error:
            continue
    return found


def alive(pid: int, start: str) -> bool:
    return lock.pid_alive(pid) and lock.process_start(pid) == start


def processes_mentioning(word: str) -> dict[int, str]:
    """Live (non-zombie) processes whose command line contains ``word``."""
    found = {}
    for proc in psutil.process_iter():
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if proc.pid != os.getpid() and word in cmdline and lock.pid_alive(proc.pid):
            found[proc.pid] = cmdline
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def namespace(prefix: str) -> Iterator[str]:
    """A namespace of our own on the real cluster, deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["kubectl", "create", "namespace", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["kubectl", "delete", "namespace", name, "--wait=false"], capture_output=True)


def cluster_env(base_image: str, ns: str) -> dict[str, str]:
    return {"BASE_IMAGE": base_image, "INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1",
            "INVOKE_APP_NAMESPACE": ns}


def compile_kit() -> None:
    """Byte-compile the kit's modules, as `pip install` of the package does (benches only).

    The checkout's editable install under PYTHONDONTWRITEBYTECODE=1 (this machine sets it) compiles every kit module
    again at each `inv` start, about 0.06 s of CPU that a user's installed kit does not spend."""
    import devloop

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(devloop.__file__).parent)], check=True)
