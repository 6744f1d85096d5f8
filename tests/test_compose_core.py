"""tasks/core/compose.py: interpolation, published ports, project names, readiness, Docker's port errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devloop.core import compose as core
from devloop.core.errors import KitError

HELLO = Path(__file__).resolve().parent.parent / "examples" / "hello"


@pytest.mark.parametrize("text, env, expected", [
    ("${BASE_IMAGE}", {"BASE_IMAGE": "busybox:1"}, "busybox:1"),
    ("$BASE_IMAGE/x", {"BASE_IMAGE": "b"}, "b/x"),
    ("${PORT:-3000}", {}, "3000"),
    ("${PORT:-3000}", {"PORT": ""}, "3000"),
    ("${PORT-3000}", {"PORT": ""}, ""),
    ("${X:+set}", {"X": "1"}, "set"),
    ("${X:+set}", {}, ""),
    ("$$HOME", {"HOME": "/root"}, "$HOME"),
    ("${MISSING}", {}, ""),
    ("127.0.0.1:${P:-6379}:6379", {"P": "16379"}, "127.0.0.1:16379:6379"),
])
def test_interpolation_like_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert core.interpolate(text, env) == expected


def test_required_variable_names_itself_and_the_message() -> None:
    with pytest.raises(KitError) as caught:
        core.interpolate("${BASE_IMAGE:?set BASE_IMAGE in .env}", {}, "docker-compose.yml.services.web.image")
    assert "BASE_IMAGE is required: set BASE_IMAGE in .env" in caught.value.message
    assert "docker-compose.yml.services.web.image" in caught.value.message
    with pytest.raises(KitError):
        core.interpolate("${not valid}", {})


@pytest.mark.parametrize("spec, expected", [
    ("3306:3306", [("", 3306, "3306", "tcp")]),
    ("127.0.0.1:6379:6379", [("127.0.0.1", 6379, "6379", "tcp")]),
    ("8080:80/udp", [("", 8080, "80", "udp")]),
    ("3000-3001:3000-3001", [("", 3000, "3000-3001", "tcp"), ("", 3001, "3000-3001", "tcp")]),
    ("[::1]:9000:9000", [("::1", 9000, "9000", "tcp")]),
    ("3000", []),  # container port only: Docker picks a random host port
    ("127.0.0.1::3000", []),
    (3000, []),
    ({"target": 80, "published": 8080, "host_ip": "127.0.0.1"}, [("127.0.0.1", 8080, "80", "tcp")]),
    ({"target": 80, "published": "8080-8081"}, [("", 8080, "80", "tcp"), ("", 8081, "80", "tcp")]),
    ({"target": 80}, []),
])
def test_published_ports_short_and_long_syntax(spec: Any, expected: list[tuple[str, int, str, str]]) -> None:
    found = core.parse_port("web", spec)
    assert [(p.host_ip, p.port, p.target, p.protocol) for p in found] == expected


@pytest.mark.parametrize("spec", ["99999:80", "abc:80", "1:2:3:4"])
def test_bad_port_specs_are_reported(spec: str) -> None:
    with pytest.raises(KitError) as caught:
        core.parse_port("web", spec, "docker-compose.yml: ")
    assert "service web port" in caught.value.message and caught.value.code == 2


def test_bind_host_and_url_host() -> None:
    every = core.Published("web", "", 3000, "3000")
    local = core.Published("web", "127.0.0.1", 3000, "3000")
    assert (every.bind_host, every.local_url_host, every.shown) == ("0.0.0.0", "127.0.0.1", "0.0.0.0:3000")
    assert (local.bind_host, local.local_url_host) == ("127.0.0.1", "127.0.0.1")


def test_the_upstream_rails_files() -> None:
    dev = yaml.safe_load("""
services:
  mysql: {image: "mysql:5.7.21", ports: ["3306:3306"]}
  redis: {image: "redis:4.0.9", ports: ["6379:6379"]}
""")
    assert [(p.service, p.port) for p in core.published_ports(dev)] == [("mysql", 3306), ("redis", 6379)]
    preview = yaml.safe_load("""
services:
  puma: {image: demoapp, ports: ["3000:3000"]}
  sidekiq: {image: demoapp}
  mysql: {image: "mysql:5.7.21"}
""")
    published = core.published_ports(preview)
    assert core.urls(published, preview=True) == ["http://127.0.0.1:3000/"]
    assert core.urls(published, preview=False) == []
    assert core.urls(published, "https://demo.local/", preview=False) == ["https://demo.local/"]


def test_the_example_files_publish_on_loopback_only() -> None:
    env = {"BASE_IMAGE": "k8s-local/busybox:1"}
    for name in ("docker-compose.yml", "docker-compose-preview.yml"):
        data = core.interpolate_tree(yaml.safe_load((HELLO / name).read_text()), env, name)
        published = core.published_ports(data, name)
        assert published and all(p.host_ip == "127.0.0.1" for p in published)
        for service in data["services"].values():
            assert service["image"] in ("k8s-local/busybox:1", "hello-preview:latest")


def test_missing_services_is_reported() -> None:
    with pytest.raises(KitError) as caught:
        core.published_ports({"version": "3"}, "x.yml")
    assert "no `services:`" in caught.value.message


def test_project_names() -> None:
    assert core.project_name("Demo App!", False) == "demoapp"
    assert core.project_name("demoapp", True) == "demoapp-preview"
    assert core.project_name("", False) == "app"


@pytest.mark.parametrize("output, expected", [
    ("ERROR: for mysql  Cannot start service mysql: driver failed programming external connectivity on endpoint "
     "x: Bind for 0.0.0.0:3306 failed: port is already allocated", ("0.0.0.0", 3306)),
    ("Error starting userland proxy: listen tcp4 127.0.0.1:6379: bind: address already in use", ("127.0.0.1", 6379)),
    ("Error response from daemon: Ports are not available: listen tcp [::]:80: bind: address already in use", ("::", 80)),
    ("all good", None),
])
def test_docker_port_errors(output: str, expected: tuple[str, int] | None) -> None:
    assert core.port_conflict(output) == expected


def container(service: str, status: str, health: str | None = None, code: int = 0, restarting: bool = False,
              log: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"Status": status, "ExitCode": code, "Restarting": restarting}
    if health:
        state["Health"] = {"Status": health, "Log": [{"Output": log}] if log else []}
    return {"Id": f"id-{service}", "Name": f"/p_{service}_1", "State": state,
            "Config": {"Labels": {"com.docker.compose.service": service}}}


def test_assess_ready_waiting_failed() -> None:
    verdict = core.assess([container("web", "running", "healthy"), container("worker", "running"),
                           container("migrate", "exited", code=0), container("store", "running", "starting")])
    assert verdict.ready == ["web", "worker", "migrate"] and verdict.waiting == {"store": "health starting"}
    assert verdict.how == {"web": "healthy", "worker": "running, no healthcheck", "migrate": "exited 0"}
    assert not verdict.done
    assert core.assess([container("web", "running", "healthy")]).done
    failed = core.assess([container("web", "exited", code=3), container("db", "running", "unhealthy", log="no\nconn"),
                          container("job", "restarting", code=1), container("x", "created")])
    assert failed.failed == {"web": "exited with code 3", "db": "is unhealthy: conn",
                             "job": "keeps restarting (last exit code 1)"}
    assert failed.waiting == {"x": "created"}


def test_missing_compose_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(KitError) as caught:
        core.compose_file(tmp_path, "docker-compose-preview.yml", "preview")
    assert f"compose file {tmp_path}/docker-compose-preview.yml not found" in caught.value.message
    assert "app.compose.preview" in caught.value.message and caught.value.code == 2
    (tmp_path / "dc.yml").write_text("services: {}\n")
    assert core.compose_file(tmp_path, "dc.yml", "dev") == tmp_path / "dc.yml"
