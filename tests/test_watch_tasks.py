"""`inv watch` and `inv dev` against a strict mock context: the exact commands of each cycle, failures
that keep the loop going, the lock, the numeric flags and the stop signals. Events are synthetic."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HELLO, make_app
from invoke import Exit
from strict import StrictContext, fail, ok, rx
from watchdog.events import FileModifiedEvent

from devloop import children, docker_api, livesync, shell, watch, watcher, workflow
from devloop.core import converge, lock
from devloop.core import images as core_images
from devloop.core.errors import KitError

CONTEXT = "kubectl config current-context"
GET = "kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json --request-timeout=10s"
APPLY = "kubectl --context k8s-local apply -f .kit/rendered-dev.yaml"
LIST = f"kubectl --context k8s-local get {converge.listing_kinds()} -l devloop/app=hello,devloop/env=dev -o json"
DELETE = rx(r"^kubectl --context k8s-local delete .* -l devloop/app=hello,devloop/env=dev --ignore-not-found")


def ready_listing() -> str:
    def deployment(name: str, replicas: int) -> dict[str, Any]:
        return {"kind": "Deployment", "metadata": {"name": name, "generation": 1}, "spec": {"replicas": replicas},
                "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                           "readyReplicas": replicas, "availableReplicas": replicas}}
    return json.dumps({"items": [deployment("hello-web", 2), deployment("hello-worker", 1)]})


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = make_app(tmp_path)
    monkeypatch.chdir(target)
    monkeypatch.setattr(shell, "spawn", lambda *a, **kw: None)  # no kubectl --watch children in these tests
    monkeypatch.setattr(livesync.LiveSync, "warm", lambda self: None)  # shells kept open: tests of their own
    monkeypatch.setattr(children, "stop_descendants", lambda *a, **kw: [])  # never signal pytest's own children
    monkeypatch.setattr(docker_api, "daemon_url", lambda env: None)  # the mock context scripts `docker image inspect`
    return target


REAL_WARM = livesync.LiveSync.warm


def config(app_dir: Path) -> dict[str, Any]:
    app = yaml.safe_load((HELLO / "invoke.yaml").read_text())["app"]
    app["root"] = str(app_dir)
    app["images"]["hello"]["build_args"] = {"BASE_IMAGE": "busybox:1"}
    app["cluster"] = dict(app["cluster"], provider="docker", ip="127.0.0.1")
    return app


def tag(app_dir: Path) -> str:
    return core_images.build_inputs(app_dir, app_dir / "Dockerfile", {"BASE_IMAGE": "busybox:1"}).tag


def inspect(t: str) -> str:
    return f"docker image inspect --format '{{{{.Id}}}}' hello:{t}"


def edits(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> list[watcher.Watcher]:
    """Instead of starting an observer, report these paths as modified (as watchdog would)."""
    started: list[watcher.Watcher] = []

    def start(self: watcher.Watcher) -> None:
        started.append(self)
        self.watches = [lock_free_watch(self)]
        for path in paths:
            self.handler.dispatch(FileModifiedEvent(str(path)))

    monkeypatch.setattr(watcher.Watcher, "start", start)
    monkeypatch.setattr(watcher.Watcher, "stop", lambda self: None)
    return started


def lock_free_watch(w: watcher.Watcher) -> Any:
    from devloop.core.watchfilter import Watch

    return Watch(w.filter.root, True)


def shapes(commands: list[str]) -> list[str]:
    return [" ".join(c.split()[:3]) if not c.startswith("kubectl --context") else " ".join(c.split()[:4])
            for c in commands]


class Building(StrictContext):
    """`docker build --iidfile F` writes the built image's ID to F, as the docker CLI does."""

    def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        result = super().run(command, *args, **kwargs)
        named = re.search(r"--iidfile (\S+)", command)
        if named and result.exited == 0:
            Path(named.group(1)).write_text("sha256:5eed00000000\n")
        return result


def builds_once(t: str) -> dict[Any, Any]:
    """A cycle that builds tag ``t`` (untagged, then tagged), applies, and finds everything ready."""
    return {
        CONTEXT: ok("k8s-local\n"),
        inspect(t): [fail(1, stderr="Error: No such image"), ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile \S+/hello\.iid --file "): ok(),
        f"docker tag sha256:5eed00000000 hello:{t}": ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }


@pytest.mark.parametrize(("changed", "expected"), [
    ("app/web.sh", [CONTEXT, "docker image inspect", "docker build --iidfile", "docker tag sha256:5eed00000000",
                    "docker image inspect", "kubectl --context k8s-local get", "kubectl --context k8s-local apply",
                    "kubectl --context k8s-local get"]),
    ("k8s/web-deploy.yaml", [CONTEXT, "kubectl --context k8s-local get", "kubectl --context k8s-local apply",
                             "kubectl --context k8s-local get"]),
    ("Dockerfile", [CONTEXT, "docker image inspect", "docker build --iidfile", "docker tag sha256:5eed00000000",
                    "docker image inspect", "kubectl --context k8s-local get", "kubectl --context k8s-local apply",
                    "kubectl --context k8s-local get"]),
])
def test_one_cycle_runs_exactly_these_commands(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], changed: str,
                                               expected: list[str]) -> None:
    t = tag(app_dir)
    c = Building(builds_once(t), app=config(app_dir), repeat=False)
    edits(monkeypatch, app_dir / changed)
    watch.watch(c, cycles="1", debounce_ms="1")
    assert shapes(c.commands) == expected
    err = capsys.readouterr().err
    assert f"── cycle 1: {changed} changed" in err
    assert ("manifests only: no rebuild" in err) is (changed.startswith("k8s/"))
    assert "── cycle 1 ready: " in err and "save→ready" in err
    assert not list((app_dir / ".kit").glob("lock-*.json"))  # released on the way out


PODS = "kubectl --context k8s-local get pods -l devloop/app=hello,devloop/env=dev -o json"


def hello_pods(tag: str, waiting: str = "") -> str:
    def one(name: str, container: str) -> dict[str, Any]:
        state = {"waiting": {"reason": waiting}} if waiting and container == "worker" else {"running": {}}
        return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
                "spec": {"containers": [{"name": container, "image": f"hello:{tag}"}]},
                "status": {"containerStatuses": [{"name": container, "state": state, "restartCount": 0}]}}
    return json.dumps({"items": [one("hello-web-1", "web"), one("hello-web-2", "web"), one("hello-worker-1", "worker")]})


def test_a_save_under_a_sync_rule_is_copied_into_every_container_without_a_build(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:

    sent: list[tuple[list[str], bytes]] = []
    monkeypatch.setattr(livesync.shell, "feed", lambda c, argv, data, **kw: sent.append((list(argv), data)) or ok())
    c = StrictContext({CONTEXT: ok("k8s-local\n"), PODS: ok(hello_pods(tag(app_dir)))}, app=config(app_dir), repeat=False)
    (app_dir / "app" / "www" / "index.html").write_text("<h1>synced</h1>\n")
    edits(monkeypatch, app_dir / "app" / "www" / "index.html")
    watch.watch(c, cycles="1", debounce_ms="1")
    assert c.commands == [CONTEXT, PODS]  # no build, no apply, no rollout
    assert sorted(argv[5] for argv, _ in sent) == ["hello-web-1", "hello-web-2", "hello-worker-1"]
    argv, data = sent[0]
    assert argv[:5] == ["kubectl", "--context", "k8s-local", "exec", "-i"]
    assert argv[argv.index("--"):argv.index("--") + 3] == ["--", "sh", "-c"] and argv[-1] == "sh"  # no deletions
    assert b"<h1>synced</h1>" in data and b"app/www/index.html" in data
    err = capsys.readouterr().err
    assert "── cycle 1: app/www/index.html changed (live update hello)" in err
    assert "synced 1 file(s) of hello to 3 container(s)" in err and "── cycle 1 ready: live update sync " in err
    marks = json.loads((app_dir / ".kit" / "live-dev.json").read_text())
    assert sorted(marks) == ["uid-hello-web-1/web", "uid-hello-web-2/web", "uid-hello-worker-1/worker"]


def test_watch_opens_a_shell_in_each_container_as_it_starts_and_writes_each_sync_to_it(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from devloop import liveshell

    kept: list[list[str]] = []
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(livesync.LiveSync, "warm", REAL_WARM)
    monkeypatch.setattr(liveshell.Shells, "keep", lambda self, targets: kept.append(sorted(t.pod for t in targets)))
    monkeypatch.setattr(liveshell.Shells, "ask", lambda self, target, request, timeout=60:
                        asked.append((target.pod, request)) or (0, ""))
    monkeypatch.setattr(livesync.shell, "feed", lambda *a, **kw: pytest.fail("a one-shot exec: the shell was open"))
    c = StrictContext({CONTEXT: ok("k8s-local\n"), PODS: [ok(hello_pods(tag(app_dir)))] * 2}, app=config(app_dir),
                      repeat=False)
    (app_dir / "app" / "www" / "index.html").write_text("<h1>synced</h1>\n")
    edits(monkeypatch, app_dir / "app" / "www" / "index.html")
    watch.watch(c, cycles="1", debounce_ms="1")
    everyone = ["hello-web-1", "hello-web-2", "hello-worker-1"]
    assert kept == [everyone, everyone]  # as it starts, and after the sync (a container that was synced otherwise)
    assert sorted(pod for pod, _ in asked) == everyone
    request = asked[0][1]
    assert "| tar -xf - -C / || exit 90" in request and "rm -rf" not in request
    assert "synced 1 file(s) of hello to 3 container(s)" in capsys.readouterr().err


def test_a_live_update_starts_as_its_save_settles_not_after_the_debounce(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from devloop.core import debounce

    hurried: list[tuple[str, ...]] = []
    real = debounce.Debouncer.hurry

    def hurry(self: debounce.Debouncer, events: int) -> None:
        hurried.append(tuple(self._pending))
        real(self, events)

    monkeypatch.setattr(debounce.Debouncer, "hurry", hurry)
    monkeypatch.setattr(livesync.shell, "feed", lambda c, argv, data, **kw: ok())
    c = StrictContext({CONTEXT: ok("k8s-local\n"), PODS: ok(hello_pods(tag(app_dir)))}, app=config(app_dir), repeat=False)
    (app_dir / "app" / "www" / "index.html").write_text("<h1>synced</h1>\n")
    edits(monkeypatch, app_dir / "app" / "www" / "index.html")
    watch.watch(c, cycles="1", debounce_ms="5000")  # else the quiet window: 5 s
    assert hurried == [("app/www/index.html",)]
    assert "── cycle 1: app/www/index.html changed (live update hello)" in capsys.readouterr().err


def test_a_rebuild_still_waits_for_the_debounce(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devloop.core import debounce

    hurried: list[int] = []
    monkeypatch.setattr(debounce.Debouncer, "hurry", lambda self, events: hurried.append(events))
    edits(monkeypatch, app_dir / "app" / "web.sh")
    watch.watch(Building(builds_once(tag(app_dir)), app=config(app_dir), repeat=False), cycles="1", debounce_ms="300")
    assert hurried == []


def test_a_container_that_cannot_take_the_sync_means_a_rebuild(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    t = tag(app_dir)
    c = Building({
        CONTEXT: ok("k8s-local\n"),
        PODS: ok(hello_pods(t, waiting="CrashLoopBackOff")),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): ok(),
        rx(r"^docker tag sha256:5eed00000000 hello:"): ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }, app=config(app_dir), repeat=False)
    (app_dir / "app" / "www" / "index.html").write_text("<h1>not synced</h1>\n")
    edits(monkeypatch, app_dir / "app" / "www" / "index.html")
    watch.watch(c, cycles="1", debounce_ms="1")
    err = capsys.readouterr().err
    assert "live update failed: pod/hello-worker-1 container worker is not running (CrashLoopBackOff); rebuilding instead" in err
    assert "── cycle 1 ready: build " in err
    assert any(cmd.startswith("docker build") for cmd in c.commands)


def fails_then_builds() -> dict[Any, Any]:
    """The first build fails (a broken COPY), the next one builds."""
    return {
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), fail(1, stderr="Error: No such image"),
                                       ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): [fail(1, stdout="Step 3/9 : COPY app/ /app/\nCOPY failed: no such file"),
                                          ok()],
        rx(r"^docker tag sha256:5eed00000000 hello:"): ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }


def test_a_fix_saved_while_a_build_fails_is_built_in_the_same_cycle(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")

    class FixWhileBuilding(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            result = super().run(command, *args, **kwargs)
            if command.startswith("docker build") and len(builds(self)) == 1:  # the fix, saved as the build fails
                (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho fixed\n")
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
            return result

    c = FixWhileBuilding(fails_then_builds(), app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="1")
    err = capsys.readouterr().err
    assert "   app/web.sh changed while it built: that build failed; building again" in err
    assert "── cycle 1 ready" in err and "failed in build" not in err
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")] == [f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}"]


def test_a_failed_build_is_reported_and_the_next_save_retries(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")

    c = Building(fails_then_builds(), app=config(app_dir), repeat=False)

    def fix_after_cycle_1(self: watch.Cycles, number: int, batch: Any, plan: Any) -> bool:
        done = real(self, number, batch, plan)
        if number == 1:  # the user reads the error, then saves the fix
            (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho fixed\n")
            started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
        return done

    real = watch.Cycles.__call__
    monkeypatch.setattr(watch.Cycles, "__call__", fix_after_cycle_1)
    watch.watch(c, cycles="2", debounce_ms="1")
    err = capsys.readouterr().err
    assert "error: image hello: docker build failed at Step 3/9 : COPY app/ /app/" in err
    assert "── cycle 1 failed in build" in err and "still watching: the next change retries" in err
    assert "── cycle 2: app/web.sh changed (rebuild hello: app/web.sh is outside every sync rule)" in err and "── cycle 2 ready" in err
    assert len(builds(c)) == 2


def test_a_live_update_after_a_failed_build_says_what_the_containers_run(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:

    monkeypatch.setattr(livesync.shell, "feed", lambda c, argv, data, **kw: ok())
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    c = Building({
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
        rx(r"^docker build --iidfile "): fail(1, stdout="Step 3/9 : COPY app/ /app/\nCOPY failed: no such file"),
        PODS: ok(hello_pods(tag(app_dir))),
    }, app=config(app_dir), repeat=False)

    def sync_after_cycle_1(self: watch.Cycles, number: int, batch: Any, plan: Any) -> bool:
        done = real(self, number, batch, plan)
        if number == 1:  # the build failed; the user saves a page under a sync rule
            (app_dir / "app" / "www" / "index.html").write_text("<h1>synced</h1>\n")
            started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "www" / "index.html")))
        return done

    real = watch.Cycles.__call__
    monkeypatch.setattr(watch.Cycles, "__call__", sync_after_cycle_1)
    watch.watch(c, cycles="2", debounce_ms="1")
    err = capsys.readouterr().err.split("── cycle 2:")[1]
    assert "ready: live update" in err
    assert "the last build failed (see above): the containers run the image deployed before it, with the synced files" in err


def test_a_rebuild_starts_building_as_the_save_settles_and_tags_the_build_it_uses(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    edits(monkeypatch, app_dir / "app" / "web.sh")
    t = tag(app_dir)
    c = Building(builds_once(t), app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="1000")  # the build starts as the save settles, not after 1000 ms
    assert shapes(c.commands) == [CONTEXT, "docker image inspect", "docker build --iidfile", "docker tag sha256:5eed00000000",
                                  "docker image inspect", "kubectl --context k8s-local get",
                                  "kubectl --context k8s-local apply", "kubectl --context k8s-local get"]
    err = capsys.readouterr().err
    header = "── cycle 1: app/web.sh changed (rebuild hello: app/web.sh is outside every sync rule)"
    assert err.count(header) == 1 and err.index(header) < err.index("$ docker build --iidfile")
    assert "saved again" not in err and "── cycle 1 ready: build " in err


def test_a_save_during_that_build_sets_it_aside_untagged_and_builds_again(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")

    class SaveWhileBuilding(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            first = command.startswith("docker build --iidfile") and len(builds(self)) == 0
            if first:  # docker may read this file
                (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho saved again\n")
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
            result = super().run(command, *args, **kwargs)
            if first:
                Path(command.split("--iidfile ")[1].split()[0]).write_text("sha256:a51de0000000\n")
            return result

    c = SaveWhileBuilding({
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), fail(1, stderr="Error: No such image"),
                                       ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): [ok(), ok()],
        rx(r"^docker tag "): ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }, app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="1000")
    assert shapes(c.commands) == [CONTEXT, "docker image inspect", "docker build --iidfile", "docker image inspect",
                                  "docker build --iidfile", "docker tag sha256:5eed00000000", "docker image inspect",
                                  "kubectl --context k8s-local get", "kubectl --context k8s-local apply",
                                  "kubectl --context k8s-local get"]
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")] == \
        [f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}"]  # only the second build, with the newer file's tag
    err = capsys.readouterr().err
    assert "   app/web.sh changed after it started: that build is set aside untagged; building again" in err
    assert err.count("── cycle 1: app/web.sh changed") == 1 and "── cycle 1 ready: build " in err
    # both builds are noted as this app's: image.prune removes the set-aside one
    assert (app_dir / ".kit" / "built-images").read_text() == "sha256:a51de0000000 hello\nsha256:5eed00000000 hello\n"


def builds(c: StrictContext) -> list[str]:
    return [cmd for cmd in c.commands if cmd.startswith("docker build")]


@pytest.mark.parametrize("debounce_ms", ["300", "1"], ids=["early build", "build as the cycle begins"])
def test_a_save_after_the_cycle_took_its_batch_sets_its_build_aside_and_the_cycle_builds_again(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], debounce_ms: str) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    first = tag(app_dir)

    class SaveLateInTheBuild(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build --iidfile") and len(builds(self)) == 0:
                time.sleep(0.5)  # the quiet window ends: the cycle has taken its batch and waits for this build
                (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho saved late\n")
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
            return super().run(command, *args, **kwargs)  # ...and docker may read that newer file now

    c = SaveLateInTheBuild({
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), fail(1, stderr="Error: No such image"),
                                       ok("sha256:5eed00000000\n"), ok("sha256:5eed00000000\n"), ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): [ok(), ok()],
        rx(r"^docker tag "): ok(),
        LIST: [ok('{"items": []}'), ok('{"items": []}')],
        APPLY: [ok(), ok()],
        GET: [ok(ready_listing()), ok(ready_listing())],
    }, app=config(app_dir), repeat=False)
    watch.watch(c, cycles="2", debounce_ms=debounce_ms)
    second = tag(app_dir)
    assert second != first
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")] == [f"docker tag sha256:5eed00000000 hello:{second}"]
    assert len(builds(c)) == 2  # cycle 2 finds its files built already
    err = capsys.readouterr().err
    assert "   app/web.sh changed while it built: that build is set aside untagged; building again" in err
    assert "── cycle 1 ready: build " in err
    assert f"image hello:{second}: up to date" in err.split("── cycle 2:")[1] and "── cycle 2 ready" in err


def append_log(w: watcher.Watcher, log: Path) -> None:
    """A line written to a log in the build context, as a server does all the time; the watcher reports it."""
    with log.open("a") as out:
        out.write("GET / 200\n")
    w.handler.dispatch(FileModifiedEvent(str(log)))


class LogWrittenAllTheTime(Building):
    """During each docker build a line goes to app/dev.log (and, with ``user_saves``, the user saves that file
    during the first build)."""

    def __init__(self, started: list[watcher.Watcher], app_dir: Path, *args: Any, user_saves: Path | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # set on the object itself: a Context keeps attributes set the usual way in (a copy of) its config
        object.__setattr__(self, "_started", started)
        object.__setattr__(self, "_log", app_dir / "app" / "dev.log")
        object.__setattr__(self, "_user_saves", user_saves)

    def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        if command.startswith("docker build --iidfile"):
            append_log(self._started[0], self._log)
            if self._user_saves and not builds(self):
                self._user_saves.write_text("#!/bin/sh\necho saved during the build\n")
                self._started[0].handler.dispatch(FileModifiedEvent(str(self._user_saves)))
        return super().run(command, *args, **kwargs)


def test_a_file_that_changes_during_every_build_fails_the_cycle_naming_it(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    c = LogWrittenAllTheTime(started, app_dir, {
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
        rx(r"^docker build --iidfile "): ok(),
    }, app=config(app_dir))
    with pytest.raises(Exit) as raised:
        watch.watch(c, cycles="1", debounce_ms="1")
    assert raised.value.code == 1
    assert len(builds(c)) == watch.BUILD_ATTEMPTS and not any(cmd.startswith(("docker tag", "kubectl")) for cmd in c.commands
                                                              if cmd != CONTEXT)
    err = capsys.readouterr().err
    assert "error: files changed under each of 3 builds in a row (app/dev.log): a tag must name what its image holds" in err
    assert "keep it out of the build context with .dockerignore" in err and "── cycle 1 failed in build" in err


def test_after_that_failure_the_file_alone_starts_no_cycle_and_a_fix_to_dockerignore_does(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No busy loop of failing cycles while something writes a log in the build context: the user's fix ends it."""
    started = edits(monkeypatch, app_dir / "app" / "web.sh")

    def fix_later(self: watch.Cycles, number: int, batch: Any, plan: Any) -> bool:
        done = real(self, number, batch, plan)
        if number == 1:
            append_log(started[0], app_dir / "app" / "dev.log")  # the log goes on: alone, it must not start cycle 2

            def fix() -> None:  # the user reads the advice and keeps the log out of the build context
                (app_dir / ".dockerignore").write_text((app_dir / ".dockerignore").read_text() + "app/dev.log\n")
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / ".dockerignore")))
            threading.Timer(0.5, fix).start()
        return done

    real = watch.Cycles.__call__
    monkeypatch.setattr(watch.Cycles, "__call__", fix_later)
    c = LogWrittenAllTheTime(started, app_dir, {
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image")] * 4 + [ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): [ok()] * (watch.BUILD_ATTEMPTS + 1),
        rx(r"^docker tag sha256:5eed00000000 hello:"): ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }, app=config(app_dir), repeat=False)
    watch.watch(c, cycles="2", debounce_ms="1")
    err = capsys.readouterr().err
    assert "── cycle 1 failed in build" in err
    assert "   changing all the time: app/dev.log; from now on a change there alone starts no cycle" in err
    second = err.split("── cycle 2:")[1]
    assert second.startswith(" .dockerignore changed") and "── cycle 2 ready" in second
    assert len(builds(c)) == watch.BUILD_ATTEMPTS + 1


def test_only_files_that_changed_under_every_build_are_muted(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The user's own save during one of the builds is not "changing all the time": its next change still counts."""
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    c = LogWrittenAllTheTime(started, app_dir, {CONTEXT: ok("k8s-local\n"),
                                                rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
                                                rx(r"^docker build --iidfile "): ok()}, app=config(app_dir),
                             user_saves=app_dir / "app" / "web.sh")  # once, during the first build
    with pytest.raises(Exit):
        watch.watch(c, cycles="1", debounce_ms="1")
    err = capsys.readouterr().err
    assert "   app/web.sh, app/dev.log changed while it built" in err
    assert "error: files changed under each of 3 builds in a row (app/dev.log):" in err
    assert "   changing all the time: app/dev.log; from now on" in err


def test_dev_checks_the_build_of_its_first_cycle_too(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch)
    monkeypatch.setattr(watch, "start_followers", lambda *a: [])
    web = app_dir / "app" / "web.sh"

    class SaveDuringUp(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build") and not builds(self):
                web.write_text("#!/bin/sh\necho saved during up\n")  # docker may read this
                started[0].handler.dispatch(FileModifiedEvent(str(web)))
            return super().run(command, *args, **kwargs)

    c = SaveDuringUp({
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), fail(1, stderr="Error: No such image")]
                                      + [ok("sha256:5eed00000000\n")] * 3,
        rx(r"^docker build --iidfile "): [ok(), ok()],
        rx(r"^docker tag "): ok(),
        LIST: [ok('{"items": []}')] * 2, APPLY: [ok()] * 2, GET: [ok(ready_listing())] * 2,
    }, app=config(app_dir), repeat=False)
    watch.dev(c, cycles="1", debounce_ms="1", no_logs=True, no_forwards=True)
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")][0] == \
        f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}"  # the first tag names the newer file
    err = capsys.readouterr().err
    assert "   app/web.sh changed while it built: that build is set aside untagged; building again" in err.split("── cycle 1")[0]


def test_a_manifest_saved_while_the_build_runs_does_not_set_it_aside(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    started = edits(monkeypatch, app_dir / "app" / "web.sh")

    class ManifestSavedMeanwhile(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build --iidfile"):  # no build reads a manifest
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "k8s" / "configmap.yaml")))
            return super().run(command, *args, **kwargs)

    c = ManifestSavedMeanwhile({
        CONTEXT: ok("k8s-local\n"),
        inspect(tag(app_dir)): [fail(1, stderr="Error: No such image"), ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): ok(),
        f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}": ok(),
        LIST: ok('{"items": []}'), APPLY: ok(), GET: ok(ready_listing()),
    }, app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="300")
    assert len(builds(c)) == 1
    assert "changed while it built" not in capsys.readouterr().err


@pytest.mark.parametrize("debounce_ms", ["3000", "1"], ids=["early build, not yet taken", "build the cycle took"])
def test_ctrl_c_while_a_build_hashes_its_context_ends_the_watch_at_once(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, debounce_ms: str) -> None:
    from devloop import build

    edits(monkeypatch, app_dir / "app" / "web.sh")
    real, hashing = build.compute_plan, threading.Event()

    def slow_plan(app: Any, image: Any) -> Any:
        hashing.set()
        time.sleep(3.0)  # a big context (node_modules not in .dockerignore) takes seconds to hash
        return real(app, image)

    monkeypatch.setattr(build, "compute_plan", slow_plan)
    c = Building({CONTEXT: ok("k8s-local\n")}, app=config(app_dir))
    interrupted: list[float] = []

    def interrupt() -> None:
        hashing.wait(5)
        interrupted.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(Exit):
            watch.watch(c, debounce_ms=debounce_ms)
        assert time.monotonic() - interrupted[0] < 1.0  # the build's thread is not waited for
    finally:
        shell.STOPPING.clear()
        for thread in build_threads():  # it ends once hashed (it starts no build): not left to later tests
            thread.join(5)


def build_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "devloop build" and t.is_alive()]


def test_a_build_started_for_a_file_that_is_gone_again_is_stopped_and_left_untagged(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from watchdog.events import FileCreatedEvent, FileDeletedEvent

    new = app_dir / "app" / "new.sh"
    new.write_text("x\n")
    started: list[watcher.Watcher] = []

    def start(self: watcher.Watcher) -> None:
        started.append(self)
        self.watches = [lock_free_watch(self)]
        self.handler.dispatch(FileCreatedEvent(str(new)))

    monkeypatch.setattr(watcher.Watcher, "start", start)
    monkeypatch.setattr(watcher.Watcher, "stop", lambda self: None)
    built = threading.Event()
    stopped = stops_builds(monkeypatch)

    class GoneWhileBuilding(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build"):
                new.unlink()  # created and gone again: the batch leaves it out
                started[0].handler.dispatch(FileDeletedEvent(str(new)))
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "k8s" / "web-deploy.yaml")))
                if stopped.killed.wait(5):  # still building as the cycle begins, until the cycle stops it
                    built.set()
            return super().run(command, *args, **kwargs)

    c = GoneWhileBuilding({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
                           rx(r"^docker build --iidfile "): ok(), LIST: ok('{"items": []}'), APPLY: ok(),
                           GET: ok(ready_listing())}, app=config(app_dir))
    before = set(build_threads())
    watch.watch(c, cycles="1", debounce_ms="300")
    assert built.is_set() and not set(build_threads()) - before
    build = next(cmd for cmd in c.commands if cmd.startswith("docker build"))
    assert len(stopped.markers) == 1 and f"--iidfile {stopped.markers[0]}/hello.iid" in build  # only that build
    assert not any(cmd.startswith("docker tag") for cmd in c.commands)
    err = capsys.readouterr().err
    assert "── cycle 1: k8s/web-deploy.yaml changed (manifests only: no rebuild)" in err and "── cycle 1 ready" in err


def stopped_then_builds() -> dict[Any, Any]:
    """A cycle whose first build is stopped (docker ends with 143), whose second builds, and which then deploys."""
    return {
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): [fail(1, stderr="Error: No such image"), fail(1, stderr="Error: No such image"),
                                       ok("sha256:5eed00000000\n")],
        rx(r"^docker build --iidfile "): [fail(143, stdout="Step 1/9 : ARG BASE_IMAGE"), ok()],
        rx(r"^docker tag "): ok(),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
    }


class StoppedBuilds:
    """What `children.stop_running` was asked to stop; ``killed`` releases a fake build waiting on it."""

    def __init__(self) -> None:
        self.markers: list[str] = []
        self.killed = threading.Event()

    def __call__(self, marker: str, grace: float | None = None) -> list[int]:
        self.markers.append(marker)
        self.killed.set()
        return []


def stops_builds(monkeypatch: pytest.MonkeyPatch) -> StoppedBuilds:
    from devloop import prebuild

    stopped = StoppedBuilds()
    monkeypatch.setattr(prebuild.children, "stop_running", stopped)
    return stopped


def test_saving_again_before_the_cycle_begins_stops_the_early_build_and_starts_the_next_as_that_save_settles(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Saved twice within the quiet window: the second build starts as the second save settles, not as the cycle
    begins (nor once the first build has ended)."""
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    stopped = stops_builds(monkeypatch)
    before_the_cycle: list[bool] = []

    class SaveAgain(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build --iidfile"):
                if not builds(self):
                    (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho saved again\n")
                    started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
                    stopped.killed.wait(5)  # a long build, until it is stopped
                else:
                    before_the_cycle.append(started[0].handler.inbox.debouncer.pending > 0)  # batch not yet taken
            return super().run(command, *args, **kwargs)

    c = SaveAgain(stopped_then_builds(), app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="1000")
    assert before_the_cycle == [True] and len(stopped.markers) == 1
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")] == [f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}"]
    err = capsys.readouterr().err
    assert "   app/web.sh changed while it built: that build is stopped; building again" in err
    assert err.count("── cycle 1: app/web.sh changed") == 1 and "── cycle 1 ready: build " in err


def test_saves_that_keep_coming_in_the_quiet_window_restart_the_early_build_only_so_often(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A file written every few ms during the quiet window does not stop and start builds without end."""
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    stopped = stops_builds(monkeypatch)
    before_the_cycle: list[bool] = []

    class WrittenDuringEachBuild(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build --iidfile"):
                before_the_cycle.append(not started[0].handler.inbox.debouncer.busy)
                append_log(started[0], app_dir / "app" / "dev.log")
                stopped.killed.clear()
                stopped.killed.wait(0.3)  # builds until stopped, or for 0.3 s
            return super().run(command, *args, **kwargs)

    c = WrittenDuringEachBuild({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
                                rx(r"^docker build --iidfile "): ok()}, app=config(app_dir))
    with pytest.raises(Exit):
        watch.watch(c, cycles="1", debounce_ms="1000")
    assert before_the_cycle.count(True) == watch.BUILD_ATTEMPTS  # the first, and BUILD_ATTEMPTS - 1 restarts
    assert "error: files changed under each of 3 builds in a row (app/dev.log)" in capsys.readouterr().err


def test_a_build_a_save_makes_stale_is_stopped_at_once_and_the_cycle_builds_again(
        app_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The user saves again while the build runs: that build is stopped once the save settles, not waited for."""
    started = edits(monkeypatch, app_dir / "app" / "web.sh")
    stopped = stops_builds(monkeypatch)
    ended_by: list[str] = []

    class SaveWhileBuilding(Building):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build --iidfile") and len(builds(self)) == 0:
                (app_dir / "app" / "web.sh").write_text("#!/bin/sh\necho saved again\n")
                started[0].handler.dispatch(FileModifiedEvent(str(app_dir / "app" / "web.sh")))
                ended_by.append("stop" if stopped.killed.wait(5) else "its own end")  # a long build
            return super().run(command, *args, **kwargs)

    c = SaveWhileBuilding(stopped_then_builds(), app=config(app_dir), repeat=False)
    watch.watch(c, cycles="1", debounce_ms="1")
    first = builds(c)[0]
    assert ended_by == ["stop"] and len(stopped.markers) == 1 and f"--iidfile {stopped.markers[0]}/hello.iid" in first
    assert [cmd for cmd in c.commands if cmd.startswith("docker tag")] == \
        [f"docker tag sha256:5eed00000000 hello:{tag(app_dir)}"]  # the second build, with the newer file's tag
    err = capsys.readouterr().err
    assert "   app/web.sh changed while it built: that build is stopped; building again" in err
    assert "── cycle 1 ready: build " in err and "docker build failed" not in err


def test_a_dry_watch_starts_no_early_build(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    edits(monkeypatch, app_dir / "app" / "web.sh")
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
                       GET: ok(ready_listing()), LIST: ok('{"items": []}')}, app=config(app_dir), dry=True)
    watch.watch(c, cycles="1", debounce_ms="1000")
    err = capsys.readouterr().err
    assert "$ docker build --tag hello:" in err and "/devloop-build-" not in err  # a dry run echoes the build it would run
    assert "── cycle 1 ready" in err


def test_dev_is_up_then_cycles_and_cleanup_deletes_on_exit(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    t = tag(app_dir)
    edits(monkeypatch, app_dir / "k8s" / "configmap.yaml")
    followers: list[tuple[bool, bool]] = []

    def start_followers(app: Any, logs: bool, forwards: bool, allow: bool) -> list[Any]:
        followers.append((logs, forwards))
        return []

    monkeypatch.setattr(watch, "start_followers", start_followers)
    c = StrictContext({
        CONTEXT: ok("k8s-local\n"),
        inspect(t): ok("sha256:1\n"),
        LIST: ok('{"items": []}'),
        APPLY: ok(),
        GET: ok(ready_listing()),
        DELETE: ok(),
    }, app=config(app_dir), repeat=True)
    watch.dev(c, cycles="1", debounce_ms="1", cleanup=True, no_forwards=True)
    assert shapes(c.commands) == [
        CONTEXT, "docker image inspect", "docker image inspect", "kubectl --context k8s-local get",
        "kubectl --context k8s-local apply",
        "kubectl --context k8s-local get",  # cycle 0: up (the image is there already)
        "kubectl --context k8s-local apply",  # cycle 1, manifests only: the same objects as cycle 0, no prune read
        "kubectl --context k8s-local get",  # (cycle 0's wait found them ready at once: it opened no watch to keep)
        "kubectl --context k8s-local delete",  # --cleanup
    ]
    assert followers == [(True, False)]
    err = capsys.readouterr().err
    assert "── cycle 0: up" in err and "── cycle 0 ready" in err and "cleanup: deleting what was applied" in err


def test_a_failed_up_keeps_dev_watching(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    t = tag(app_dir)
    edits(monkeypatch, app_dir / "k8s" / "configmap.yaml")
    monkeypatch.setattr(watch, "start_followers", lambda *a: [])
    c = StrictContext({
        CONTEXT: ok("k8s-local\n"),
        inspect(t): ok("sha256:1\n"),
        LIST: ok('{"items": []}'),
        APPLY: [fail(1, stderr="error: the server could not find the requested resource"), ok()],
        GET: ok(ready_listing()),
    }, app=config(app_dir), repeat=True)
    watch.dev(c, cycles="1", debounce_ms="1")
    err = capsys.readouterr().err
    assert "── cycle 0 failed; still watching" in err and "── cycle 1 ready" in err


# -- the lock --------------------------------------------------------------------------------------


def write_lock(app_dir: Path, pid: int, command: str, start: str = "") -> Path:
    path = lock.lock_file(app_dir / ".kit", "k8s-local", "")
    path.parent.mkdir(exist_ok=True)
    import socket

    path.write_text(json.dumps({"pid": pid, "command": command, "since": time.time() - 125,
                                "host": socket.gethostname(), "start": start}))
    return path


@pytest.mark.parametrize("task", ["up", "watch", "dev"])
def test_a_second_run_says_who_holds_the_lock(app_dir: Path, monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    holder = os.getppid()  # alive for the whole test
    write_lock(app_dir, holder, "inv dev --env dev", lock.process_start(holder))
    edits(monkeypatch)
    c = StrictContext({CONTEXT: ok("k8s-local\n")}, app=config(app_dir))
    body = {"up": workflow.up, "watch": watch.watch, "dev": watch.dev}[task]
    with pytest.raises(Exit) as raised:
        body(c)
    assert raised.value.code == 75
    message = str(raised.value.message)
    assert f"pid {holder} (inv dev --env dev), since " in message and "(2 min ago)" in message
    assert f"kill {holder}" in message
    assert c.commands == [CONTEXT]  # nothing was built or applied


def test_a_stale_lock_is_taken_over(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    path = write_lock(app_dir, gone.pid, "inv up")
    t = tag(app_dir)
    c = StrictContext({CONTEXT: ok("k8s-local\n"), inspect(t): ok("sha256:1\n"), APPLY: ok(), GET: ok(ready_listing()),
                       GET.removesuffix(" --request-timeout=10s"): ok(ready_listing()),  # the closing status table
                       LIST: ok('{"items": []}')},
                      app=config(app_dir))
    workflow.up(c)
    assert f"lock: taking over a stale lock from pid {gone.pid} (inv up)" in capsys.readouterr().err
    assert not path.exists()


def test_dry_runs_take_no_lock(app_dir: Path) -> None:
    write_lock(app_dir, os.getppid(), "inv dev", lock.process_start(os.getppid()))
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect"): ok("sha256:1\n"),
                       GET: ok(ready_listing()), LIST: ok('{"items": []}')}, app=config(app_dir), dry=True)
    workflow.up(c)
    c.assert_all_used(GET)  # the run went on past the lock another process holds (a dry run does not wait)


# -- flags and signals -----------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value"), [("cycles", "x"), ("debounce_ms", "0"), ("timeout", "-3")])
def test_numeric_flags_are_checked(app_dir: Path, flag: str, value: str) -> None:
    c = StrictContext({CONTEXT: ok("k8s-local\n")}, app=config(app_dir))
    with pytest.raises(Exit) as raised:
        watch.watch(c, **{flag: value})
    assert raised.value.code == 2 and f"--{flag.replace('_', '-')} {value!r} " in str(raised.value.message)
    assert c.commands == []  # checked before the context is read


def test_nothing_to_watch_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app_dir = make_app(tmp_path)
    monkeypatch.chdir(app_dir)
    app = config(app_dir)
    app["watch"] = {"paths": ["nowhere"]}
    c = StrictContext({CONTEXT: ok("k8s-local\n")}, app=app)
    with pytest.raises(Exit) as raised:
        watch.watch(c, cycles="1")
    assert "nothing to watch" in str(raised.value.message)


def test_sigterm_ends_with_143_and_sigint_with_130() -> None:
    stopper = children.Stopper()
    stopper.signal = signal.SIGTERM
    error = stopper.exit_error()
    assert error is not None and error.code == 143 and "SIGTERM" in error.message
    stopper.signal = signal.SIGINT
    assert stopper.exit_error() is None


def test_once_stopping_the_funnel_starts_nothing_new(monkeypatch: pytest.MonkeyPatch) -> None:
    c = StrictContext({"echo hi": ok()})
    shell.STOPPING.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            shell.run(c, ["echo", "hi"])
        errors: list[BaseException] = []

        def helper() -> None:
            try:
                shell.run(c, ["echo", "hi"])
            except KitError as exc:
                errors.append(exc)

        thread = threading.Thread(target=helper)
        thread.start()
        thread.join()
        assert len(errors) == 1 and "stopping" in str(errors[0])
        assert shell.spawn(c, ["sleep", "100"]) is None
        assert c.commands == []
    finally:
        shell.STOPPING.clear()


def test_with_cycles_a_failed_last_cycle_fails_the_run(app_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    edits(monkeypatch, app_dir / "app" / "web.sh")
    c = StrictContext({
        CONTEXT: ok("k8s-local\n"),
        rx(r"^docker image inspect"): fail(1, stderr="Error: No such image"),
        rx(r"^docker build --iidfile "): fail(1, stdout="Step 1/9 : ARG BASE_IMAGE\nfailed"),
    }, app=config(app_dir))
    with pytest.raises(Exit) as raised:
        watch.watch(c, cycles="1", debounce_ms="1")
    assert raised.value.code == 1 and "the last of the 1 cycle(s) failed" in str(raised.value.message)
    assert "── cycle 1 failed in build" in capsys.readouterr().err


class FakeWatchChild:
    """The pod watch of a live-update Feed, as far as the Feed asks: how many children started, and is one running."""

    def __init__(self) -> None:
        self.starts, self.alive = 1, True

    def running(self) -> bool:
        return self.alive

    def close(self) -> None:
        self.alive = False


def pod_event(kind: str, name: str, version: int) -> dict[str, Any]:
    return {"type": kind, "object": {"kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                                 "resourceVersion": str(version)}}}


def test_the_pod_watch_answers_which_containers_only_after_a_listing_taken_while_it_was_connected(app_dir: Path) -> None:
    from devloop.kit import App

    app = App.load(StrictContext({}, app=config(app_dir)))
    feed = livesync.LiveSync(app).feed
    child = FakeWatchChild()
    feed.feed = child  # type: ignore[assignment]
    listing = [pod_event("ADDED", "a", 1)["object"], pod_event("ADDED", "b", 2)["object"]]

    assert feed.connected() is None  # started, but not heard from: a listing now could miss a deletion
    feed.seed(listing, feed.connected())
    assert feed.pods() is None  # so the next sync lists again

    feed.on_event(pod_event("ADDED", "a", 1))
    connected = feed.connected()
    feed.seed(listing, connected)
    assert [p["metadata"]["name"] for p in feed.pods() or []] == ["a", "b"]
    feed.on_event(pod_event("DELETED", "b", 3))
    assert [p["metadata"]["name"] for p in feed.pods() or []] == ["a"]  # kept current without a listing

    child.alive = False  # the child ended: what it would have said is missed
    assert feed.pods() is None
    child.alive, child.starts = True, 2  # restarted: a listing once it has spoken seeds it again
    assert feed.pods() is None
    feed.seed(listing, connected)  # a listing taken while the old child ran does not count for the new one
    assert feed.pods() is None
    feed.on_event(pod_event("MODIFIED", "a", 4))
    feed.seed(listing[:1], feed.connected())
    assert [p["metadata"]["name"] for p in feed.pods() or []] == ["a"]


def test_closing_the_pod_watch_during_its_settle_runs_no_catch_up_after_it(app_dir: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The watch is ending: no sync may reach the containers after close(), and close() does not wait out the settle."""
    from devloop.kit import App

    live = livesync.LiveSync(App.load(StrictContext({}, app=config(app_dir))))
    caught_up = threading.Event()
    monkeypatch.setattr(live, "catch_up", caught_up.set)
    feed = live.feed
    feed.feed = FakeWatchChild()  # type: ignore[assignment]
    feed.thread = threading.Thread(target=feed._loop, daemon=True)
    feed.thread.start()
    feed.wake.set()  # pod events came: the loop lets the burst settle before it catches up
    time.sleep(0.05)
    feed.close()
    assert not feed.thread.is_alive()
    assert not caught_up.wait(0.5)  # the settle (0.3 s) is long over: a catch-up would have run by now


def test_dev_tells_every_follower_to_stop_before_it_waits_for_any(app_dir: Path) -> None:
    """Logs and port-forwards wind down side by side when `inv dev` ends, not one after the other."""
    from devloop.kit import App
    from devloop.watch import Background, stop_all

    app = App.load(StrictContext({}, app=config(app_dir)))
    both_stopping = threading.Barrier(2, timeout=2)
    outcome: list[str] = []

    def body(a: App, stop_when: Callable[[], bool]) -> None:
        while not stop_when():
            time.sleep(0.01)
        try:
            both_stopping.wait()  # each winds down only once the other has been told too
            outcome.append("wound down together")
        except threading.BrokenBarrierError:
            outcome.append("the other was not told")

    followers = [Background("logs", app, body).start(), Background("forwards", app, body).start()]
    stop_all(followers)
    assert outcome == ["wound down together"] * 2
