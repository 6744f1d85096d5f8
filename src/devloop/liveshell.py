"""A shell kept open in each container that live update syncs into.

A sync written to a ``kubectl exec -i POD -c CONTAINER -- sh`` that is already open takes a few tens of
milliseconds; a new ``kubectl exec`` per container and sync costs a Go program's start, an API request and a
container exec each time (0.2 s for one container on an idle machine, 0.5 s for three at once, bench/live_bench.py).
A shell that ended (its pod was replaced, its container restarted) answers None: the caller syncs with a one-shot
exec instead and opens a new shell for the next time.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from invoke.context import Context

from devloop import shell
from devloop.core.liveupdate import NO_BASE64, Target

Answer = tuple[int, str]  # the request's exit code and its output (stderr included)
MARK = "devloop-sync-done"
AT_MOST = 10  # shells kept open per image: each is a kubectl process (about 50 MB)


class Shell:
    """One open ``sh`` in a container; ``ask`` runs a request in it and returns the answer."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.mark = f"{MARK}-{os.urandom(8).hex()}"  # the answer's end: no output of the app can forge it
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="live-update shell").start()

    def _read(self) -> None:
        for line in self.proc.stdout or []:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, request: str, timeout: float) -> Answer | None:
        """Run ``request`` (from ``liveupdate.shell_request``); None when the shell ended before it answered."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(f'{request}echo "{self.mark} $?"\n')
            self.proc.stdin.flush()
        except (OSError, ValueError):  # it ended: a broken pipe, or closed
            return None
        said: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.close()
                return 124, f"no answer within {timeout:.0f}s"
            if line is None:
                return None
            if line.startswith(self.mark):
                return int(line.split()[-1]), "".join(said)
            said.append(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def hang_up(self) -> None:
        """Close its stdin: the shell exits, and its kubectl with it."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass

    def close(self) -> None:
        """End the shell; its kubectl is stopped if it lingers."""
        self.hang_up()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Shells:
    """The open shells of a watch session for one image, one per container instance (``Target.key``), ``limit`` at
    most."""

    def __init__(self, open_argv: Callable[[Target], list[str]], c: Context, limit: int = AT_MOST) -> None:
        self.open_argv, self.c, self.limit = open_argv, c, limit
        self.open: dict[str, Shell] = {}
        self.unusable: set[str] = set()  # containers whose image has no base64: one-shot execs only
        self.lock = threading.Lock()

    def keep(self, targets: Sequence[Target]) -> None:
        """Have a shell open in each of ``targets`` (started, not waited for); close those of other containers."""
        wanted = {t.key for t in targets}
        with self.lock:
            gone = [self.open.pop(key) for key in list(self.open) if key not in wanted or not self.open[key].alive()]
            new = [t for t in targets if t.key not in self.open and t.key not in self.unusable]
            new = new[:max(0, self.limit - len(self.open))]  # the others: a one-shot exec per sync
            for index, target in enumerate(new):
                proc = shell.spawn(self.c, self.open_argv(target), quiet=index > 0, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace")
                if proc is None:  # --dry, or stopping
                    break
                self.open[target.key] = Shell(proc)
                if index == 0 and len(new) > 1:
                    shell.say(f"   (and {len(new) - 1} more: a shell kept open in each container for live updates)")
        for old in gone:  # their pods are gone or replaced: no sync waits for them to end
            threading.Thread(target=old.close, daemon=True).start()

    def ask(self, target: Target, request: str, timeout: float = 60) -> Answer | None:
        """The answer of ``target``'s shell; None when it has none or it ended (the caller uses a one-shot exec)."""
        with self.lock:
            opened = self.open.get(target.key)
        answer = opened.ask(request, timeout) if opened is not None else None
        if opened is not None and (answer is None or answer[0] == NO_BASE64):
            with self.lock:
                self.open.pop(target.key, None)
                if answer is not None:
                    self.unusable.add(target.key)
            opened.close()
            return None
        return answer

    def close(self) -> None:
        with self.lock:
            opened, self.open = list(self.open.values()), {}
        for each in opened:
            each.hang_up()  # all at once, then each is waited for
        for each in opened:
            each.close()
