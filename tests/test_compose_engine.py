"""compose tasks on the real Docker engine with the installed Compose (Debian's docker-compose v1 here):
the example's dev and preview files, health waiting, the URL, and a taken port named with its holder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import docker_ok, inv, make_app

pytestmark = pytest.mark.integration


def compose_bin() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """A BASE_IMAGE the engine has locally: the cluster's busybox, or one built from busybox-static."""
    if not docker_ok():
        pytest.skip("no reachable Docker daemon")
    if compose_bin() is None:
        pytest.skip("Docker Compose is not installed (bin/setup --services installs docker-compose)")
    if subprocess.run(["docker", "image", "inspect", "k8s-local/busybox:1"], capture_output=True).returncode == 0:
        return "k8s-local/busybox:1"
    return str(request.getfixturevalue("base_image"))


@pytest.fixture
def project(engine: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], str]]:
    """An app folder, the environment for `inv` (own project name, free ports), and the project name."""
    app = make_app(tmp_path)
    name = f"kit-compose-{uuid.uuid4().hex[:8]}"
    env = {"BASE_IMAGE": engine, "INVOKE_APP_COMPOSE_PROJECT": name,
           "HELLO_STORE_PORT": str(free_port()), "HELLO_WEB_PORT": str(free_port())}
    yield app, env, name
    base = compose_bin() or ["docker-compose"]
    for suffix, file in (("", "docker-compose.yml"), ("-preview", "docker-compose-preview.yml")):
        subprocess.run([*base, "-f", str(app / file), "-p", name + suffix, "down", "--volumes", "--timeout", "1"],
                       capture_output=True, env=dict(os.environ, **env))


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        return str(response.read().decode())


def test_dev_compose_up_wait_ps_logs_down(project: tuple[Path, dict[str, str], str]) -> None:
    app, env, name = project
    up = inv(app, "compose.up", "--wait", env=env)
    assert up.returncode == 0, up.stderr
    port = env["HELLO_STORE_PORT"]
    assert f"store: 127.0.0.1:{port} -> 6379/tcp" in up.stdout
    assert "ready: store (healthy)" in up.stderr
    assert get(f"http://127.0.0.1:{port}/health").strip() == "ok"

    again = inv(app, "compose.up", "--wait", env=env)  # our own container holds the port: fine
    assert again.returncode == 0, again.stderr

    ps = inv(app, "compose.ps", env=env)
    assert ps.returncode == 0 and "store" in ps.stdout and "Up" in ps.stdout
    assert inv(app, "compose.logs", "--tail", "5", env=env).returncode == 0

    volumes = ["docker", "volume", "ls", "-q", "--filter", f"name={name}_store-data"]
    assert subprocess.run(volumes, capture_output=True, text=True).stdout.strip()
    down = inv(app, "compose.down", "--volumes", env=env)
    assert down.returncode == 0, down.stderr
    assert not subprocess.run(volumes, capture_output=True, text=True).stdout.strip()


def test_preview_compose_builds_the_app_and_prints_its_url(project: tuple[Path, dict[str, str], str]) -> None:
    app, env, name = project
    up = inv(app, "compose.up", "--preview", "--wait", "--build", env=env)
    assert up.returncode == 0, up.stderr
    url = f"http://127.0.0.1:{env['HELLO_WEB_PORT']}/"
    assert f"open: {url}" in up.stdout
    assert "ready: " in up.stderr and "web (" in up.stderr and "worker (" in up.stderr
    assert get(url + "greeting.txt").strip() == "hello from the compose preview"
    logs = inv(app, "compose.logs", "--preview", "--service", "worker", "--tail", "3", env=env)
    assert "worker: tick" in logs.stdout
    down = inv(app, "compose.down", "--preview", "--volumes", env=env)
    assert down.returncode == 0 and f"Removing network {name}-preview_default" in down.stderr


def test_port_taken_by_a_local_process_names_its_pid(project: tuple[Path, dict[str, str], str]) -> None:
    app, env, _ = project
    port = int(env["HELLO_STORE_PORT"])
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = inv(app, "compose.up", "--wait", env=env)
    assert result.returncode == 1
    assert f"local port {port} (service store" in result.stderr
    assert f"already in use by pid {os.getpid()} (" in result.stderr
    assert f"fix: stop it (kill {os.getpid()})" in result.stderr
    assert "up -d" not in result.stderr  # refused before Docker could say "port is already allocated"
    assert "Traceback" not in result.stderr


def test_port_published_by_another_compose_project_names_the_container(
        project: tuple[Path, dict[str, str], str]) -> None:
    app, env, name = project
    first = inv(app, "compose.up", "--detach", env=env)
    assert first.returncode == 0, first.stderr
    other = dict(env, INVOKE_APP_COMPOSE_PROJECT=f"{name}-other")
    second = inv(app, "compose.up", "--detach", env=other)
    assert second.returncode == 1
    assert f"already published by container {name}_store_1 of compose project {name}" in second.stderr \
        or f"already published by container {name}-store-1 of compose project {name}" in second.stderr
    assert f"docker compose -p {name} down" in second.stderr
