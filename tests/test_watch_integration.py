"""`inv watch` on the real cluster: an edit to examples/hello ends with the new tag running."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import inv, make_app
from watch_helpers import Running, cluster_env, namespace, watch_after_up

from devloop.core import images

pytestmark = pytest.mark.integration


def running_images(ns: str) -> dict[str, tuple[str, str]]:
    """pod -> (image in the pod's spec, imageID it runs) of each live (not terminating) hello pod.

    The spec's image, not the status's: when two tags name one image ID (same content), the runtime
    may report either tag in the status."""
    out = subprocess.run(["kubectl", "--namespace", ns, "get", "pods", "-l", "app=hello", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    found = {}
    for pod in json.loads(out)["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        spec = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
        for status in pod["status"].get("containerStatuses", []):
            found[f"{pod['metadata']['name']}/{status['name']}"] = (spec[status["name"]], status.get("imageID", ""))
    return found


def test_an_edit_ends_with_the_new_tag_running(cluster: str, base_image: str, tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with namespace("kit-watch") as ns:
        env = cluster_env(base_image, ns)
        first = inv(app, "up", env=env)
        assert first.returncode == 0, first.stderr
        old_tag = inv(app, "image.tag", env=env).stdout.strip()

        watcher = Running(app, "watch", "--cycles", "1", env=env)
        try:
            watcher.wait_for(r"^watching ", 60)
            (app / "app" / "www" / "version.txt").write_text("edited by the watch test\n")
            with (app / "app" / "worker.sh").open("a") as script:  # outside the sync rules: the batch rebuilds
                script.write("# edited by the watch test\n")
            (app / "README.md").write_text("ignored: .dockerignore leaves *.md out\n")
            assert watcher.proc.wait(timeout=240) == 0, watcher.text
        finally:
            watcher.stop()

        new_tag = inv(app, "image.tag", env=env).stdout.strip()
        assert new_tag != old_tag
        assert re.search(r"── cycle 1: app/www/version.txt, app/worker.sh changed \(rebuild hello: app/worker.sh is outside "
                         r"every sync rule\)|── cycle 1: app/worker.sh, app/www/version.txt changed \(rebuild hello: "
                         r"app/worker.sh is outside every sync rule\)", watcher.text), watcher.text
        assert "README.md" not in watcher.text.split("── cycle 1:")[1].splitlines()[0]
        assert "── cycle 1 ready: build " in watcher.text and "save→ready " in watcher.text

        image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", new_tag],
                                  check=True, capture_output=True, text=True).stdout.strip()
        running = running_images(ns)
        assert len(running) == 3, running  # 2 web + 1 worker
        for pod, (image, ref) in running.items():
            assert image.endswith(new_tag), (pod, image)
            assert ref.endswith(image_id), (pod, ref)
        served = subprocess.run(["kubectl", "--namespace", ns, "exec", "deploy/hello-web", "--", "wget", "-qO-",
                                 "http://127.0.0.1:8080/version.txt"], capture_output=True, text=True, timeout=60)
        assert served.stdout.strip() == "edited by the watch test", served.stderr


def test_the_next_cycles_wait_uses_the_watches_kept_open_and_sees_the_new_rollout(cluster: str, base_image: str,
                                                                                  tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with namespace("kit-watch-kept") as ns:
        env = cluster_env(base_image, ns)
        watcher = watch_after_up(app, env, "--cycles", "2")
        try:
            for k in (1, 2):  # outside every sync rule: each save rebuilds and rolls out
                with (app / "app" / "worker.sh").open("a") as script:
                    script.write(f"# edit {k}\n")
                (app / "app" / "www" / "version.txt").write_text(f"edit {k}\n")
                watcher.wait_for(rf"── cycle {k} ready", 240)
            assert watcher.proc.wait(timeout=60) == 0, watcher.text
        finally:
            watcher.stop()
        second = watcher.text.split("── cycle 2:")[1]
        assert "watching pods, deployments, replicasets (open since an earlier cycle) until ready" in second, second
        assert "get deployments,statefulsets,daemonsets,jobs,replicasets,pods" not in second  # no listing at all
        assert "did not show the apply" not in second
        tag = inv(app, "image.tag", env=env).stdout.strip()
        running = running_images(ns)
        assert len(running) == 3 and all(image.endswith(tag) for image, _ in running.values()), running
        served = subprocess.run(["kubectl", "--namespace", ns, "exec", "deploy/hello-web", "--", "wget", "-qO-",
                                 "http://127.0.0.1:8080/version.txt"], capture_output=True, text=True, timeout=60)
        assert served.stdout.strip() == "edit 2", served.stderr


def tag_now(app: Path, base_image: str) -> str:
    """The tag hello's files give right now (the hash `inv image.tag` prints, without starting a process)."""
    return images.build_inputs(app, app / "Dockerfile", {"BASE_IMAGE": base_image}).tag


def test_the_build_starts_as_the_save_settles_and_a_save_during_it_means_building_again(
        cluster: str, base_image: str, tmp_path: Path) -> None:
    """Cycle 1: its build starts long before the quiet window ends and is tagged. Cycle 2: a save while that
    build runs: docker may have read the newer file, so that build is stopped, stays untagged, and the cycle
    builds again."""
    app = make_app(tmp_path)
    with (app / "Dockerfile").open("a") as dockerfile:  # a slow step after the COPY: the save comes while it runs
        dockerfile.write("RUN sleep 3\n")
    with namespace("kit-watch-early") as ns:
        env = cluster_env(base_image, ns)
        watcher = watch_after_up(app, env, "--cycles", "2", "--debounce-ms", "4000", "--max-delay-ms", "8000")
        try:
            run_id = time.time_ns()  # content no earlier run built: the build cannot be "up to date"
            written = time.monotonic()
            with (app / "app" / "worker.sh").open("a") as script:  # outside the sync rules: a rebuild
                script.write(f"# edit 1 of {run_id}\n")
            watcher.wait_for(r"^── cycle 1: app/worker.sh changed", 60)
            built_at = watcher.wait_for(r"^\$ docker build --iidfile ", 60)[1]
            assert built_at - written < 3.0  # it did not wait for the 4 s quiet window (a margin, not a speed test)
            watcher.wait_for(r"── cycle 1 ready", 240)
            first_tag = inv(app, "image.tag", env=env).stdout.strip()
            assert first_tag == f"hello:{tag_now(app, base_image)}"

            with (app / "app" / "worker.sh").open("a") as script:
                script.write(f"# edit 2 of {run_id}\n")
            watcher.wait_for(r"^\$ docker build --iidfile ", 60, watcher.wait_for(r"^── cycle 2:", 60)[0])
            set_aside_tag = f"hello:{tag_now(app, base_image)}"  # what that build's tag would be
            (app / "app" / "www" / "version.txt").write_text("saved during the build\n")
            assert watcher.proc.wait(timeout=240) == 0, watcher.text
        finally:
            watcher.stop()
        first, second = watcher.text.split("── cycle 2:", 1)
        assert "docker API: tag " in first or "$ docker tag " in first, first
        assert "   app/www/version.txt changed while it built: that build is stopped; building again" in second, second
        assert second.count("$ docker build --iidfile ") == 2, second
        assert subprocess.run(["docker", "image", "inspect", first_tag], capture_output=True).returncode == 0
        assert subprocess.run(["docker", "image", "inspect", set_aside_tag], capture_output=True).returncode != 0
        final_tag = inv(app, "image.tag", env=env).stdout.strip()
        assert final_tag not in (first_tag, set_aside_tag)
        running = running_images(ns)
        assert len(running) == 3 and all(image.endswith(final_tag) for image, _ in running.values()), running
        served = subprocess.run(["kubectl", "--namespace", ns, "exec", "deploy/hello-web", "--", "wget", "-qO-",
                                 "http://127.0.0.1:8080/version.txt"], capture_output=True, text=True, timeout=60)
        assert served.stdout.strip() == "saved during the build", served.stderr
