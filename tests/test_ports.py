"""Local ports: forward specs, free/taken, and naming the holder."""

from __future__ import annotations

import os
import socket

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
