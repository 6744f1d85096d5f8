"""The log multiplexer: attach, re-attach without duplicates, follow restarts and new pods, say when pods go."""

from __future__ import annotations

from typing import Any

import pytest
from kube_objects import container_status, pod, waiting
from test_observe_supervise import Clock, FakeProc

from devloop.core import logmux


def running(name: str, cid: str, restarts: int = 0, deleting: bool = False) -> dict[str, Any]:
    return pod(name, statuses=[container_status("app", cid=cid, restarts=restarts)], deleting=deleting)


class Harness:
    def __init__(self, **kw: Any) -> None:
        self.clock = Clock()
        self.out: list[str] = []
        self.started: list[list[str]] = []
        self.procs: list[FakeProc] = []
        self.mux = logmux.LogMux(self.start, lambda p, c, *a: ["logs", "-f", p, "-c", c, *a], self.out.append,
                                 since="10s", clock=self.clock, **kw)

    def start(self, argv: list[str], key: logmux.Key) -> FakeProc:
        self.started.append(argv)
        self.procs.append(FakeProc())
        return self.procs[-1]

    def end(self, key: logmux.Key, error: str = "") -> None:
        self.procs[-1].code = 0
        self.mux.ended(key, error)


@pytest.mark.parametrize(("raw", "parts"), [
    ("2026-01-01T00:00:01.5Z hello", ("2026-01-01T00:00:01.500000000Z", "2026-01-01T00:00:01.5Z", "hello")),
    ("2026-01-01T00:00:01.123456789Z  two spaces", ("2026-01-01T00:00:01.123456789Z", "2026-01-01T00:00:01.123456789Z",
                                                    " two spaces")),
    ("2026-01-01T00:00:01Z", ("2026-01-01T00:00:01.000000000Z", "2026-01-01T00:00:01Z", "")),
    ("unable to retrieve container logs", ("", "", "unable to retrieve container logs")),
])
def test_split_timestamp_makes_nanoseconds_comparable(raw: str, parts: tuple[str, str, str]) -> None:
    assert logmux.split_timestamp(raw) == parts


def test_colour_is_stable_per_pod() -> None:
    assert logmux.colour_of("web-1") == logmux.colour_of("web-1")
    assert logmux.colour_of("web-1") in logmux.COLOURS


def test_pods_running_at_start_follow_from_since_and_later_pods_from_their_first_line() -> None:
    h = Harness()
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.reconcile([running("web-a", "docker://1"), running("web-b", "docker://2"),
                     pod("web-c", statuses=[container_status("app", cid="", state=waiting("ContainerCreating"))])])
    assert h.started == [["logs", "-f", "web-a", "-c", "app", "--timestamps", "--since=10s"],
                         ["logs", "-f", "web-b", "-c", "app", "--timestamps"]]
    assert h.out == ["+ web-a/app following", "+ web-b/app following"]


def test_lines_are_prefixed_and_timestamps_shown_only_when_asked() -> None:
    h = Harness()
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.line(("web-a", "app"), "2026-01-01T00:00:01.1Z GET / 200")
    assert h.out[-1] == "web-a/app GET / 200"
    t = Harness(timestamps=True, colour=True)
    t.mux.reconcile([running("web-a", "docker://1")])
    t.mux.line(("web-a", "app"), "2026-01-01T00:00:01.1Z GET / 200")
    assert t.out[-1] == f"\x1b[{logmux.colour_of('web-a')}mweb-a/app{logmux.RESET} 2026-01-01T00:00:01.1Z GET / 200"


def test_a_dropped_stream_reattaches_since_the_last_line_and_prints_nothing_twice() -> None:
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    for raw in ("2026-01-01T00:00:01.1Z one", "2026-01-01T00:00:02.2Z two", "2026-01-01T00:00:02.2Z two-b"):
        h.mux.line(key, raw)
    h.end(key, "error: unexpected EOF")
    h.mux.reconcile([running("web-a", "docker://1")])
    assert len(h.started) == 1  # backoff first
    h.clock.now += 0.5
    h.mux.reconcile([running("web-a", "docker://1")])
    assert h.started[-1] == ["logs", "-f", "web-a", "-c", "app", "--timestamps", "--since-time=2026-01-01T00:00:02.2Z"]
    for raw in ("2026-01-01T00:00:02.2Z two", "2026-01-01T00:00:02.2Z two-b", "2026-01-01T00:00:02.2Z two-c",
                "2026-01-01T00:00:03.3Z three"):
        h.mux.line(key, raw)
    lines = [o for o in h.out if not o.startswith(("+", "!"))]
    assert lines == ["web-a/app one", "web-a/app two", "web-a/app two-b", "web-a/app two-c", "web-a/app three"]
    assert "! web-a/app kubectl logs: error: unexpected EOF" in h.out


def test_a_restarted_container_is_followed_from_its_first_line() -> None:
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.line(key, "2026-01-01T00:00:05Z before the crash")
    h.end(key)
    h.clock.now += 1
    h.mux.reconcile([pod("web-a", statuses=[container_status("app", cid="docker://1", state=waiting("CrashLoopBackOff"))])])
    assert len(h.started) == 1
    h.mux.reconcile([running("web-a", "docker://2", restarts=1)])
    assert h.started[-1] == ["logs", "-f", "web-a", "-c", "app", "--timestamps"]
    assert "+ web-a/app restarted (restart 1), following its new instance" in h.out
    h.mux.line(key, "2026-01-01T00:00:04Z new instance, earlier clock")
    assert h.out[-1] == "web-a/app new instance, earlier clock"


def test_a_terminated_container_is_drained_once_then_left_alone() -> None:
    h = Harness()
    key = ("job-x", "app")
    done = pod("job-x", phase="Succeeded", statuses=[container_status("app", cid="docker://9",
                                                                      state={"terminated": {"exitCode": 0}})])
    h.mux.reconcile([done])
    h.end(key)
    h.clock.now += 60
    h.mux.reconcile([done])
    assert len(h.started) == 1


def test_pods_that_terminate_and_go_are_announced_once_after_their_stream_ends() -> None:
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.reconcile([running("web-a", "docker://1", deleting=True), running("web-b", "docker://2")])
    h.mux.reconcile([running("web-b", "docker://2")])
    assert "- web-a is gone" not in h.out  # its stream still drains
    h.procs[0].code = 0
    h.mux.ended(key, "unable to retrieve container logs")
    h.mux.reconcile([running("web-b", "docker://2")])
    h.mux.reconcile([running("web-b", "docker://2")])
    assert [o for o in h.out if o.startswith("-")] == ["- web-a is terminating", "- web-a is gone"]
    assert not any(o.startswith("!") for o in h.out)  # errors from a pod on its way out are expected


def test_lines_without_a_timestamp_are_kubelet_noise_not_log_lines() -> None:
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.line(key, "rpc error: code = Unknown desc = Error: No such container: abc")
    assert h.out == ["+ web-a/app following"]
    h.end(key)
    assert h.out[-1] == "! web-a/app kubectl logs: rpc error: code = Unknown desc = Error: No such container: abc"


def test_container_filter_and_close_stops_children() -> None:
    h = Harness(container="sidecar")
    two = pod("web-a", statuses=[container_status("app", cid="docker://1"), container_status("sidecar", cid="docker://2")])
    h.mux.reconcile([two])
    assert h.started == [["logs", "-f", "web-a", "-c", "sidecar", "--timestamps", "--since=10s"]]
    h.mux.close()
    assert h.procs[0].signals == ["TERM"]


def test_dry_run_starts_each_container_once() -> None:
    calls: list[list[str]] = []
    mux = logmux.LogMux(lambda argv, key: calls.append(argv), lambda p, c, *a: [p, c, *a], lambda line: None, clock=Clock())
    mux.reconcile([running("web-a", "docker://1")])
    mux.reconcile([running("web-a", "docker://1")])
    assert len(calls) == 1


def test_identical_lines_with_one_timestamp_are_all_printed_and_replayed_once() -> None:
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    for _ in range(2):
        h.mux.line(key, "2026-01-01T00:00:01.000000001Z tick")
    h.end(key, "")
    h.clock.now += 1
    h.mux.reconcile([running("web-a", "docker://1")])
    for _ in range(3):  # the re-attached stream repeats two, then the app wrote a third
        h.mux.line(key, "2026-01-01T00:00:01.000000001Z tick")
    h.mux.line(key, "2026-01-01T00:00:01.000000001Z tock")
    assert [o for o in h.out if not o.startswith("+")] == ["web-a/app tick"] * 3 + ["web-a/app tock"]


def test_no_second_child_starts_until_the_first_ones_end_is_handled() -> None:
    # The child has exited (poll() says so) but its end event is still queued: starting another now
    # would leave two followers on one container and print lines twice.
    h = Harness()
    key = ("web-a", "app")
    h.mux.reconcile([running("web-a", "docker://1")])
    h.mux.line(key, "2026-01-01T00:00:01.1Z one")
    h.procs[-1].code = 0
    h.clock.now += 60
    h.mux.reconcile([running("web-a", "docker://1")])
    assert len(h.started) == 1
    h.mux.ended(key, "")
    h.clock.now += 60
    h.mux.reconcile([running("web-a", "docker://1")])
    assert len(h.started) == 2 and "--since-time=2026-01-01T00:00:01.1Z" in h.started[-1]
