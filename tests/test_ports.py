"""Local ports: forward specs, free/taken, and naming the holder (psutil, on real sockets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from devloop.core import ports
from devloop.core.errors import KitError


@pytest.mark.parametrize("spec,target,pairs", [
    ("deploy/mysql 3306", "deploy/mysql", ((3306, 3306),)),
    ("svc/web 3000:80 9000", "svc/web", ((3000, 80), (9000, 9000))),
])
def test_parse_forward(spec: str, target: str, pairs: tuple[tuple[int, int], ...]) -> None:
    forward = ports.parse_forward(spec)
    assert (forward.target, forward.ports) == (target, pairs)


@pytest.mark.parametrize("spec", ["mysql 3306", "deploy/mysql", "deploy/x abc", "deploy/x 70000"])
def test_bad_forward_specs(spec: str) -> None:
    with pytest.raises(KitError):
        ports.parse_forward(spec)


def test_a_held_port_is_taken_and_its_holder_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not ports.port_free(port)
        who = ports.holder(port)
        assert who is not None and who.startswith(f"pid {os.getpid()} ")
        assert f"kill {os.getpid()}" in ports.stop_hint(who, port)
    assert ports.port_free(port)
    assert ports.holder(port) is None


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_without_the_system_wide_table_each_visible_process_is_asked(monkeypatch: pytest.MonkeyPatch,
                                                                     listening_port: int) -> None:
    """macOS: psutil.net_connections() needs root there; our own processes' sockets are still visible."""

    def denied(kind: str = "inet") -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    who = ports.holder(listening_port)
    assert who is not None and who.startswith(f"pid {os.getpid()} ")


def test_a_holder_nobody_may_see_is_unknown_not_an_error(monkeypatch: pytest.MonkeyPatch,
                                                         listening_port: int) -> None:
    def denied(*args: Any, **kwargs: Any) -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", denied)
    monkeypatch.setattr(psutil.Process, "net_connections", denied)
    assert ports.holder(listening_port) is None
    assert "lsof -nP -iTCP:" in ports.stop_hint(None, listening_port)


def test_a_listener_of_another_process_is_named() -> None:
    code = ("import socket, sys, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True); time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        assert ports.holder(port) == f"pid {child.pid} ({psutil.Process(child.pid).name()})"
    finally:
        child.kill()
        child.wait()
