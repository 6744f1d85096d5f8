"""`inv doctor` with provider registry: the push target must answer its API (`GET /v2/`). A real HTTP server on
127.0.0.1 (port 0) plays the registry's first answer; the pure part is table-driven."""

from __future__ import annotations

import copy
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from invoke import Exit
from strict import StrictContext, ok

from devloop import workflow
from devloop.core import registry
from devloop.core.config import DEFAULTS


class Answer(BaseHTTPRequestHandler):
    """Answers every GET with the server's ``status`` and records the path."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server: Any = self.server
        server.paths.append(self.path)
        body = b"{}"
        self.send_response(server.status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if server.status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="basic-realm"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass


@pytest.fixture
def server() -> Iterator[Any]:
    httpd: Any = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    httpd.status, httpd.paths = 200, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str, address: str) -> StrictContext:
    """A context for `doctor` on an app whose only prerequisite left to check is the registry."""
    cluster = dict(copy.deepcopy(DEFAULTS["cluster"]), provider=provider, registry=address)
    monkeypatch.setattr(workflow, "docker_daemon_version", lambda: "20.10.24")
    monkeypatch.setattr(workflow.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return StrictContext({"kubectl config current-context": ok("k8s-local\n"),
                          "kubectl --context k8s-local get --raw /readyz": ok("ok")},
                         app={"root": str(tmp_path), "cluster": cluster, "forwards": []})


def registry_rows(out: str) -> list[list[str]]:
    """The doctor's rows about the registry, as [ok/FAIL, check, detail]."""
    rows = [re.split(r"\s{2,}", line, maxsplit=2) for line in out.splitlines()]
    return [row for row in rows if len(row) == 3 and row[1].startswith("registry")]


@pytest.mark.parametrize(("address", "url"), [
    ("127.0.0.1:5000", "http://127.0.0.1:5000/v2/"),
    ("127.0.0.1:5000/team", "http://127.0.0.1:5000/v2/"),
    ("localhost:5000/team", "http://localhost:5000/v2/"),
    ("[::1]:5000", "http://[::1]:5000/v2/"),
    ("registry.example.com/team", "https://registry.example.com/v2/"),
    ("10.0.0.5:5000", "https://10.0.0.5:5000/v2/"),
])
def test_the_probe_is_plain_http_only_on_loopback_as_docker_does(address: str, url: str) -> None:
    assert registry.probe_url(address) == url


@pytest.mark.parametrize(("status", "error", "ok", "words"), [
    (200, "", True, ["answers (HTTP 200)"]),
    (401, "", True, ["answers (HTTP 401)", "login needed to push: docker login registry.example.com",
                     "the Docker daemon's own view and push rights are not checked"]),
    (404, "", False, ["answered HTTP 404, not a registry's API", "check app.cluster.registry"]),
    (None, "[Errno 111] Connection refused", False,
     ["does not answer ([Errno 111] Connection refused)", "start the registry at registry.example.com"]),
])
def test_the_verdict_names_what_was_asked_and_the_fix(status: int | None, error: str, ok: bool, words: list[str]) -> None:
    url = "https://registry.example.com/v2/"
    passed, detail = registry.verdict("registry.example.com/team", url, status, error)
    assert passed is ok and detail.startswith(url)
    assert all(w in detail for w in words), detail


def test_doctor_passes_when_the_registry_answers(server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    port = server.server_address[1]
    workflow.doctor(doctor(tmp_path, monkeypatch, "registry", f"127.0.0.1:{port}/team"))
    out, err = capsys.readouterr()
    assert registry_rows(out) == [["ok", f"registry 127.0.0.1:{port} answers", f"http://127.0.0.1:{port}/v2/ answers (HTTP 200)"]]
    assert f"· registry API: GET http://127.0.0.1:{port}/v2/" in err  # an API call, not a command the kit ran
    assert server.paths == ["/v2/"]


def test_a_loopback_registry_is_asked_directly_never_through_a_proxy(server: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):  # as CI's dockerd: nothing leaves
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    workflow.doctor(doctor(tmp_path, monkeypatch, "registry", f"127.0.0.1:{server.server_address[1]}"))
    assert server.paths == ["/v2/"]


def test_a_registry_that_asks_for_a_login_answers(server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    server.status = 401
    port = server.server_address[1]
    workflow.doctor(doctor(tmp_path, monkeypatch, "registry", f"127.0.0.1:{port}"))
    [(passed, _, detail)] = registry_rows(capsys.readouterr().out)
    assert passed == "ok" and detail.endswith(f"answers (HTTP 401); login needed to push: docker login 127.0.0.1:{port}")


@pytest.mark.parametrize("what", ["closed port", "not a registry"])
def test_doctor_fails_with_one_line_naming_the_registry_and_the_fix(what: str, server: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    server.status = 404
    port = closed_port() if what == "closed port" else server.server_address[1]
    with pytest.raises(Exit) as failed:
        workflow.doctor(doctor(tmp_path, monkeypatch, "registry", f"127.0.0.1:{port}"))
    assert failed.value.code == 1 and f"registry 127.0.0.1:{port} answers" in str(failed.value.message)
    [(passed, check, detail)] = registry_rows(capsys.readouterr().out)
    assert (passed, check) == ("FAIL", f"registry 127.0.0.1:{port} answers")
    said = (rf"does not answer \(.*Connection refused\): start the registry at 127\.0\.0\.1:{port}, or point "
            if what == "closed port" else r"answered HTTP 404, not a registry's API: check app\.cluster\.registry")
    assert re.match(rf"http://127\.0\.0\.1:{port}/v2/ {said}", detail), detail


def test_doctor_names_a_registry_provider_without_a_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Exit):
        workflow.doctor(doctor(tmp_path, monkeypatch, "registry", ""))
    [(passed, check, detail)] = registry_rows(capsys.readouterr().out)
    assert (passed, check) == ("FAIL", "registry set")
    assert detail.startswith("provider is 'registry' but app.cluster.registry is not set")


def test_other_providers_ask_no_registry(server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    workflow.doctor(doctor(tmp_path, monkeypatch, "docker", f"127.0.0.1:{server.server_address[1]}"))
    assert "registry" not in capsys.readouterr().out and server.paths == []


@pytest.mark.parametrize("chart", ["", "chart/hello"])
def test_doctor_checks_for_helm_when_the_app_has_a_chart(chart: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(workflow, "docker_daemon_version", lambda: "20.10.24")
    monkeypatch.setattr(workflow.shutil, "which", lambda tool: None if tool == "helm" else f"/usr/bin/{tool}")
    c = StrictContext({"kubectl config current-context": ok("k8s-local\n"),
                       "kubectl --context k8s-local get --raw /readyz": ok("ok")},
                      app={"root": str(tmp_path), "cluster": dict(copy.deepcopy(DEFAULTS["cluster"]), provider="docker"),
                           "forwards": [], "helm": {"chart": chart} if chart else {}})
    if not chart:
        workflow.doctor(c)
        assert "helm" not in capsys.readouterr().out  # the helm.* tasks are not in use
        return
    with pytest.raises(Exit):
        workflow.doctor(c)
    assert "FAIL  helm on PATH" in capsys.readouterr().out
