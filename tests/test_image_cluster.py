"""Images on the real Docker engine and the real cluster, through `inv` as a user runs it: failed builds leave
the previous image alone, a daemon lost mid-build leaves no tag, ls/prune/rm touch only the project's
images, image.shell runs the current image, and image.rollout's `kubectl set image` reaches the pods."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import FAKES, built_here, docker_ok, inv

WEB = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}-web
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: web
          image: {name}:0.0.1
          command: ["sh", "-c", "sleep 3600"]
          readinessProbe:
            exec:
              command: ["cat", "/app/version.txt"]
            periodSeconds: 1
"""


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def image_id(ref: str) -> str:
    result = docker("image", "inspect", "--format", "{{.Id}}", ref)
    return result.stdout.strip() if result.returncode == 0 else ""


def built_tag(stderr: str, name: str) -> str:
    return next(line.split(f"{name}:")[1].split()[0] for line in stderr.splitlines() if f"$ docker build --tag {name}:" in line)


@pytest.fixture
def project(tmp_path: Path, base_image: str):  # type: ignore[no-untyped-def]
    """An app of its own (unique name, so other runs' images are never touched); its images are removed after."""
    if not docker_ok():
        pytest.skip("no reachable Docker daemon")
    name = f"kit-image-{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    (root / "app").mkdir(parents=True)
    (root / "k8s").mkdir()
    (root / "app" / "version.txt").write_text("1\n")
    (root / "Dockerfile").write_text(f"FROM {base_image}\nCOPY app/ /app/\n")
    (root / ".dockerignore").write_text(".kit/\nk8s/\ntasks\ntasks.py\ninvoke.yaml\n*.md\n")
    (root / "k8s" / "web.yaml").write_text(WEB.format(name=name))
    (root / "invoke.yaml").write_text(yaml.safe_dump({"app": {
        "name": name, "images": {name: {"context": ".", "dockerfile": "Dockerfile"}}, "manifests": ["k8s"],
        "workloads": [f"deploy/{name}-web"], "timeout": 90,
        "cluster": {"provider": "docker", "ip": "127.0.0.1"}}}))
    (root / "tasks.py").write_text("from devloop import namespace\n\nns = namespace()\n")
    yield root, name
    ids = built_here(root) + docker("image", "ls", "-q", "--filter", f"reference={name}").stdout.split()
    if ids:
        docker("image", "rm", "-f", *sorted(set(ids)))
    docker("image", "rm", f"{name}:0.0.1", f"{name}-unrelated:1")


@pytest.mark.integration
def test_a_failed_build_names_the_step_and_leaves_the_previous_image_and_tag(project) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    first = inv(root, "image.build")
    assert first.returncode == 0, first.stderr[-2000:]
    good = built_tag(first.stderr, name)
    good_id = image_id(f"{name}:{good}")
    assert good_id

    (root / "Dockerfile").write_text((root / "Dockerfile").read_text() + "COPY missing.txt /missing.txt\n")
    broken = inv(root, "image.build")
    assert broken.returncode == 1
    message = broken.stderr[broken.stderr.index("error:"):]
    assert re.match(rf"error: image {name}: docker build failed at Step 3/\d+ : COPY missing.txt /missing.txt", message)
    assert "COPY failed: file not found in build context" in message  # the failing step's output tail
    assert "DEPRECATED" not in message  # the CLI's notice is not the cause
    assert "Traceback" not in broken.stderr
    failed_tag = built_tag(broken.stderr, name)
    assert failed_tag != good and image_id(f"{name}:{failed_tag}") == ""  # no half-made tag
    assert image_id(f"{name}:{good}") == good_id  # the previous image and tag are untouched


@pytest.mark.integration
def test_the_daemon_lost_mid_build_is_one_clear_message_and_leaves_no_tag(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    log = tmp_path / "docker.log"
    env = {"PATH": f"{FAKES / 'dying-docker'}{os.pathsep}{os.environ['PATH']}", "FAKE_DOCKER_LOG": str(log)}
    result = inv(root, "image.build", env=env)
    assert result.returncode == 1
    tag = built_tag(result.stderr, name)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: the Docker daemon stopped answering during the build of {name}:{tag}: docker tags only "
                      f"a finished build, so {name}:{tag} was not made"]
    assert "Step 2/3 : COPY app/ /app/" in result.stdout  # progress streamed before the daemon went away
    assert "Traceback" not in result.stderr
    assert [json.loads(line)[0] for line in log.read_text().splitlines()] == ["build"]
    assert image_id(f"{name}:{tag}") == ""


@pytest.mark.integration
def test_a_daemon_killed_mid_build_is_named_not_blamed_on_the_step(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    env = {"PATH": f"{FAKES / 'dying-docker'}{os.pathsep}{os.environ['PATH']}", "FAKE_DOCKER_DEATH": "sigkill",
           "FAKE_DOCKER_LOG": str(tmp_path / "docker.log")}
    result = inv(root, "image.build", env=env)
    assert result.returncode == 1
    tag = built_tag(result.stderr, name)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: the connection to the local Docker daemon was lost during the build of {name}:{tag}: "
                      f"docker tags only a finished build, so {name}:{tag} was not made"]
    assert "fix the failing step" not in result.stderr and "Step 3/3" not in errors[0]
    assert "docker info; sudo systemctl status docker" in result.stderr  # the fix: the daemon, then run again
    assert "unexpected EOF" in result.stderr  # the CLI's own words are the evidence
    assert image_id(f"{name}:{tag}") == ""


@pytest.mark.integration
def test_ls_prune_and_rm_touch_only_the_projects_images(project, base_image: str) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    tags = []
    for version in ("1", "2", "3"):
        (root / "app" / "version.txt").write_text(version + "\n")
        result = inv(root, "image.build")
        assert result.returncode == 0, result.stderr[-2000:]
        tags.append(built_tag(result.stderr, name))
        time.sleep(1.1)  # Docker's creation times have whole seconds: keep "newest first" well defined
    # Not the project's: another app's build of the same image name, and an image that only shares a prefix.
    (root / "app" / "version.txt").write_text("other\n")
    other = inv(root, "image.build", env={"INVOKE_APP_NAME": f"{name}-other"})
    assert other.returncode == 0, other.stderr[-2000:]
    others_tag = built_tag(other.stderr, name)
    assert docker("tag", base_image, f"{name}-unrelated:1").returncode == 0
    docker("tag", base_image, f"{name}:0.0.1")  # a tag of our image name that the kit did not build
    (root / "app" / "version.txt").write_text("1\n")  # the current inputs give the oldest tag again

    listed = inv(root, "image.ls")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    # newest first; a tag of the configured name is listed too, whoever built it
    assert [r[1] for r in rows if r[0] == name] == [others_tag, tags[2], tags[1], tags[0], "0.0.1"]
    assert next(r for r in rows if r[1] == tags[0])[-1] == "current"

    pruned = inv(root, "image.prune", "--keep", "1")
    assert pruned.returncode == 0, pruned.stderr
    assert f"remove  {name}:{tags[1]}" in pruned.stderr
    assert f"keep    {name}:{tags[2]}" in pruned.stderr and f"keep    {name}:{tags[0]}" in pruned.stderr
    assert image_id(f"{name}:{tags[1]}") == ""
    assert image_id(f"{name}:{tags[0]}") and image_id(f"{name}:{tags[2]}")
    assert image_id(f"{name}:0.0.1") and image_id(f"{name}-unrelated:1")  # never built by the kit: never pruned
    assert image_id(f"{name}:{others_tag}")  # another app's build: not this project's to prune

    removed = inv(root, "image.rm", "--tag", tags[2])
    assert removed.returncode == 0, removed.stderr
    assert f"$ docker image rm {name}:{tags[2]}" in removed.stderr and image_id(f"{name}:{tags[2]}") == ""
    again = inv(root, "image.rm", "--tag", tags[2])
    assert again.returncode == 1 and f"no tag '{tags[2]}' of {name}" in again.stderr


@pytest.mark.integration
def test_shell_runs_a_command_in_the_current_image(project) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    (root / "app" / "version.txt").write_text("shell-42\n")
    result = inv(root, "image.shell", "--command", "cat /app/version.txt")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "shell-42"
    assert "docker run --rm -i --entrypoint sh" in result.stderr
    failed = inv(root, "image.shell", "--command", "exit 7")
    assert failed.returncode == 7 and "exited with status 7" in failed.stderr


@pytest.mark.integration
def test_rollout_sets_the_built_tag_on_untouched_manifests_and_pods_run_it(project, cluster: str) -> None:  # type: ignore[no-untyped-def]
    root, name = project
    namespace = f"kit-image-{uuid.uuid4().hex[:6]}"
    env = {"INVOKE_APP_NAMESPACE": namespace}
    kubectl = ["kubectl", "--namespace", namespace]
    try:
        first = inv(root, "image.build")
        assert first.returncode == 0, first.stderr[-2000:]
        assert docker("tag", f"{name}:{built_tag(first.stderr, name)}", f"{name}:0.0.1").returncode == 0
        subprocess.run(["kubectl", "create", "namespace", namespace], capture_output=True, check=True)
        applied = subprocess.run([*kubectl, "apply", "-f", str(root / "k8s")], capture_output=True, text=True)
        assert applied.returncode == 0, applied.stderr  # the user's own manifests, applied as they are

        (root / "app" / "version.txt").write_text("2\n")
        rolled = inv(root, "image.rollout", env=env)
        assert rolled.returncode == 0, rolled.stderr[-3000:]
        tag = built_tag(rolled.stderr, name)
        assert f"set image deployment/{name}-web web={name}:{tag}" in rolled.stderr
        assert f"ready: deployment/{name}-web" in rolled.stderr
        pods = json.loads(subprocess.run([*kubectl, "get", "pods", "-o", "json"], capture_output=True, text=True).stdout)
        running = {cs["imageID"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")
                   for cs in p["status"].get("containerStatuses", []) if cs.get("ready")}
        assert running == {f"docker://{image_id(f'{name}:{tag}')}"}

        again = inv(root, "image.rollout", env=env)  # nothing changed: no build, no set image
        assert again.returncode == 0, again.stderr[-3000:]
        assert "docker build" not in again.stderr and "set image" not in again.stderr
        assert f"deployment/{name}-web: already runs {name}:{tag}" in again.stderr
    finally:
        # The pods go first (foreground), so no container holds the images the fixture then removes.
        subprocess.run([*kubectl, "delete", "deployments", "--all", "--cascade=foreground", "--timeout=60s"],
                       capture_output=True)
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
                       capture_output=True)
