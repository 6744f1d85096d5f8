"""Live update on the real cluster: `inv watch` copies saved files into every running container of the image.

examples/hello runs its image in two workloads (web ×2, worker ×1): a sync reaches all three containers.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import inv, make_app
from watch_helpers import Running, cluster_env, namespace, watch_after_up

pytestmark = pytest.mark.integration


def pods(ns: str) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run(["kubectl", "--namespace", ns, "get", "pods", "-l", "app=hello", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def containers(ns: str) -> list[tuple[str, str]]:
    return [(p["metadata"]["name"], c["name"]) for p in pods(ns) for c in p["spec"]["containers"]]


def restarts(ns: str) -> dict[str, int]:
    return {f"{p['metadata']['name']}/{s['name']}": s.get("restartCount", 0)
            for p in pods(ns) for s in p["status"].get("containerStatuses", [])}


def read(ns: str, pod: str, container: str, path: str) -> str | None:
    done = subprocess.run(["kubectl", "--namespace", ns, "exec", pod, "-c", container, "--", "cat", path],
                          capture_output=True, text=True, timeout=60)
    return done.stdout if done.returncode == 0 else None


def everywhere(ns: str, path: str) -> set[str | None]:
    return {read(ns, pod, container, path) for pod, container in containers(ns)}


def served(ns: str, pod: str, path: str) -> str:
    return subprocess.run(["kubectl", "--namespace", ns, "exec", pod, "-c", "web", "--", "wget", "-qO-",
                           f"http://127.0.0.1:8080/{path}"], capture_output=True, text=True, timeout=60).stdout


def until(check, timeout: float = 60):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def with_run_command(app: Path, command: str) -> None:
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["images"]["hello"]["live_update"]["run"] = command
    (app / "invoke.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_saves_sync_into_every_container_then_a_script_change_rebuilds(cluster: str, base_image: str,
                                                                        tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with_run_command(app, "date > /app/synced-at")
    www = app / "app" / "www"
    with namespace("kit-live") as ns:
        env = cluster_env(base_image, ns)
        first = inv(app, "up", env=env)
        assert first.returncode == 0, first.stderr
        before = restarts(ns)
        assert len(containers(ns)) == 3
        watcher = Running(app, "watch", "--cycles", "4", env=env)
        try:
            watcher.wait_for(r"^watching ", 60)
            watcher.wait_for(r"\(and 2 more: a shell kept open in each container for live updates\)", 60)
            # 1. two files into two workloads' three containers, then the command
            (www / "index.html").write_text("<h1>live 1</h1>\n")
            (www / "extra.html").write_text("extra\n")
            watcher.wait_for(r"^── cycle 1 ready: live update", 60)
            assert "synced 2 file(s) of hello to 3 container(s)" in watcher.text, watcher.text
            assert " -- sh -c " not in watcher.text  # written to the shells kept open: no one-shot exec
            assert everywhere(ns, "/app/www/index.html") == {"<h1>live 1</h1>\n"}
            assert everywhere(ns, "/app/www/extra.html") == {"extra\n"}
            assert None not in everywhere(ns, "/app/synced-at")  # the command ran in each
            for pod in [p["metadata"]["name"] for p in pods(ns) if "web" in p["metadata"]["name"]]:
                assert served(ns, pod, "index.html") == "<h1>live 1</h1>\n"
            status = inv(app, "k8s.status", env=env)
            assert status.stdout.count("live-updated") == 3, status.stdout

            # 2. a deletion reaches every container too
            (www / "extra.html").unlink()
            watcher.wait_for(r"^── cycle 2 ready: live update", 60)
            assert "synced 1 file(s) (1 deleted) of hello to 3 container(s)" in watcher.text
            assert everywhere(ns, "/app/www/extra.html") == {None}

            # 3. a replacement pod gets the synced files without a save
            web = next(p["metadata"]["name"] for p in pods(ns) if "web" in p["metadata"]["name"])
            subprocess.run(["kubectl", "--namespace", ns, "delete", "pod", web, "--wait=false"], check=True,
                           capture_output=True)
            gave, _, _ = watcher.wait_for(r"gave 1 new container\(s\) of hello the synced files", 90)
            assert until(lambda: everywhere(ns, "/app/www/index.html") == {"<h1>live 1</h1>\n"}, 30)
            assert len(containers(ns)) == 3
            # the new container got them by a one-shot exec, then a shell of its own: the next sync uses it
            watcher.wait_for(r" exec -i hello-web-\S+ -c web -- sh &$", 30, gave)
            (www / "index.html").write_text("<h1>live 2</h1>\n")
            began, _, _ = watcher.wait_for(r"^── cycle 3: ", 60, gave)
            ready, _, _ = watcher.wait_for(r"^── cycle 3 ready: live update", 60, began)
            assert " -- sh -c " not in "\n".join(line for _, line in watcher.lines[began:ready])
            assert everywhere(ns, "/app/www/index.html") == {"<h1>live 2</h1>\n"}

            # 4. a file outside the sync rules: rebuild, and the new image has every change
            with (app / "app" / "worker.sh").open("a") as script:
                script.write("# touched by the live update test\n")
            watcher.wait_for(r"── cycle 4: app/worker.sh changed \(rebuild hello: app/worker.sh is outside every sync rule\)", 60)
            assert watcher.proc.wait(timeout=240) == 0, watcher.text
        finally:
            watcher.stop()
        assert "── cycle 4 ready: build " in watcher.text, watcher.text
        assert "(and 2 more: a shell kept open" in watcher.text.split("── cycle 4 ready: build ")[1]  # new pods' shells
        tag = inv(app, "image.tag", env=env).stdout.strip()
        assert {c["image"].rsplit("/", 1)[-1] for p in pods(ns) for c in p["spec"]["containers"]} == {tag}
        assert everywhere(ns, "/app/www/index.html") == {"<h1>live 2</h1>\n"}  # built in, not synced
        assert everywhere(ns, "/app/synced-at") == {None}  # fresh containers
        assert "live-updated" not in inv(app, "k8s.status", env=env).stdout
        surviving = {k: v for k, v in restarts(ns).items() if k in before}
        assert all(v == 0 for v in surviving.values()), surviving


def test_a_failing_command_after_sync_falls_back_to_a_rebuild(cluster: str, base_image: str, tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with_run_command(app, "exit 3")
    with namespace("kit-live-fail") as ns:
        env = cluster_env(base_image, ns)
        watcher = watch_after_up(app, env, "--cycles", "1")
        try:
            (app / "app" / "www" / "index.html").write_text("<h1>after a failed command</h1>\n")
            assert watcher.proc.wait(timeout=240) == 0, watcher.text
        finally:
            watcher.stop()
        assert "live update failed: the command after sync (exit 3) failed in pod/" in watcher.text
        assert "(and 2 more container(s))" in watcher.text
        assert "rebuilding instead" in watcher.text and "── cycle 1 ready: build " in watcher.text
        assert everywhere(ns, "/app/www/index.html") == {"<h1>after a failed command</h1>\n"}
