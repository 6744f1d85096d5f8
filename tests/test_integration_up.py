"""`inv up` / `inv down` of examples/hello on the real Docker engine and the real cluster, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import inv, make_app

NAMESPACE = "kit-it-hello"


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--namespace", NAMESPACE, *args], capture_output=True, text=True)


def running_images(selector: str = "app=hello") -> set[str]:
    """The spec images of the ready containers of live pods (the status may name another tag of the same ID)."""
    pods = json.loads(kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return {next(c["image"] for c in p["spec"]["containers"] if c["name"] == cs["name"])
            for p in pods if not p["metadata"].get("deletionTimestamp")
            for cs in p["status"].get("containerStatuses", []) if cs.get("ready")}


@pytest.fixture
def hello(tmp_path: Path, cluster: str, base_image: str):  # type: ignore[no-untyped-def]
    app = make_app(tmp_path)
    env = {"BASE_IMAGE": base_image, "INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1",
           "INVOKE_APP_NAMESPACE": NAMESPACE}
    yield app, env
    inv(app, "down", env=env)
    subprocess.run(["kubectl", "delete", "namespace", NAMESPACE, "--wait=false", "--ignore-not-found"],
                   capture_output=True)


@pytest.mark.integration
def test_up_deploys_hello_then_no_change_builds_nothing_then_a_change_rolls_out_then_down_removes(hello) -> None:  # type: ignore[no-untyped-def]
    app, env = hello
    (app / "app" / "www" / "run.txt").write_text(f"{uuid.uuid4()}\n")  # a tag no earlier run has built
    first = inv(app, "up", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "$ docker build --tag hello:" in first.stderr  # every command is shown
    tag = next(line.split("hello:")[1].split()[0] for line in first.stderr.splitlines() if "$ docker build --tag hello:" in line)
    pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
    assert running_images() == {f"hello:{tag}"}

    second = inv(app, "up", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "docker build" not in second.stderr and f"image hello:{tag}: up to date" in second.stderr
    assert "nothing to move" in second.stderr

    same = inv(app, "k8s.diff", env=env)
    assert same.returncode == 0 and "no differences" in same.stderr, same.stderr
    config_map = app / "k8s" / "configmap.yaml"
    original = config_map.read_text()
    config_map.write_text(original.replace("hello from the ConfigMap", "changed greeting"))
    differs = inv(app, "k8s.diff", env=env)
    assert differs.returncode == 1 and "changed greeting" in differs.stdout
    assert "the cluster differs from the rendered manifests" in differs.stderr
    config_map.write_text(original)

    (app / "README.md").write_text("ignored by .dockerignore\n")
    third = inv(app, "image.build", env=env)
    assert third.returncode == 0 and "docker build" not in third.stderr

    (app / "app" / "www" / "version.txt").write_text("2\n")
    fourth = inv(app, "up", env=env)
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    new_tag = next(line.split("hello:")[1].split()[0] for line in fourth.stderr.splitlines() if "$ docker build --tag hello:" in line)
    assert new_tag != tag
    assert running_images() == {f"hello:{new_tag}"}
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", f"hello:{new_tag}"],
                              capture_output=True, text=True).stdout.strip()
    pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
    ids = {cs["imageID"] for p in pods if not p["metadata"].get("deletionTimestamp") for cs in p["status"]["containerStatuses"]}
    assert ids == {f"docker://{image_id}"}
    served = kubectl("exec", "deploy/hello-web", "--", "wget", "-qO-", "http://127.0.0.1:8080/version.txt")
    assert served.stdout.strip() == "2"

    config_map.write_text(original.replace("hello from the ConfigMap", "changed greeting"))  # read by the pods at start
    fifth = inv(app, "up", env=env)
    assert fifth.returncode == 0, fifth.stderr[-3000:]
    pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json").stdout)["items"]
    live = [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3
    assert {kubectl("exec", pod, "--", "sh", "-c", "echo $GREETING").stdout.strip() for pod in live} == {"changed greeting"}

    down = inv(app, "down", env=env)
    assert down.returncode == 0, down.stderr
    left = kubectl("get", "deployments,services,configmaps,ingresses", "-l", "devloop/app=hello", "-o", "name").stdout
    assert left.strip() == ""
    assert not (app / ".kit" / "rendered-dev.yaml").exists()  # no record of a deployed image is left to keep


@pytest.mark.integration
def test_dry_up_changes_nothing_on_the_cluster(hello) -> None:  # type: ignore[no-untyped-def]
    app, env = hello
    result = inv(app, "--dry", "up", env=env)
    assert result.returncode == 0, result.stderr
    assert "# --dry: not run" in result.stderr
    assert kubectl("get", "deployments", "-o", "name").stdout.strip() == ""


@pytest.mark.integration
def test_doctor_passes_on_a_working_setup_and_names_a_taken_port(hello) -> None:  # type: ignore[no-untyped-def]
    import socket

    app, env = hello
    result = inv(app, "doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "docker daemon reachable" in result.stdout and "k8s-local" in result.stdout
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 8080))
        sock.listen()
        taken = inv(app, "doctor", env=env)
    assert taken.returncode == 1
    assert "local port 8080 (deploy/hello-web) is already in use by pid" in taken.stdout
