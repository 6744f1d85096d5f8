"""wait_ready against a strict mock context: exact commands, fail-fast sentences, one deadline; no sleeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke import Exit
from kube_objects import container_status, crashed, deployment, job, pod, replicaset, waiting
from strict import StrictContext, ok

from devloop import k8s, rollout
from devloop.build import built_refs
from devloop.core.errors import KitError
from devloop.kit import App

GET = "kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json"
CONTEXT = "kubectl config current-context"


class FakeTime:
    """The clock, the feed and the wake-up of wait_ready: waiting advances the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 100.0
        self.feeds: list[list[str]] = []
        self.checks = 0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def open_feed(self, app: App, kinds: list[str], notify: Any, selector: str = "") -> FakeTime:
        self.feeds.append(kinds)
        return self

    def __enter__(self) -> FakeTime:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def check(self) -> None:
        self.checks += 1

    def wake(self) -> Any:
        outer = self

        class Wake:
            def set(self) -> None:
                pass

            def wait(self, timeout: float) -> bool:
                outer.waits.append(timeout)
                outer.now += timeout
                return False

        return Wake()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(rollout, "clock", fake.clock)
    monkeypatch.setattr(rollout, "open_feed", fake.open_feed)
    monkeypatch.setattr(rollout.supervise, "Wakeup", fake.wake)
    return fake


def listing(*items: dict[str, Any]) -> Any:
    return ok(json.dumps({"items": list(items)}))


def app_for(tmp_path: Path, results: dict[str, Any], dry: bool = False, **config: Any) -> App:
    settings = {"root": str(tmp_path), "name": "demo", "cluster": {"provider": "docker", "ip": "127.0.0.1"}}
    settings.update(config)
    return App.load(StrictContext(results, app=settings, dry=dry, repeat=False))


WEB_STARTING = [deployment("web", 1, 0), replicaset("web-1", "web"),
                pod("web-1-a", "web-1", ready=False, statuses=[container_status(ready=False)])]
WEB_READY = [deployment("web"), replicaset("web-1", "web"), pod("web-1-a", "web-1")]


def test_ready_at_the_first_read_returns_without_watching(tmp_path: Path, fake_time: FakeTime,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*WEB_READY)})
    verdict = rollout.wait_ready(app, ["deployment/web"])
    assert verdict.ready == ["deployment/web"]
    assert app.c.commands == [CONTEXT, GET]
    assert fake_time.feeds == []
    assert "ready: deployment/web" in capsys.readouterr().err


def test_waits_on_the_feed_until_ready(tmp_path: Path, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: [listing(*WEB_STARTING), listing(*WEB_STARTING),
                                                                 listing(*WEB_READY)]})
    rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert app.c.commands == [CONTEXT, GET, GET, GET]
    assert fake_time.feeds == [["pods", "deployments"]]
    assert fake_time.waits == [rollout.BACKSTOP_SECONDS] * 2
    err = capsys.readouterr().err
    assert err.count("waiting: deployment/web: 0/1 replicas ready") == 1  # said once, not per read
    assert "container main is running but not ready" in err


def test_a_crash_loop_fails_at_once_with_the_previous_containers_last_lines(tmp_path: Path, fake_time: FakeTime) -> None:
    crashing = [deployment("web", 1, 0), replicaset("web-1", "web"),
                pod("web-1-a", "web-1", ready=False, statuses=[container_status(
                    ready=False, state=waiting("CrashLoopBackOff"), last=crashed(1), restarts=2)])]
    logs = "kubectl --context k8s-local logs web-1-a -c main --previous --tail 10"
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*crashing),
                             logs: ok("booting\nActiveRecord::ConnectionNotEstablished\n")})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert app.c.commands == [CONTEXT, GET, logs]
    assert caught.value.message == (
        "rollout failed:\n"
        "  deployment/web pod web-1-a: CrashLoopBackOff: container main keeps crashing (exit code 1, 2 restarts) — "
        "its last lines are below; fix the app, its command or its configuration\n"
        "      | booting\n"
        "      | ActiveRecord::ConnectionNotEstablished")
    assert fake_time.now == 100.0  # no waiting at all


def test_our_image_missing_on_the_node_names_inv_image_load(tmp_path: Path, fake_time: FakeTime) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")}, images={"demoapp": {}})
    ref = built_refs(app)["demoapp"]
    missing = [deployment("web", 1, 0), replicaset("web-1", "web"),
               pod("web-1-a", "web-1", ready=False, image=ref, statuses=[container_status(
                   ready=False, image=ref, state=waiting("ErrImagePull", "proxyconnect tcp: dial tcp 127.0.0.1:9"))])]
    app.c = StrictContext({CONTEXT: ok("k8s-local\n"), GET: listing(*missing)}, app=dict(app.c.config.app), repeat=False)
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert f"the node has no {ref}; it was built against another Docker daemon — run `inv image.load`" in caught.value.message


def test_a_failed_job_shows_its_log(tmp_path: Path, fake_time: FakeTime) -> None:
    logs = "kubectl --context k8s-local logs job/migrate --tail 10"
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(job("migrate", failed="Job has reached the "
                                                                                              "specified backoff limit")),
                             logs: ok("rake aborted!\n")})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["job/migrate"], timeout=30)
    assert "job migrate failed: BackoffLimitExceeded: Job has reached the specified backoff limit" in caught.value.message
    assert caught.value.message.endswith("| rake aborted!")


def test_the_deadline_names_the_workload_and_the_probes_message(tmp_path: Path, fake_time: FakeTime,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    events = "kubectl --context k8s-local get events -o json"
    probe = {"items": [{"involvedObject": {"name": "web-1-a"}, "type": "Warning", "reason": "Unhealthy",
                        "message": "Readiness probe failed: wget: server returned error: HTTP/1.1 503",
                        "lastTimestamp": "2026-01-01T00:00:09Z", "count": 7}]}
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: [listing(*WEB_STARTING)] * 10, events: [ok(json.dumps(probe))] * 4})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=7)
    assert caught.value.message.splitlines() == [
        "not ready after 7s:",
        "  deployment/web: 0/1 replicas ready",
        "    pod web-1-a: NotReady: container main is running but not ready (readiness probe not passing yet)",
        "    pod web-1-a: Unhealthy: Readiness probe failed: wget: server returned error: HTTP/1.1 503 (x7)",
    ]
    assert fake_time.now == pytest.approx(107.0)
    assert fake_time.waits == [2.0, 2.0, 2.0, 1.0]
    assert "waiting: pod web-1-a: readiness probe failing: wget: server returned error: HTTP/1.1 503 (x7)" in \
        capsys.readouterr().err
    assert app.c.commands.count(GET) == 5


def test_dry_run_only_says_what_it_would_wait_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = app_for(tmp_path, {}, dry=True)
    assert rollout.wait_ready(app, ["deployment/web"]).done
    assert app.c.commands == []
    assert "would wait for deployment/web (--dry)" in capsys.readouterr().err


def test_k8s_wait_task_exits_with_the_reason(tmp_path: Path, fake_time: FakeTime) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "web.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: main, image: redis:7}]\n")
    broken = [deployment("web", 1, 0), replicaset("web-1", "web"),
              pod("web-1-a", "web-1", ready=False, statuses=[container_status(
                  ready=False, image="redis:7", state=waiting("CreateContainerConfigError", 'secret "db" not found'))])]
    c = StrictContext({CONTEXT: ok("k8s-local\n"), GET: listing(*broken)},
                      app={"root": str(tmp_path), "name": "demo", "cluster": {"provider": "docker", "ip": "127.0.0.1"}})
    with pytest.raises(Exit) as caught:
        k8s.wait(c, timeout=5)
    assert caught.value.code == 1
    assert "Secret db does not exist in namespace kit" in str(caught.value.message)
