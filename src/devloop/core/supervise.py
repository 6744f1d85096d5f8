"""Supervising long-running kubectl children: change feeds, backoff, stopping, and port-forwards that survive rollouts.

Nothing here starts a process: callers inject a ``start`` function (the task layer's ``shell.spawn``),
a clock and a port probe, so every decision can be tested with fakes and no sleeps.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from .clusterstate import JsonStream
from .kube import pod_ready
from .ports import Forward


class Proc(Protocol):
    """What the kit needs of a child process (``subprocess.Popen`` fits)."""

    pid: int
    stdout: IO[str] | None

    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


def stop(proc: Proc | None, grace: float = 1.0) -> None:
    """Stop a child: SIGTERM, then SIGKILL after ``grace`` seconds. Safe to call twice."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass


def stop_all(procs: Iterable[Proc | None], grace: float = 1.0) -> None:
    """Stop several children at once: SIGTERM to all first, so the grace periods overlap."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for proc in running:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
    for proc in running:
        stop(proc, grace)


def read_lines(proc: Proc, on_line: Callable[[str], None], on_end: Callable[[], None] | None = None) -> threading.Thread:
    """Read a child's stdout on a daemon thread; ``on_end`` runs at EOF."""

    def pump() -> None:
        try:
            if proc.stdout is not None:
                for line in proc.stdout:
                    on_line(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            if on_end:
                on_end()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


class Backoff:
    """Delays between restarts: ``first``, doubled each quick failure up to ``cap``; reset after a good run."""

    def __init__(self, first: float = 0.5, cap: float = 10.0, good_run: float = 10.0) -> None:
        self.first, self.cap, self.good_run = first, cap, good_run
        self.current = first

    def next(self, ran_for: float) -> float:
        if ran_for >= self.good_run:
            self.current = self.first
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay


class ChangeFeed:
    """Calls ``notify`` whenever the cluster changes: one ``kubectl get KIND --watch -o name`` child per kind.

    kubectl watches one kind per process. ``--watch`` (not ``--watch-only``) also prints the current
    list once the watch is established, so a change between the caller's first read and the watch
    starting still wakes it. Dead children are restarted with backoff by ``check()``.
    """

    def __init__(self, argvs: Iterable[list[str]], start: Callable[[list[str]], Proc | None],
                 notify: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.argvs = [list(a) for a in argvs]
        self.start, self.notify, self.clock = start, notify, clock
        self.procs: list[Proc | None] = [None] * len(self.argvs)
        self.started = [0.0] * len(self.argvs)
        self.retry_at = [0.0] * len(self.argvs)
        self.backoffs = [Backoff(1.0, 30.0) for _ in self.argvs]

    def open(self) -> ChangeFeed:
        self.check()
        return self

    def check(self) -> None:
        now = self.clock()
        for i, argv in enumerate(self.argvs):
            proc = self.procs[i]
            if proc is not None and proc.poll() is None:
                continue
            if proc is not None:
                self.procs[i] = None
                self.retry_at[i] = now + self.backoffs[i].next(now - self.started[i])
            if now < self.retry_at[i]:
                continue
            child = self.start(argv)
            if child is None:  # --dry
                self.retry_at[i] = float("inf")
                continue
            self.procs[i], self.started[i] = child, now
            self.attach(i, child)

    def attach(self, index: int, child: Proc) -> None:
        """Start reading a new child's output: here every line only notifies."""
        read_lines(child, lambda _line: self.notify())

    def running(self) -> bool:
        """Every child is running now (one that ended has not been restarted yet: what it would say is missed)."""
        return all(proc is not None and proc.poll() is None for proc in self.procs)

    def close(self) -> None:
        stop_all(self.procs)
        self.procs = [None] * len(self.argvs)

    def __enter__(self) -> ChangeFeed:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EventFeed(ChangeFeed):
    """A ChangeFeed whose children print watch events, one JSON object each (``kubectl get --raw URL?watch=1``).

    Each decoded event goes to ``on_event`` (from a reader thread); ``notify`` runs when a child ends.
    ``starts`` counts children started: a watch that was restarted missed what happened while it was
    down (deletions above all), so the caller re-lists once it sees the count grow.
    """

    def __init__(self, argvs: Iterable[list[str]], start: Callable[[list[str]], Proc | None],
                 on_event: Callable[[Any], None], notify: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(argvs, start, notify, clock)
        self.on_event = on_event
        self.starts = 0

    def attach(self, index: int, child: Proc) -> None:
        self.starts += 1
        stream = JsonStream()

        def on_line(line: str) -> None:
            for value in stream.feed(line):
                self.on_event(value)

        read_lines(child, on_line, self.notify)


class Wakeup:
    """A flag the feed sets and the waiting loop sleeps on (``threading.Event`` with a clear-on-wake).

    With ``settle`` > 0, a wake-up first lets that many seconds of further news arrive, so a burst of watch
    events (a rollout sends several per pod) is judged once, not once per event. News set as ``urgent``
    (a workload's own status, which decides readiness) ends that wait at once.
    """

    def __init__(self, settle: float = 0.0) -> None:
        self.event = threading.Event()
        self.urgent = threading.Event()
        self.settle = settle

    def set(self, urgent: bool = False) -> None:
        if urgent:
            self.urgent.set()
        self.event.set()

    def wait(self, timeout: float) -> bool:
        started = time.monotonic()
        woke = self.event.wait(max(0.0, timeout))
        if woke and self.settle > 0:
            self.urgent.wait(max(0.0, min(self.settle, timeout - (time.monotonic() - started))))  # never past the timeout
        self.event.clear()
        self.urgent.clear()
        return woke


# -- port-forwards ---------------------------------------------------------------------------------


def pod_selector(obj: Mapping[str, Any]) -> dict[str, str] | None:
    """The label selector picking a workload's (or Service's) pods; None when it is not plain labels."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Service":
        selector = spec.get("selector")
        return {str(k): str(v) for k, v in selector.items()} if selector else None
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions") or not selector.get("matchLabels"):
        return None
    return {str(k): str(v) for k, v in selector["matchLabels"].items()}


def matches(pod: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def service_port(service: Mapping[str, Any], port: int, pod: Mapping[str, Any]) -> int:
    """A Service port → the container port it sends to on ``pod`` (targetPort by number or by name)."""
    for entry in (service.get("spec") or {}).get("ports") or []:
        if int(entry.get("port", 0)) != port:
            continue
        target = entry.get("targetPort", port)
        if isinstance(target, int) or str(target).isdigit():
            return int(target)
        for container in (pod.get("spec") or {}).get("containers") or []:
            for declared in container.get("ports") or []:
                if declared.get("name") == target:
                    return int(declared["containerPort"])
    return port


def usable(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    return not meta.get("deletionTimestamp") and (pod.get("status") or {}).get("phase") == "Running"


def pick_pod(pods: Iterable[Mapping[str, Any]], selector: Mapping[str, str], current: str = "") -> Mapping[str, Any] | None:
    """Stay on ``current`` while it runs and nothing better is ready; else the newest ready pod."""
    candidates = [p for p in pods if matches(p, selector) and usable(p)]
    by_name = {p["metadata"]["name"]: p for p in candidates}
    ready = [p for p in candidates if pod_ready(p)]
    if current in by_name and (pod_ready(by_name[current]) or not ready):
        return by_name[current]
    ready.sort(key=lambda p: (str(p["metadata"].get("creationTimestamp") or ""), p["metadata"]["name"]), reverse=True)
    return ready[0] if ready else None


@dataclass
class ForwardSupervisor:
    """Keeps one ``kubectl port-forward`` alive across pod replacement.

    With a selector it forwards to a pod it picked itself (``pod/NAME``), so it knows when that pod is
    going away and moves to a ready one at once; kubectl alone keeps listening on a dead pod until
    the next connection fails (kubectl#686). Without one, kubectl picks the pod and only its exit is seen.
    """

    forward: Forward
    start: Callable[[str, list[tuple[int, int]]], Proc | None]  # (target, [(local, remote)]) -> child
    probe: Callable[[int], bool]  # is the child listening on 127.0.0.1:port?
    free: Callable[[int], bool]  # can 127.0.0.1:port be bound?
    say: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    selector: dict[str, str] | None = None
    service: Mapping[str, Any] | None = None  # for svc/NAME targets: maps service ports to container ports
    probe_for: float = 10.0  # seconds a new child may take before its port answers
    proc: Proc | None = None
    pod: str = ""
    up: bool = False
    started: float = 0.0
    retry_at: float = 0.0
    waiting_said: bool = False
    output: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def label(self) -> str:
        return str(self.forward)

    def locals(self) -> list[int]:
        return [local for local, _ in self.forward.ports]

    def step(self, pods: Sequence[Mapping[str, Any]] | None) -> None:
        """Look at the child and (when given) the namespace's pods; restart, move or announce."""
        now = self.clock()
        if self.proc is not None and self.proc.poll() is not None:
            why = self.last_error() or f"exit {self.proc.poll()}"
            delay = self.backoff.next(now - self.started)
            self.say(f"down: {self.label}: kubectl port-forward ended ({why}); restarting in {delay:.1f}s")
            self.proc, self.up, self.retry_at = None, False, now + delay
        if self.proc is not None and pods is not None and self.selector is not None:
            chosen = pick_pod(pods, self.selector, self.pod)
            if chosen is None or chosen["metadata"]["name"] != self.pod:
                gone = next((p for p in pods if p["metadata"]["name"] == self.pod), None)
                state = ("is gone" if gone is None else "is terminating" if (gone.get("metadata") or {}).get("deletionTimestamp")
                         else "is not ready")
                self.say(f"down: {self.label}: pod {self.pod} {state}; moving to "
                         + (f"pod {chosen['metadata']['name']}" if chosen else "the next ready pod"))
                stop(self.proc)
                self.proc, self.up, self.retry_at = None, False, now
        if self.proc is None and now >= self.retry_at:
            self._start(pods, now)
        if self.proc is not None and not self.up:
            if all(self.probe(port) for port in self.locals()):
                self.up = True
                where = f" (pod {self.pod})" if self.pod else ""
                self.say("up: " + ", ".join(f"127.0.0.1:{a} → {self.forward.target}:{b}" for a, b in self.forward.ports) + where)
            elif now - self.started > self.probe_for:
                self.say(f"down: {self.label}: 127.0.0.1:{self.locals()[0]} does not answer after {self.probe_for:.0f}s; restarting")
                stop(self.proc)
                self.proc, self.retry_at = None, now + self.backoff.next(0)

    def _start(self, pods: Sequence[Mapping[str, Any]] | None, now: float) -> None:
        ports = list(self.forward.ports)
        target = self.forward.target
        if self.selector is not None:
            if pods is None:
                return
            chosen = pick_pod(pods, self.selector)
            if chosen is None:
                if not self.waiting_said:
                    self.say(f"waiting: {self.label}: no ready pod yet")
                    self.waiting_said = True
                return
            self.pod = chosen["metadata"]["name"]
            target = f"pod/{self.pod}"
            if self.service is not None:
                ports = [(local, service_port(self.service, remote, chosen)) for local, remote in ports]
        taken = [port for port in self.locals() if not self.free(port)]
        if taken:
            self.retry_at = now + self.backoff.next(0)
            self.say(f"down: {self.label}: local port {taken[0]} is in use; retrying")
            return
        self.waiting_said = False
        self.output.clear()
        self.proc = self.start(target, ports)
        self.started = now
        if self.proc is None:  # --dry
            self.retry_at = float("inf")
            return
        read_lines(self.proc, self.output.append)

    def last_error(self) -> str:
        errors = [line for line in self.output if "error" in line.lower() or line.startswith("E")]
        text = (errors or list(self.output) or [""])[-1]
        return text.split('err="', 1)[-1].rstrip('"').strip()

    def close(self) -> None:
        stop(self.proc)
        self.proc = None
