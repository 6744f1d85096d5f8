"""Docker access: which daemon the API is asked, the image existence check over a fake daemon's socket (the
docker SDK talking to it), the CLI fallback through the funnel, and API calls shown as API calls, not commands."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from invoke import Result
from strict import StrictContext, ok

from devloop import docker_api
from devloop.kit import App

INSPECT = "docker image inspect --format '{{{{.Id}}}}' {ref}"
IMAGES = {"shop:t1": (200, b'{"Id": "sha256:abc"}'),
          "registry.local:5000/team/shop:t2": (200, b'{"Id": "sha256:def"}'),
          "shop:broken": (500, b'{"message": "boom"}')}


class FakeDaemon(BaseHTTPRequestHandler):
    """Answers the two calls the kit makes: the version (the SDK's handshake too) and one image's inspect."""

    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
        self.asked.append(self.path)
        path = self.path.split("/", 2)[2] if self.path.startswith("/v1.") else self.path.lstrip("/")
        if path == "version":
            status, body = 200, b'{"Version": "24.0.7", "ApiVersion": "1.43"}'
        elif path.startswith("images/") and path.endswith("/json"):
            status, body = IMAGES.get(path[len("images/"):-len("/json")], (404, b'{"message": "No such image"}'))
        else:
            status, body = 404, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        request, _ = super().get_request()
        return request, ("local", 0)  # BaseHTTPRequestHandler wants a (host, port)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    """The URL of a fake Docker daemon on a unix socket."""
    path = str(tmp_path / "docker.sock")
    FakeDaemon.asked = []
    server = UnixHTTPServer(path, FakeDaemon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.shutdown()
        server.server_close()


def app(tmp_path: Path, results: dict[str, Any] | None = None) -> App:
    return App.load(StrictContext(results or {}, app={"root": str(tmp_path), "name": "shop"}, repeat=False))


@pytest.mark.parametrize(("environ", "config_json", "expected"), [
    ({}, None, "unix:///var/run/docker.sock"),
    ({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, None, "unix:///run/user/1000/docker.sock"),
    ({"DOCKER_HOST": "tcp://192.168.49.2:2376"}, None, None),
    ({"DOCKER_CONTEXT": "rootless"}, None, None),
    ({}, {"currentContext": "desktop-linux"}, None),
    ({}, {"currentContext": "default"}, "unix:///var/run/docker.sock"),
])
def test_the_api_is_asked_only_when_its_socket_is_certainly_the_clis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                     environ: dict[str, str], config_json: Any,
                                                                     expected: str | None) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    if config_json is not None:
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
        (tmp_path / "config.json").write_text(json.dumps(config_json))
    assert docker_api.daemon_url({}) == expected
    assert docker_api.daemon_url({"DOCKER_HOST": "tcp://192.168.49.2:2376"}) is None  # minikube's daemon: ask the CLI


def test_the_api_reads_the_image_id_or_its_absence(daemon: str, tmp_path: Path) -> None:
    assert docker_api.ask_image_id(daemon, "shop:t1") == (True, "sha256:abc")
    assert docker_api.ask_image_id(daemon, "registry.local:5000/team/shop:t2") == (True, "sha256:def")
    assert docker_api.ask_image_id(daemon, "shop:missing") == (True, None)
    assert docker_api.ask_image_id(daemon, "shop:broken") == (False, None)  # anything odd: ask the CLI instead
    assert docker_api.ask_image_id(f"unix://{tmp_path / 'gone.sock'}", "shop:t1") == (False, None)
    assert any(path.endswith("/images/registry.local:5000/team/shop:t2/json") for path in FakeDaemon.asked)


def serve(path: str) -> UnixHTTPServer:
    server = UnixHTTPServer(path, FakeDaemon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_kept_client_follows_a_daemon_that_went_away_and_came_back(tmp_path: Path) -> None:
    path = str(tmp_path / "docker.sock")
    url = f"unix://{path}"
    server = serve(path)
    assert docker_api.ask_image_id(url, "shop:t1") == (True, "sha256:abc")
    kept = docker_api._clients[url]
    assert docker_api.ask_image_id(url, "shop:missing") == (True, None)  # "no such image" is an answer
    assert docker_api._clients[url] is kept  # one client for every call to this daemon
    server.shutdown()
    server.server_close()
    Path(path).unlink()
    assert docker_api.ask_image_id(url, "shop:t1") == (False, None)  # gone: the CLI is asked instead
    assert url not in docker_api._clients  # the failure dropped it
    server = serve(path)  # the daemon restarted on the same socket
    try:
        assert docker_api.ask_image_id(url, "shop:t1") == (True, "sha256:abc")
        assert docker_api._clients[url] is not kept
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_call_is_shown_as_an_api_call_not_as_a_command(daemon: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    kit = app(tmp_path)
    assert docker_api.image_id(kit, "shop:t1", {"DOCKER_HOST": daemon}) == "sha256:abc"
    assert docker_api.image_id(kit, "shop:missing", {"DOCKER_HOST": daemon}) is None
    assert kit.c.commands == []  # type: ignore[attr-defined]  # no process: the API answered
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"· docker API: image inspect shop:t1 ({daemon}): sha256:abc",
                     f"· docker API: image inspect shop:missing ({daemon}): no such image"]
    assert not any(line.startswith("$ ") for line in lines)  # `$ ` marks commands the kit ran, and none ran


def test_without_an_answer_from_the_api_the_cli_is_asked_through_the_funnel(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    gone = f"unix://{tmp_path / 'gone.sock'}"
    kit = app(tmp_path, {INSPECT.format(ref="shop:t1"): ok("sha256:abc\n")})
    assert docker_api.image_id(kit, "shop:t1", {"DOCKER_HOST": gone}) == "sha256:abc"
    assert kit.c.commands == ["docker image inspect --format '{{.Id}}' shop:t1"]  # type: ignore[attr-defined]
    assert f"$ DOCKER_HOST={gone} docker image inspect" in capsys.readouterr().err


def test_the_doctors_version_ping_is_shown_as_an_api_call(daemon: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", daemon)
    assert docker_api.server_version() == "24.0.7"
    assert capsys.readouterr().err.splitlines() == [f"· docker API: version ({daemon})"]
    monkeypatch.setenv("DOCKER_HOST", daemon + ".gone")
    assert docker_api.server_version() == ""  # not reachable: the doctor says how to start it


LEGACY_NOTICE = "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n"


@pytest.mark.parametrize(("stderr", "lost"), [
    (LEGACY_NOTICE + "unexpected EOF\n", True),  # the real CLI when its daemon's socket closed mid-build
    ("ERROR: failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF\n", True),
    ("read unix @->/var/run/docker.sock: read: connection reset by peer\n", True),
    ("write tcp 192.168.49.1:51234->192.168.49.2:2376: write: broken pipe\n", True),
    # A step's own network trouble, or a registry's, is the build's failure, not a lost daemon:
    ("curl: (56) Recv failure: Connection reset by peer\nThe command '/bin/sh -c curl -fsS https://x' returned a "
     "non-zero code: 56\n", False),
    ('Get "https://registry-1.docker.io/v2/": EOF\n', False),
    ("COPY failed: file not found in build context\n", False),
    ("", False),
])
def test_a_daemon_lost_mid_call_is_told_from_the_builds_own_failure(stderr: str, lost: bool) -> None:
    result = Result(stdout="Step 4/9 : RUN make\n", stderr=stderr, exited=1)
    assert docker_api.daemon_lost(result) is lost
