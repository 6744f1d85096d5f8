"""Child supervision without processes or sleeps: fake children, a fake clock, a fake port probe."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kube_objects import pod

from devloop.core import supervise
from devloop.core.ports import parse_forward


class FakeProc:
    """A child whose exit the test decides; records how it was stopped."""

    next_pid = 100

    def __init__(self, lines: list[str] | None = None, stubborn: bool = False) -> None:
        FakeProc.next_pid += 1
        self.pid = FakeProc.next_pid
        self.stdout: Any = list(lines or [])
        self.code: int | None = None
        self.stubborn = stubborn
        self.signals: list[str] = []

    def poll(self) -> int | None:
        return self.code

    def terminate(self) -> None:
        self.signals.append("TERM")
        if not self.stubborn:
            self.code = -15

    def kill(self) -> None:
        self.signals.append("KILL")
        self.code = -9

    def wait(self, timeout: float | None = None) -> int:
        if self.code is None:
            raise subprocess.TimeoutExpired("fake", timeout or 0)
        return self.code


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def synchronous_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    def read_now(proc: Any, on_line: Callable[[str], None], on_end: Callable[[], None] | None = None) -> None:
        for line in proc.stdout or []:
            on_line(line.rstrip("\n"))
        if on_end:
            on_end()

    monkeypatch.setattr(supervise, "read_lines", read_now)


def test_stop_terminates_then_kills_a_stubborn_child() -> None:
    polite, stubborn, done = FakeProc(), FakeProc(stubborn=True), FakeProc()
    done.code = 0
    for proc in (polite, stubborn, done, None):
        supervise.stop(proc)
    assert polite.signals == ["TERM"]
    assert stubborn.signals == ["TERM", "KILL"]
    assert done.signals == []


def test_backoff_doubles_to_the_cap_and_resets_after_a_good_run() -> None:
    backoff = supervise.Backoff(first=0.5, cap=4.0, good_run=10.0)
    assert [backoff.next(1) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.next(30) == 0.5


def test_change_feed_notifies_and_restarts_dead_children_with_backoff() -> None:
    clock = Clock()
    started: list[list[str]] = []
    procs: list[FakeProc] = []
    notes: list[int] = []

    def start(argv: list[str]) -> FakeProc:
        started.append(argv)
        procs.append(FakeProc(["pod/a\n", "pod/b\n"]))
        return procs[-1]

    feed = supervise.ChangeFeed([["kubectl", "get", "pods", "-w"], ["kubectl", "get", "deployments", "-w"]], start,
                                lambda: notes.append(1), clock)
    with feed:
        assert len(started) == 2 and len(notes) == 4
        feed.check()
        assert len(started) == 2  # both alive
        procs[0].code = 1
        feed.check()
        assert len(started) == 2  # waits its backoff first
        clock.now += 1.0
        feed.check()
        assert started[-1] == ["kubectl", "get", "pods", "-w"]
    assert all(p.signals == ["TERM"] for p in procs if p.code == -15)
    assert [p.poll() for p in procs] == [1, -15, -15]


def test_change_feed_under_dry_starts_nothing_again() -> None:
    calls: list[list[str]] = []
    feed = supervise.ChangeFeed([["kubectl"]], lambda argv: calls.append(argv), lambda: None, Clock())
    feed.open()
    feed.check()
    assert len(calls) == 1


# -- port-forward supervision -----------------------------------------------------------------------


def web_pod(name: str, created: str, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    return pod(name, labels={"app": "web"}, created=created, ready=ready, deleting=deleting,
               ports=[{"name": "http", "containerPort": 8080}])


class Harness:
    def __init__(self, spec: str = "deploy/web 3000:8080", selector: dict[str, str] | None = None,
                 service: dict[str, Any] | None = None) -> None:
        self.clock = Clock()
        self.started: list[tuple[str, list[tuple[int, int]]]] = []
        self.procs: list[FakeProc] = []
        self.said: list[str] = []
        self.answers = True
        self.taken: set[int] = set()
        self.sup = supervise.ForwardSupervisor(parse_forward(spec), self.start, lambda port: self.answers,
                                               lambda port: port not in self.taken, self.said.append, self.clock,
                                               selector, service)

    def start(self, target: str, ports: list[tuple[int, int]]) -> FakeProc:
        self.started.append((target, ports))
        self.procs.append(FakeProc())
        return self.procs[-1]


def test_forward_picks_the_newest_ready_pod_and_says_when_it_is_up() -> None:
    h = Harness(selector={"app": "web"})
    pods = [web_pod("web-a", "2026-01-01T00:00:00Z"), web_pod("web-b", "2026-01-01T00:01:00Z"),
            web_pod("web-c", "2026-01-01T00:02:00Z", ready=False), pod("db", labels={"app": "db"})]
    h.sup.step(pods)
    assert h.started == [("pod/web-b", [(3000, 8080)])]
    assert h.said == ["up: 127.0.0.1:3000 → deploy/web:8080 (pod web-b)"]
    h.sup.step(pods)
    assert len(h.started) == 1 and len(h.said) == 1


def test_forward_moves_at_once_when_its_pod_terminates() -> None:
    h = Harness(selector={"app": "web"})
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z")])
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z", deleting=True), web_pod("web-b", "2026-01-01T00:01:00Z")])
    assert h.procs[0].signals == ["TERM"]
    assert [t for t, _ in h.started] == ["pod/web-a", "pod/web-b"]
    assert "down: deploy/web 3000:8080: pod web-a is terminating; moving to pod web-b" in h.said
    assert h.said[-1] == "up: 127.0.0.1:3000 → deploy/web:8080 (pod web-b)"


def test_forward_waits_for_a_ready_pod_when_none_is_left() -> None:
    h = Harness(selector={"app": "web"})
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z")])
    h.sup.step([])
    h.sup.step([web_pod("web-b", "2026-01-01T00:01:00Z", ready=False)])
    assert h.said[1:] == ["down: deploy/web 3000:8080: pod web-a is gone; moving to the next ready pod",
                          "waiting: deploy/web 3000:8080: no ready pod yet"]
    h.sup.step([web_pod("web-b", "2026-01-01T00:01:00Z")])
    assert [t for t, _ in h.started] == ["pod/web-a", "pod/web-b"]


def test_forward_stays_on_a_pod_that_is_briefly_unready_when_no_other_is_ready() -> None:
    h = Harness(selector={"app": "web"})
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z")])
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z", ready=False)])
    assert len(h.started) == 1 and h.procs[0].poll() is None


def test_forward_restarts_an_exited_child_with_backoff_and_its_error() -> None:
    h = Harness(selector=None)
    h.sup.step(None)
    assert h.started == [("deploy/web", [(3000, 8080)])]
    h.sup.output.extend(["Forwarding from 127.0.0.1:3000 -> 8080", "Handling connection for 3000",
                         "error: lost connection to pod"])
    h.procs[0].code = 1
    h.sup.step(None)
    assert h.said[-1] == "down: deploy/web 3000:8080: kubectl port-forward ended (error: lost connection to pod); restarting in 0.5s"
    assert len(h.started) == 1
    h.clock.now += 0.5
    h.sup.step(None)
    assert len(h.started) == 2
    h.procs[1].code = 1
    h.sup.step(None)
    assert h.said[-1].endswith("restarting in 1.0s")


def test_forward_restarts_when_the_local_port_never_answers() -> None:
    h = Harness()
    h.answers = False
    h.sup.step(None)
    h.clock.now += 11
    h.sup.step(None)
    assert h.procs[0].signals == ["TERM"]
    assert "does not answer after 10s" in h.said[-1]


def test_forward_waits_while_someone_else_holds_the_port() -> None:
    h = Harness()
    h.taken = {3000}
    h.sup.step(None)
    assert h.started == [] and h.said == ["down: deploy/web 3000:8080: local port 3000 is in use; retrying"]
    h.taken = set()
    h.clock.now += 1
    h.sup.step(None)
    assert len(h.started) == 1


def test_service_targets_forward_to_the_pods_container_port() -> None:
    service = {"kind": "Service", "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    h = Harness("svc/web 3000:80", selector=supervise.pod_selector(service), service=service)
    h.sup.step([web_pod("web-a", "2026-01-01T00:00:00Z")])
    assert h.started == [("pod/web-a", [(3000, 8080)])]


def test_selectors() -> None:
    assert supervise.pod_selector({"kind": "Deployment", "spec": {"selector": {"matchLabels": {"app": "web"}}}}) == {"app": "web"}
    assert supervise.pod_selector({"kind": "Deployment", "spec": {"selector": {
        "matchLabels": {"app": "web"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]}}}) is None
    assert supervise.pod_selector({"kind": "Service", "spec": {}}) is None
    assert supervise.service_port({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}, 80, {}) == 8080
    assert supervise.service_port({"spec": {"ports": []}}, 81, {}) == 81


def test_wakeup_clears_after_waking() -> None:
    wake = supervise.Wakeup()
    wake.set()
    assert wake.wait(0) is True
    assert wake.wait(0) is False


def test_wakeup_settles_at_most_until_its_timeout() -> None:
    wake = supervise.Wakeup(settle=30.0)  # a burst is gathered, never past the caller's timeout (10 ms here)
    wake.set()
    started = time.monotonic()
    assert wake.wait(0.01) is True
    assert time.monotonic() - started < 5.0
    assert wake.wait(0) is False  # what arrived while settling was taken with that wake-up


def test_urgent_news_ends_the_settling_at_once() -> None:
    wake = supervise.Wakeup(settle=30.0)
    wake.set()
    threading.Timer(0.05, lambda: wake.set(urgent=True)).start()
    started = time.monotonic()
    assert wake.wait(60.0) is True
    assert time.monotonic() - started < 5.0  # not the 30 s settle
    assert wake.wait(0) is False


def test_event_feed_decodes_watch_events_and_counts_starts() -> None:
    clock = Clock()
    events: list[Any] = []
    ended: list[int] = []
    procs: list[FakeProc] = []
    added = '{"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "a"}}}\n'

    def start(argv: list[str]) -> FakeProc:
        procs.append(FakeProc([added, "{\n", '    "type": "DELETED",\n', '    "object": {"kind": "Pod"}\n', "}\n"]))
        return procs[-1]

    feed = supervise.EventFeed([["kubectl", "get", "pods", "--watch"]], start, events.append, lambda: ended.append(1), clock)
    with feed:
        assert feed.starts == 1
        assert [e["type"] for e in events] == ["ADDED", "DELETED"]
        assert ended == [1]  # the fake child's output ended
        procs[0].code = 1
        feed.check()  # seen dead: restarted after its backoff
        clock.now += 1.0
        feed.check()
        assert feed.starts == 2  # restarted: the caller re-lists


def test_stop_all_signals_every_child_before_waiting_for_any() -> None:
    stubborn, polite = FakeProc(stubborn=True), FakeProc()
    supervise.stop_all([stubborn, None, polite])
    assert stubborn.signals == ["TERM", "TERM", "KILL"]
    assert polite.signals == ["TERM"]
