"""Provider `registry` against a real registry: Debian's docker-registry on 127.0.0.1:5000, which bin/setup
--services starts (CI runs it). examples/hello is pushed there, the pods run `127.0.0.1:5000/hello:TAG`, a second
`up` sends no layers, the status table shows that reference, and a registry that is down is one clear error."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import inv, make_app
from watch_helpers import cluster_env, free_port, namespace

REGISTRY = "127.0.0.1:5000"
# The registry is on loopback: never ask it through the shell's proxy (CI's points at a closed port).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def registry_get(path: str, accept: str = "") -> tuple[int, dict[str, str], bytes]:
    """``GET http://127.0.0.1:5000{path}``: status, headers, body (an HTTP error status is an answer too)."""
    request = urllib.request.Request(f"http://{REGISTRY}{path}", headers={"Accept": accept} if accept else {})
    try:
        with DIRECT.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="session")
def registry() -> str:
    """The real registry bin/setup --services starts; skips (with how to start it) when nothing answers."""
    try:
        status, _, _ = registry_get("/v2/")
    except OSError as exc:
        pytest.skip(f"no registry on {REGISTRY} ({exc}): bin/setup --services starts Debian's docker-registry there")
    if status != 200:
        pytest.skip(f"{REGISTRY}/v2/ answered HTTP {status}: not the unauthenticated test registry bin/setup starts")
    return REGISTRY


@pytest.fixture
def hello(tmp_path: Path, cluster: str, base_image: str, registry: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """examples/hello in a namespace of its own, delivered by pushing to ``registry``."""
    app = make_app(tmp_path)
    (app / "app" / "www" / "run.txt").write_text(f"{uuid.uuid4()}\n")  # a tag, and a layer, no run has pushed
    with namespace("kit-registry") as ns:
        env = dict(cluster_env(base_image, ns), INVOKE_APP_CLUSTER_PROVIDER="registry",
                   INVOKE_APP_CLUSTER_REGISTRY=registry)
        try:
            yield app, env
        finally:
            inv(app, "down", env=env)


def kubectl_json(ns: str, *args: str) -> Any:
    result = subprocess.run(["kubectl", "--namespace", ns, *args, "-o", "json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def live_pods(ns: str) -> list[dict[str, Any]]:
    return [p for p in kubectl_json(ns, "get", "pods", "-l", "app=hello")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def built_tag(stderr: str) -> str:
    return next(line.split("hello:")[1].split()[0] for line in stderr.splitlines() if "$ docker build --tag hello:" in line)


def layer_lines(stdout: str) -> list[str]:
    """docker push's final word for each layer ("Pushed", "Layer already exists", "Mounted from ...")."""
    return [line for line in stdout.splitlines()
            if re.match(r"^[0-9a-f]{12}: (Pushed|Layer already exists|Mounted from)", line)]


def pushed_digest(stdout: str, tag: str) -> str:
    return re.search(rf"^{tag}: digest: (sha256:[0-9a-f]{{64}})", stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]


def docker_has(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


@pytest.mark.integration
def test_up_pushes_pods_run_the_registry_reference_and_a_second_up_sends_no_layers(hello: tuple[Path, dict[str, str]]) -> None:
    app, env = hello
    ns = env["INVOKE_APP_NAMESPACE"]
    first = inv(app, "up", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    tag = built_tag(first.stderr)
    pushed = f"{REGISTRY}/hello:{tag}"
    assert f"$ docker tag hello:{tag} {pushed}" in first.stderr and f"$ docker push {pushed}" in first.stderr
    assert any(line.endswith(": Pushed") for line in layer_lines(first.stdout))  # run.txt's layer was new

    # The registry has it, by its HTTP API, with the digest docker push reported.
    status, _, body = registry_get("/v2/hello/tags/list")
    assert status == 200 and tag in json.loads(body)["tags"]
    status, headers, _ = registry_get(f"/v2/hello/manifests/{tag}",
                                      accept="application/vnd.docker.distribution.manifest.v2+json")
    assert status == 200 and headers["Docker-Content-Digest"] == pushed_digest(first.stdout, tag)

    pods = live_pods(ns)
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
    assert {c["image"] for p in pods for c in p["spec"]["containers"]} == {pushed}

    second = inv(app, "up", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "docker build" not in second.stderr and f"image hello:{tag}: up to date" in second.stderr
    if f"$ docker push {pushed}" in second.stderr:  # pushed again: the registry must have had every layer
        layers = layer_lines(second.stdout)
        assert layers and all(line.endswith(": Layer already exists") for line in layers), second.stdout

    shown = inv(app, "k8s.status", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()[1:]]
    assert [r[0] for r in rows if pushed in r] == [r[0] for r in rows]  # every row's image column: the pushed ref
    assert len([r for r in rows if r[0].startswith("pod/")]) == 3

    doctor = inv(app, "doctor", env=env)
    assert re.search(rf"^ok +registry {REGISTRY} answers +http://{REGISTRY}/v2/ answers \(HTTP 200\)$", doctor.stdout,
                     re.MULTILINE), doctor.stdout


@pytest.mark.integration
def test_a_pod_pulls_the_pushed_image_from_the_registry(hello: tuple[Path, dict[str, str]]) -> None:
    app, env = hello
    ns = env["INVOKE_APP_NAMESPACE"]
    up = inv(app, "up", env=env)
    assert up.returncode == 0, up.stderr[-3000:]
    pushed = f"{REGISTRY}/hello:{built_tag(up.stderr)}"
    # Only the registry has the reference now; hello:TAG keeps the image (and its layers) on this engine.
    assert subprocess.run(["docker", "image", "rm", pushed], capture_output=True).returncode == 0
    restart = subprocess.run(["kubectl", "--namespace", ns, "rollout", "restart", "deploy/hello-worker"],
                             capture_output=True, text=True)
    assert restart.returncode == 0, restart.stderr
    done = subprocess.run(["kubectl", "--namespace", ns, "rollout", "status", "deploy/hello-worker", "--timeout=90s"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # The tag is back on the engine: only the kubelet's pull from the registry can have put it there. (Its "Pulled"
    # event is not waited for: the kubelet drops events beyond its rate limit when the cluster is busy.)
    assert docker_has(pushed)


@pytest.mark.integration
def test_a_registry_that_is_down_is_one_clear_error(hello: tuple[Path, dict[str, str]]) -> None:
    app, env = hello
    ns = env["INVOKE_APP_NAMESPACE"]
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = dict(env, INVOKE_APP_CLUSTER_REGISTRY=down)
    result = inv(app, "up", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: docker push to {down} failed"], result.stderr[-2000:]
    assert "connection refused" in result.stderr
    assert f"fix: check that {down} is reachable and app.cluster.registry is right" in result.stderr
    assert kubectl_json(ns, "get", "deployments")["items"] == []  # nothing applied

    doctor = inv(app, "doctor", env=env)
    assert doctor.returncode == 1
    row = next(line for line in doctor.stdout.splitlines() if f"registry {down} answers" in line)
    assert row.startswith("FAIL") and f"start the registry at {down}" in row
