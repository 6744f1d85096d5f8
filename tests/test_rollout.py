"""wait_ready against a strict mock context: exact commands, fail-fast sentences, one deadline; no sleeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke import Exit
from kube_objects import container_status, crashed, deployment, job, pod, replicaset, waiting
from strict import StrictContext, fail, ok, rx

from devloop import k8s, rollout
from devloop.build import built_refs
from devloop.core.errors import KitError
from devloop.kit import App


def get(seconds: int = 10) -> str:
    """The wait's listing, its requests timed out within the deadline."""
    return ("kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json "
            f"--request-timeout={seconds}s")


GET = get()
EVENTS = "kubectl --context k8s-local get events --field-selector type=Warning -o json --request-timeout=10s"
CONTEXT = "kubectl config current-context"


class FakeTime:
    """The clock, the watch feed and the wake-up of wait_ready: waiting advances the clock instead of sleeping,
    and delivers the watch events scripted for that wait (one list of events per wait)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.feeds: list[list[str]] = []
        self.checks = 0
        self.waits: list[float] = []
        self.script: list[list[dict[str, Any]]] = []  # events delivered during each wait, in turn
        self.restart_at_wait: int | None = None  # a watch child is restarted during that wait
        self.starts = 0
        self.on_event: Any = None
        self.on_warning: Any = None  # the watch of Warning events, once opened
        self.urgent: list[bool] = []  # per wake-up set by an event: whether it cut the settling short
        self.opened = self.closed = 0
        self.dead = False  # a watch child has ended (running() is False)
        self.early: float | None = None  # a wait that delivers events ends this long after it began (else its timeout)

    def clock(self) -> float:
        return self.now

    def open_feed(self, app: App, kinds: list[str], notify: Any, selector: str = "") -> FakeTime:
        """The change feed of observe's loops (they import this fixture)."""
        self.feeds.append(kinds)
        return self

    def open_events(self, app: App, kinds: list[str], on_event: Any, notify: Any, listed: Any = None,
                    fields: str = "") -> FakeTime:
        self.feeds.append(kinds)
        if kinds == ["events"]:  # the watch of Warning events: scripted events of kind Event go to it
            assert fields == "type=Warning"
            self.on_warning = on_event
            return self
        self.on_event = on_event
        self.starts = len(kinds)
        return self

    def open(self) -> FakeTime:
        self.opened += 1
        return self

    def close(self) -> None:
        self.closed += 1

    def running(self) -> bool:
        return not self.dead

    def __enter__(self) -> FakeTime:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def check(self) -> None:
        self.checks += 1

    def wake(self, settle: float = 0.0) -> Any:
        outer = self

        class Wake:
            def set(self, urgent: bool = False) -> None:
                outer.urgent.append(urgent)

            def wait(self, timeout: float) -> bool:
                outer.waits.append(timeout)
                events = outer.script.pop(0) if outer.script else []
                outer.now += min(timeout, outer.early) if events and outer.early is not None else timeout
                if outer.restart_at_wait == len(outer.waits):
                    outer.starts += 1
                for event in events:
                    obj = event.get("object") if isinstance(event, dict) else None
                    warning = isinstance(obj, dict) and obj.get("kind") == "Event"
                    (outer.on_warning if warning else outer.on_event)(event)
                return bool(events)

        return Wake()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(rollout, "clock", fake.clock)
    monkeypatch.setattr(rollout, "open_events", fake.open_events)
    monkeypatch.setattr(rollout, "open_feed", fake.open_feed)
    monkeypatch.setattr(rollout.supervise, "Wakeup", fake.wake)
    return fake


def modified(*objects: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "MODIFIED", "object": o} for o in objects]


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


def test_waits_on_watch_events_until_ready_without_listing_again(tmp_path: Path, fake_time: FakeTime,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*WEB_STARTING)})
    fake_time.script = [modified(WEB_STARTING[2]), modified(*WEB_READY)]
    rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert app.c.commands == [CONTEXT, GET]  # one listing; the rest came from the watches
    assert fake_time.feeds == [["pods", "deployments", "replicasets"]]
    assert fake_time.waits == [rollout.BACKSTOP_SECONDS] * 2
    err = capsys.readouterr().err
    assert err.count("waiting: deployment/web: 0/1 replicas ready") == 1  # said once, not per event
    assert "container main is running but not ready" in err
    assert "ready: deployment/web" in err


def test_a_workloads_own_event_is_judged_at_once_pod_events_are_gathered_first(tmp_path: Path,
                                                                              fake_time: FakeTime) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*WEB_STARTING)})
    fake_time.script = [modified(WEB_STARTING[2]), modified(*WEB_READY)]
    rollout.wait_ready(app, ["deployment/web"], timeout=30)
    # the pod's event waits for the rest of its burst; the Deployment's status (readiness) cuts that short
    assert fake_time.urgent == [False, True, False, False]


def test_a_restarted_watch_and_a_long_silence_each_bring_one_full_listing(tmp_path: Path, fake_time: FakeTime) -> None:
    events = EVENTS
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), events: [ok("{}")] * 5,
                             GET: [listing(*WEB_STARTING)] * 2 + [listing(*WEB_READY)]})
    fake_time.restart_at_wait = 1
    rollout.wait_ready(app, ["deployment/web"], timeout=60)
    # wait 1: a watch restarted → listing 2; then silence until RELIST_SECONDS have passed → listing 3, ready
    assert [c for c in app.c.commands if c != events] == [CONTEXT, GET, GET, GET]
    assert rollout.RELIST_SECONDS == 15.0
    assert fake_time.now == pytest.approx(118.0)  # listing 2 at 102; the first wake-up 15 s or more later is at 118


def test_a_hopeless_state_seen_in_events_is_confirmed_by_a_fresh_listing(tmp_path: Path, fake_time: FakeTime,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    stale_crash = pod("web-1-a", "web-1", ready=False, statuses=[container_status(
        ready=False, state=waiting("CrashLoopBackOff"), last=crashed(1), restarts=7)])
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: [listing(*WEB_STARTING), listing(*WEB_READY)]})
    fake_time.script = [modified(stale_crash)]
    assert rollout.wait_ready(app, ["deployment/web"], timeout=30).done
    assert app.c.commands == [CONTEXT, GET, GET]
    assert "CrashLoopBackOff" not in capsys.readouterr().err


def test_a_crash_loop_fails_at_once_with_the_previous_containers_last_lines(tmp_path: Path, fake_time: FakeTime) -> None:
    crashing = [deployment("web", 1, 0), replicaset("web-1", "web"),
                pod("web-1-a", "web-1", ready=False, statuses=[container_status(
                    ready=False, state=waiting("CrashLoopBackOff"), last=crashed(1), restarts=2)])]
    logs = "kubectl --context k8s-local logs web-1-a -c main --previous --tail 10 --request-timeout=10s"
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


def test_a_crash_loop_of_a_container_that_printed_nothing_says_so(tmp_path: Path, fake_time: FakeTime) -> None:
    crashing = [deployment("web", 1, 0), replicaset("web-1", "web"),
                pod("web-1-a", "web-1", ready=False, statuses=[container_status(
                    ready=False, state=waiting("CrashLoopBackOff"), last=crashed(3), restarts=2)])]
    logs = "kubectl --context k8s-local logs web-1-a -c main --previous --tail 10 --request-timeout=10s"
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*crashing), logs: ok("")})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert caught.value.message.splitlines()[-1] == "      (it printed nothing)"


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
    logs = "kubectl --context k8s-local logs job/migrate --tail 10 --request-timeout=10s"
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(job("migrate", failed="Job has reached the "
                                                                                              "specified backoff limit")),
                             logs: ok("rake aborted!\n")})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["job/migrate"], timeout=30)
    assert "job migrate failed: BackoffLimitExceeded: Job has reached the specified backoff limit" in caught.value.message
    assert caught.value.message.endswith("| rake aborted!")


def warning(pod: str, message: str, count: int = 1, name: str = "") -> dict[str, Any]:
    """A watch event of a Warning event about ``pod`` (the kubelet's probe failures are of this shape)."""
    return {"type": "ADDED", "object": {
        "kind": "Event", "metadata": {"name": name or f"{pod}.17a", "namespace": "default", "resourceVersion": "9"},
        "involvedObject": {"kind": "Pod", "name": pod}, "type": "Warning", "reason": "Unhealthy", "message": message,
        "lastTimestamp": "2026-01-01T00:00:09Z", "count": count}}


def test_the_deadline_names_the_workload_and_the_probes_message(tmp_path: Path, fake_time: FakeTime) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), get(7): [listing(*WEB_STARTING)] * 10})
    # the pod runs not ready from 100: at 106 the Warning events are watched, and the probe's message arrives
    fake_time.script = [[], [], [], [warning("web-1-a", "Readiness probe failed: wget: server returned error: "
                                                        "HTTP/1.1 503", count=7)]]
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
    assert app.c.commands == [CONTEXT, get(7)]  # no re-listing while nothing changed; no read of events
    assert fake_time.feeds[-1] == ["events"] and fake_time.closed == 2  # both watches closed at the end


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
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get(5): listing(*broken)},
                      app={"root": str(tmp_path), "name": "demo", "cluster": {"provider": "docker", "ip": "127.0.0.1"}})
    with pytest.raises(Exit) as caught:
        k8s.wait(c, timeout=5)
    assert caught.value.code == 1
    assert "Secret db does not exist in namespace kit" in str(caught.value.message)


def never_pulled(pod_name: str, ref: str) -> list[dict[str, Any]]:
    status = container_status(ready=False, image=ref, state=waiting("ErrImageNeverPull", f'image "{ref}" is not present'))
    return [deployment("web", 1, 0), replicaset("web-1", "web"),
            pod(pod_name, "web-1", ready=False, image=ref, statuses=[status])]


def delivered_app(tmp_path: Path, results: dict[str, Any]) -> tuple[App, str]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")}, images={"demoapp": {}})
    ref = built_refs(app)["demoapp"]
    app.c = StrictContext({CONTEXT: ok("k8s-local\n"), **{k: v(ref) for k, v in results.items()}},
                          app=dict(app.c.config.app), repeat=False)
    app.fact("delivered", set).add(ref)  # what delivery records for this run
    return app, ref


def test_a_pull_back_off_of_the_image_just_delivered_restarts_the_pod_and_keeps_waiting(
        tmp_path: Path, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    delete = "kubectl --context k8s-local delete pod web-1-a --wait=false"
    deleting = pod("web-1-a", "web-1", ready=False, deleting=True)
    app, ref = delivered_app(tmp_path, {
        GET: lambda ref: [listing(*never_pulled("web-1-a", ref)), listing(*never_pulled("web-1-a", ref)[:2], deleting)],
        delete: lambda ref: ok()})
    fake_time.script = [[{"type": "ADDED", "object": pod("web-1-b", "web-1")}, *modified(deployment("web"))]]
    assert rollout.wait_ready(app, ["deployment/web"], timeout=30).done
    assert app.c.commands == [CONTEXT, GET, delete, GET]
    err = capsys.readouterr().err
    assert f"waiting: deployment/web pod web-1-a: ErrImageNeverPull for {ref}, which the kit has just delivered to " \
           "the node: the pod tried before it was there; restarting the pod so it starts now" in err
    assert f"$ {delete}" in err


def test_a_new_pod_that_still_cannot_pull_the_delivered_image_is_hopeless(tmp_path: Path, fake_time: FakeTime) -> None:
    delete = "kubectl --context k8s-local delete pod web-1-a --wait=false"
    app, ref = delivered_app(tmp_path, {
        GET: lambda ref: [listing(*never_pulled("web-1-a", ref)), listing(*never_pulled("web-1-b", ref)),
                          listing(*never_pulled("web-1-b", ref))],
        delete: lambda ref: ok()})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert app.c.commands == [CONTEXT, GET, delete, GET]
    assert f"pod web-1-b: ErrImageNeverPull: the node has no {ref}" in caught.value.message


REFUSED = "\n".join(
    ['E0101 00:00:01.000000   1234 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group '
     'list: Get \\"https://127.0.0.1:6443/api?timeout=10s\\": dial tcp 127.0.0.1:6443: connect: connection refused"'] * 5
    + ["The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"])


def test_an_unreachable_cluster_is_one_line_naming_it_and_why(tmp_path: Path, fake_time: FakeTime) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: fail(1, stderr=REFUSED)})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert caught.value.message == (
        "cannot read workload state from the cluster of context k8s-local (https://127.0.0.1:6443): The connection to "
        "the server 127.0.0.1:6443 was refused - did you specify the right host or port?")
    assert caught.value.evidence == ""


def test_a_cluster_that_does_not_answer_ends_the_wait_at_its_deadline(tmp_path: Path, fake_time: FakeTime) -> None:
    hung = fail(124, stderr='E0101 err="Get \\"https://127.0.0.1:6443/api\\": net/http: TLS handshake timeout"\n'
                             "no answer within 30s\n")
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: hung})
    with pytest.raises(KitError) as caught:
        rollout.wait_ready(app, ["deployment/web"], timeout=30)
    assert caught.value.message == ("not ready after 30s: the cluster of context k8s-local (https://127.0.0.1:6443) "
                                    "did not answer in time")


def test_every_request_of_the_wait_ends_by_the_deadline(tmp_path: Path, fake_time: FakeTime,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], float | None]] = []
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")})
    app.context()
    monkeypatch.setattr(app, "run", lambda argv, **kw: seen.append((argv, kw.get("timeout"))) or listing(*WEB_STARTING))
    with pytest.raises(KitError):
        rollout.wait_ready(app, ["deployment/web"], timeout=3)
    queries = [(argv, timeout) for argv, timeout in seen if argv[:2] == ["kubectl", "--context"]]
    assert len(queries) == 2  # the listing, and the events for the report at the deadline
    assert all(argv[-1] in ("--request-timeout=3s", "--request-timeout=1s") for argv, _ in queries)
    assert all(timeout is not None and timeout <= 3 for _, timeout in queries)


def test_an_event_that_is_not_an_object_is_ignored(tmp_path: Path, fake_time: FakeTime) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*WEB_STARTING)})
    fake_time.script = [[{"type": "ERROR", "object": "garbage"}, "garbage"], modified(*WEB_READY)]
    assert rollout.wait_ready(app, ["deployment/web"], timeout=30).ready == ["deployment/web"]
    assert fake_time.urgent == [False, False, True, False, False]


# -- the watch children ------------------------------------------------------------------------------


def test_each_kind_is_watched_at_its_api_path(tmp_path: Path) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")}, namespace="shop")
    feed = rollout.open_events(app, ["pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs"],
                               lambda event: None, lambda: None)
    assert [argv[-1] for argv in feed.argvs] == [
        "/api/v1/namespaces/shop/pods?watch=1", "/apis/apps/v1/namespaces/shop/deployments?watch=1",
        "/apis/apps/v1/namespaces/shop/replicasets?watch=1", "/apis/apps/v1/namespaces/shop/statefulsets?watch=1",
        "/apis/apps/v1/namespaces/shop/daemonsets?watch=1", "/apis/batch/v1/namespaces/shop/jobs?watch=1"]
    assert all(argv[:5] == ["kubectl", "--context", "k8s-local", "get", "--raw"] for argv in feed.argvs)


def test_warning_events_are_watched_with_a_field_selector(tmp_path: Path) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")}, namespace="shop")
    feed = rollout.open_events(app, ["events"], lambda event: None, lambda: None, fields="type=Warning")
    assert feed.argvs[0][-1] == "/api/v1/namespaces/shop/events?watch=1&fieldSelector=type%3DWarning"


def test_without_an_environment_namespace_the_watch_follows_the_listed_objects(tmp_path: Path) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n")})
    listed = [{"kind": "Deployment", "metadata": {"name": "web", "namespace": "team-a"}}]
    feed = rollout.open_events(app, ["pods"], lambda event: None, lambda: None, listed)
    assert feed.argvs[0][-1] == "/api/v1/namespaces/team-a/pods?watch=1"


@pytest.mark.parametrize(("answer", "namespace"), [("team-b", "team-b"), ("", "default")])
def test_with_nothing_listed_the_watch_asks_the_context_for_its_namespace(tmp_path: Path, answer: str,
                                                                          namespace: str) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"),
                             "kubectl --context k8s-local config view --minify -o 'jsonpath={.contexts[0].context.namespace}'":
                                 ok(answer)})
    feed = rollout.open_events(app, ["pods"], lambda event: None, lambda: None, [])
    assert feed.argvs[0][-1] == f"/api/v1/namespaces/{namespace}/pods?watch=1"


# -- a watch session keeps the wait's watches from one cycle to the next ------------------------------------------


def applied(obj: dict[str, Any], spec_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """``obj`` as kubectl apply leaves it: its annotation holds the spec it was applied from."""
    doc = spec_from or obj
    annotations = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps({"spec": doc["spec"]})}
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


NEW_IMAGE = deployment("web", image="demoapp:new", generation=2, observed=2)
DOC = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": NEW_IMAGE["spec"]}


def session_app(tmp_path: Path, gets: int) -> App:
    """An app in a watch session whose first wait reads the cluster once."""
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"),
                             GET: [listing(applied(deployment("web", 1, 0)), *WEB_STARTING[1:])]
                             + [listing(applied(NEW_IMAGE, DOC), *WEB_READY[1:])] * (gets - 1)})
    return app


def first_wait(app: App, fake_time: FakeTime) -> None:
    fake_time.script = [modified(applied(deployment("web"))), []]
    rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[DOC])


def test_the_next_cycles_wait_reads_nothing_it_judges_the_kept_state_once_it_shows_the_apply(
        tmp_path: Path, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    app = session_app(tmp_path, gets=1)
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        assert (fake_time.opened, fake_time.closed) == (1, 0)  # kept open for the next cycle
        capsys.readouterr()
        # the next cycle applied DOC: the watch still holds the ready Deployment from before it (a stale event
        # comes first), then the applied one rolling out, then ready
        rolling = applied(deployment("web", 1, 0, image="demoapp:new", generation=2, observed=2, updated=0), DOC)
        fake_time.script = [modified(applied(deployment("web"))), modified(rolling), modified(applied(NEW_IMAGE, DOC))]
        verdict = rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[DOC])
        assert verdict.ready == ["deployment/web"]
        err = capsys.readouterr().err
        assert app.c.commands == [CONTEXT, GET]  # the first wait's listing only
        assert err.splitlines()[0] == ("watching pods, deployments, replicasets (open since an earlier cycle) "
                                       "until ready or 30s")
        assert "waiting: deployment/web: 0/1 replicas updated" in err  # judged only once it showed the apply
        assert "reading the workloads" not in err
        assert fake_time.opened == 1
    assert fake_time.closed == 1  # the session's end closes the watches


def test_a_kept_state_that_never_shows_the_apply_is_settled_by_one_listing(
        tmp_path: Path, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    app = session_app(tmp_path, gets=2)
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        capsys.readouterr()
        started = fake_time.now
        fake_time.script = []  # no event at all: the ready Deployment from before the apply is all it holds
        assert rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[DOC]).done
        assert app.c.commands == [CONTEXT, GET, GET]
        assert fake_time.now == pytest.approx(started + rollout.SYNC_SECONDS)
        assert "the watches did not show the apply within 3s: reading the workloads" in capsys.readouterr().err


def test_a_kept_watch_whose_child_ended_is_not_trusted(tmp_path: Path, fake_time: FakeTime,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    app = session_app(tmp_path, gets=2)
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        capsys.readouterr()
        started = fake_time.now
        fake_time.dead = True  # it missed what happened while it was down
        assert rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[DOC]).done
        assert app.c.commands == [CONTEXT, GET, GET]
        assert fake_time.now == started  # listed at once: not after waiting for events from a dead watch
        assert capsys.readouterr().err.startswith(f"$ {GET}")
        assert fake_time.closed == 1  # the dead one was closed; the listing was the answer, so no new one opened


def test_when_the_apply_changed_no_workload_the_kept_watch_is_checked_by_a_listing(
        tmp_path: Path, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:
    app = session_app(tmp_path, gets=2)
    unchanged = {**DOC, "spec": deployment("web")["spec"]}  # what the kept state already shows
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        capsys.readouterr()
        fake_time.now += 60  # the user read the page; no event since
        # none is due either: nothing shows the watch still flows (it may have stalled while the laptop slept): read
        rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[unchanged])
        assert app.c.commands == [CONTEXT, GET, GET]
        assert capsys.readouterr().err.startswith(f"$ {GET}")
        assert fake_time.opened == 1 and fake_time.closed == 0  # the watch itself is kept


def test_events_that_showed_the_apply_before_the_wait_began_are_enough(tmp_path: Path, fake_time: FakeTime,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    app = session_app(tmp_path, gets=1)
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        fake_time.now += 60
        fake_time.on_event(modified(applied(NEW_IMAGE, DOC))[0])  # during the apply: already rolled out and ready
        assert rollout.wait_ready(app, ["deployment/web"], timeout=30, documents=[DOC]).done
        assert app.c.commands == [CONTEXT, GET]
        assert "(open since an earlier cycle)" in capsys.readouterr().err


def test_an_object_that_appears_while_a_listing_runs_is_kept() -> None:
    watched = rollout.Watched(["pods"])
    old, new = pod("web-1-a", "web-1"), pod("web-2-a", "web-2")
    with watched.listing() as replace:
        watched.on_event({"type": "ADDED", "object": new})  # after the listing's snapshot, before it is taken in
        replace([old])
    assert {o["metadata"]["name"] for o in watched.items()} == {"web-1-a", "web-2-a"}


def test_without_the_applied_documents_the_kept_watch_is_not_used(tmp_path: Path, fake_time: FakeTime) -> None:
    app = session_app(tmp_path, gets=2)
    with rollout.kept_watches(app):
        first_wait(app, fake_time)
        assert rollout.wait_ready(app, ["deployment/web"], timeout=30).done  # `inv k8s.wait`: what was applied?
        assert app.c.commands == [CONTEXT, GET, GET]


def test_a_one_shot_wait_closes_its_watches(tmp_path: Path, fake_time: FakeTime) -> None:
    app = session_app(tmp_path, gets=1)
    first_wait(app, fake_time)
    assert (fake_time.opened, fake_time.closed) == (1, 1)


def test_a_rollout_whose_pods_each_get_ready_soon_reads_no_events(tmp_path: Path, fake_time: FakeTime) -> None:
    def starting(name: str) -> dict[str, Any]:
        return pod(name, "web-2", ready=False, statuses=[container_status(ready=False)])

    rolling = [deployment("web", 3, 0, updated=0), replicaset("web-2", "web", revision=2), starting("web-2-a")]
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*rolling)})  # no events read scripted
    gone = [{"type": "DELETED", "object": starting(name)} for name in ("web-2-a", "web-2-b")]
    fake_time.script = [[gone[0], *modified(starting("web-2-b"))], [gone[1], *modified(starting("web-2-c"))], [],
                        modified(deployment("web", 3))]
    assert rollout.wait_ready(app, ["deployment/web"], timeout=60).done  # 8 s, yet no pod was not ready for 5 s
    assert app.c.commands == [CONTEXT, GET] and ["events"] not in fake_time.feeds


def test_a_pod_not_ready_for_five_seconds_gets_its_probe_message_watched(tmp_path: Path, fake_time: FakeTime,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*WEB_STARTING)})
    fake_time.script = [[], [], [], [warning("web-1-a", "Readiness probe failed: connection refused")],
                        [warning("other-pod", "Readiness probe failed: not ours")],
                        [warning("web-1-a", "Readiness probe failed: connection refused", count=2)],  # counted again
                        [], modified(*WEB_READY)]
    assert rollout.wait_ready(app, ["deployment/web"], timeout=60).done
    assert app.c.commands == [CONTEXT, GET]  # one watch of Warning events from 106 on, no read every few seconds
    assert fake_time.feeds == [["pods", "deployments", "replicasets"], ["events"]]
    err = capsys.readouterr().err
    assert err.count("  waiting: pod web-1-a: readiness probe failing: connection refused") == 1
    assert "not ours" not in err


def many_starting(count: int) -> tuple[list[str], list[dict[str, Any]]]:
    names = [f"svc{i}" for i in range(count)]
    objects = [o for n in names for o in (deployment(n, 1, 0), replicaset(f"{n}-1", n),
                                           pod(f"{n}-1-a", f"{n}-1", ready=False, statuses=[container_status(ready=False)]))]
    return names, objects


def counting_assess(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    assess = rollout.kube.assess

    def counted(*args: Any) -> Any:
        calls.append(1)
        return assess(*args)

    monkeypatch.setattr(rollout.kube, "assess", counted)
    return calls


def test_with_many_workloads_waiting_changes_are_judged_at_a_pace_not_per_event(
        tmp_path: Path, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    names, starting = many_starting(6)
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*starting)})
    calls = counting_assess(monkeypatch)
    fake_time.early = 0.04  # one workload gets ready every 40 ms: all by 100.24, the pace (6 × 0.05 s) ends at 100.3
    fake_time.script = [modified(deployment(n)) for n in names]
    assert rollout.wait_ready(app, [f"deployment/{n}" for n in names], timeout=60).done
    assert len(calls) == 2  # the listing's, then one at the pace (not one per event: 7)
    assert fake_time.now == pytest.approx(100.3)  # judged when the pace allowed, not at a backstop later


def test_with_few_workloads_waiting_each_change_is_judged_at_once(
        tmp_path: Path, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    names, starting = many_starting(rollout.PACE_FROM)
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: listing(*starting)})
    calls = counting_assess(monkeypatch)
    fake_time.early = 0.05
    fake_time.script = [modified(deployment(n)) for n in names]
    assert rollout.wait_ready(app, [f"deployment/{n}" for n in names], timeout=60).done
    assert len(calls) == 1 + len(names)
    assert fake_time.now == pytest.approx(100.0 + 0.05 * len(names))


def test_a_change_the_pace_has_not_judged_yet_is_judged_at_the_deadline(
        tmp_path: Path, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    names, starting = many_starting(6)
    monkeypatch.setattr(rollout, "PACE_PER_WAITING", 10.0)  # a pace past the deadline
    monkeypatch.setattr(rollout, "PACE_AT_MOST", 100.0)
    events = rx(r"kubectl --context k8s-local get events --field-selector type=Warning -o json --request-timeout=\d+s")
    ready = [o for n in names for o in (deployment(n), replicaset(f"{n}-1", n), pod(f"{n}-1-a", f"{n}-1"))]
    # the silence after the events brings listings (RELIST_SECONDS); they too wait for the pace or the deadline
    app = app_for(tmp_path, {CONTEXT: ok("k8s-local\n"), GET: [listing(*starting)] + [listing(*ready)] * 2,
                             events: [ok("{}")] * 5})
    calls = counting_assess(monkeypatch)
    fake_time.early = 0.05
    fake_time.script = [modified(*(deployment(n) for n in names))]
    assert rollout.wait_ready(app, [f"deployment/{n}" for n in names], timeout=30).done  # not "not ready after 30s"
    assert len(calls) == 2
    assert fake_time.now == pytest.approx(130.0)
