"""compose tasks against a strict mock context: v1/v2 detection, the exact commands, ports checked first."""

from __future__ import annotations

import json
import os
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from invoke import Exit
from strict import StrictContext, fail, ok

from devloop import compose

V2_PROBE = "docker compose version --short"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = make_app(tmp_path)
    monkeypatch.chdir(target)
    monkeypatch.setenv("BASE_IMAGE", "k8s-local/busybox:1")
    monkeypatch.setenv("HELLO_STORE_PORT", str(free_port()))
    monkeypatch.setenv("HELLO_WEB_PORT", str(free_port()))
    return target


@pytest.fixture
def held_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = int(sock.getsockname()[1])
    monkeypatch.setenv("HELLO_STORE_PORT", str(port))
    try:
        yield port
    finally:
        sock.close()


def context(app_dir: Path, results: dict[str, Any], **compose_conf: str) -> StrictContext:
    conf = {"dev": "docker-compose.yml", "preview": "docker-compose-preview.yml", "project": "", "url": "",
            **compose_conf}
    return StrictContext(results, app={"root": str(app_dir), "name": "hello", "compose": conf})


def healthy(*services: str) -> str:
    return json.dumps([{"Id": f"id-{s}", "Name": f"/hello_{s}_1", "State": {"Status": "running", "Health": {
        "Status": "healthy"}}, "Config": {"Labels": {"com.docker.compose.service": s}}} for s in services])


def docker_ps(port: int) -> str:
    return shlex.join(["docker", "ps", "--filter", f"publish={port}", "--format",
                       '{{.Names}}\t{{.Label "com.docker.compose.project"}}'])


@pytest.mark.parametrize("probe, base", [
    (fail(125, stderr="unknown flag: --short"), "docker-compose -f docker-compose.yml -p hello"),
    (ok("2.24.6\n"), "docker compose -f docker-compose.yml -p hello"),
])
def test_up_wait_with_compose_v1_or_v2(app_dir: Path, probe: Any, base: str, capsys: pytest.CaptureFixture[str]) -> None:
    c = context(app_dir, {V2_PROBE: probe, f"{base} up -d": ok(), f"{base} ps -q": ok("id-store\n"),
                          "docker inspect id-store": ok(healthy("store"))})
    compose.up(c, wait=True)
    assert c.commands == [V2_PROBE, f"{base} up -d", f"{base} ps -q", "docker inspect id-store"]
    out = capsys.readouterr()
    assert f"store: 127.0.0.1:{os.environ['HELLO_STORE_PORT']} -> 6379/tcp" in out.out
    assert "ready: store (healthy)" in out.err


@pytest.mark.parametrize("task, kwargs, tail", [
    (compose.up, {}, "up"),
    (compose.up, {"detach": True, "build": True}, "up -d --build"),
    (compose.down, {}, "down"),
    (compose.down, {"volumes": True}, "down --volumes"),
    (compose.logs, {"follow": True, "tail": 20, "service": "store"}, "logs --follow --tail 20 store"),
    (compose.ps, {}, "ps"),
])
def test_dev_commands(app_dir: Path, task: Any, kwargs: dict[str, Any], tail: str) -> None:
    base = "docker-compose -f docker-compose.yml -p hello"
    c = context(app_dir, {V2_PROBE: fail(125), f"{base} {tail}": ok()})
    task(c, **kwargs)
    assert c.commands == [V2_PROBE, f"{base} {tail}"]


def test_preview_has_its_own_project_and_prints_the_url(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = "docker-compose -f docker-compose-preview.yml -p demo-preview"
    c = context(app_dir, {V2_PROBE: fail(125), f"{base} up -d": ok(), f"{base} ps -q": ok("a\nb\nc\n"),
                          "docker inspect a b c": ok(healthy("web", "worker", "store"))}, project="demo")
    compose.up(c, preview=True, wait=True)
    assert f"open: http://127.0.0.1:{os.environ['HELLO_WEB_PORT']}/" in capsys.readouterr().out
    down = context(app_dir, {V2_PROBE: fail(125), f"{base} down --volumes": ok()}, project="demo")
    compose.down(down, preview=True, volumes=True)
    assert down.commands[-1] == f"{base} down --volumes"


def test_port_taken_names_the_process_holding_it(app_dir: Path, held_port: int) -> None:
    c = context(app_dir, {V2_PROBE: fail(125), docker_ps(held_port): ok("")})
    with pytest.raises(Exit) as caught:
        compose.up(c, wait=True)
    message = str(caught.value.message)
    assert f"local port {held_port} (service store" in message
    assert f"is already in use by pid {os.getpid()} (" in message
    assert f"kill {os.getpid()}" in message and "port is already allocated" in message
    assert not any(" up" in cmd for cmd in c.commands)


def test_port_published_by_another_projects_container_names_it(app_dir: Path, held_port: int) -> None:
    c = context(app_dir, {V2_PROBE: fail(125), docker_ps(held_port): ok("legacy_mysql_1\tlegacy\n")})
    with pytest.raises(Exit) as caught:
        compose.up(c)
    message = str(caught.value.message)
    assert "already published by container legacy_mysql_1 of compose project legacy" in message
    assert "docker stop legacy_mysql_1" in message and "docker compose -p legacy down" in message


def test_port_published_by_our_own_container_is_fine(app_dir: Path, held_port: int) -> None:
    base = "docker-compose -f docker-compose.yml -p hello"
    c = context(app_dir, {V2_PROBE: fail(125), docker_ps(held_port): ok("hello_store_1\thello\n"), f"{base} up -d": ok()})
    compose.up(c, detach=True)
    assert c.commands[-1] == f"{base} up -d"


@pytest.mark.parametrize(("listed", "passed", "said"), [
    ("hello_store_1\thello\n", True, "published by hello_store_1, this app's docker-compose.yml: store"),
    ("legacy_mysql_1\tlegacy\n", False, "published by container legacy_mysql_1 of compose project legacy, not this "
                                         "app's docker-compose.yml: store: docker stop legacy_mysql_1"),
])
def test_doctor_tells_the_apps_own_compose_container_from_another(app_dir: Path, held_port: int, listed: str,
                                                                  passed: bool, said: str) -> None:
    from devloop import workflow
    from devloop.kit import App

    c = context(app_dir, {docker_ps(held_port): ok(listed)})
    rows = workflow._compose_port_checks(App.load(c))
    assert (passed, said) in [(ok_, detail) for _, ok_, detail in rows]


def test_doctor_without_the_docker_cli_still_names_a_ports_holder(app_dir: Path, held_port: int) -> None:
    from devloop import workflow
    from devloop.kit import App

    c = context(app_dir, {docker_ps(held_port): fail(127, stderr="docker: not found")})
    rows = workflow._compose_port_checks(App.load(c))
    assert any(not ok_ and f"is already in use by pid {os.getpid()}" in detail for _, ok_, detail in rows)


def test_docker_port_error_during_up_is_explained(app_dir: Path) -> None:
    base = "docker-compose -f docker-compose.yml -p hello"
    port = int(os.environ["HELLO_STORE_PORT"])
    c = context(app_dir, {V2_PROBE: fail(125), f"{base} up -d": fail(1, stderr=(
        "ERROR: for store  Cannot start service store: driver failed programming external connectivity on endpoint "
        f"hello_store_1: Bind for 127.0.0.1:{port} failed: port is already allocated")), docker_ps(port): ok("")})
    with pytest.raises(Exit) as caught:
        compose.up(c, detach=True)
    assert f"local port {port} (127.0.0.1:{port} for docker-compose.yml) is already in use" in str(caught.value.message)


def test_failed_service_during_wait_shows_its_log(app_dir: Path) -> None:
    base = "docker-compose -f docker-compose.yml -p hello"
    crashed = json.dumps([{"Id": "id-store", "Name": "/hello_store_1", "State": {"Status": "exited", "ExitCode": 2},
                           "Config": {"Labels": {"com.docker.compose.service": "store"}}}])
    c = context(app_dir, {V2_PROBE: fail(125), f"{base} up -d": ok(), f"{base} ps -q": ok("id-store\n"),
                          "docker inspect id-store": ok(crashed),
                          "docker logs --tail 10 id-store": ok("httpd: bind: Address in use\n")})
    with pytest.raises(Exit) as caught:
        compose.up(c, wait=True)
    message = str(caught.value.message)
    assert "store exited with code 2" in message and "| httpd: bind: Address in use" in message


@pytest.mark.parametrize("conf, words", [
    ({"dev": "missing.yml"}, "missing.yml not found (app.compose.dev is 'missing.yml')"),
])
def test_missing_compose_file(app_dir: Path, conf: dict[str, str], words: str) -> None:
    c = context(app_dir, {}, **conf)
    with pytest.raises(Exit) as caught:
        compose.up(c)
    assert caught.value.code == 2 and words in str(caught.value.message)
    assert c.commands == []


def test_missing_preview_file_and_bad_timeout(app_dir: Path) -> None:
    (app_dir / "docker-compose-preview.yml").unlink()
    with pytest.raises(Exit) as caught:
        compose.down(context(app_dir, {}), preview=True)
    assert "app.compose.preview" in str(caught.value.message)
    with pytest.raises(Exit) as caught:
        compose.up(context(app_dir, {}), wait=True, timeout="soon")
    assert caught.value.code == 2 and "--timeout 'soon' is not a whole number" in str(caught.value.message)
    with pytest.raises(Exit) as caught:
        compose.logs(context(app_dir, {}), tail="-3")
    assert caught.value.code == 2 and "--tail '-3' must be greater than 0" in str(caught.value.message)


def test_unset_base_image_is_named(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASE_IMAGE")
    with pytest.raises(Exit) as caught:
        compose.up(context(app_dir, {V2_PROBE: fail(125)}))
    assert "BASE_IMAGE is required: set BASE_IMAGE in .env" in str(caught.value.message)


def test_no_compose_installed(app_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Exit) as caught:
        compose.ps(context(app_dir, {}))
    assert caught.value.code == 127 and "apt-get install docker-compose" in str(caught.value.message)
