"""k8s.status / logs / forward / open / kubectl and `summary` against a strict mock context: exact commands."""

from __future__ import annotations

import json
import os
import queue
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from invoke import Exit
from kube_objects import container_status, deployment, pod, replicaset
from strict import StrictContext, fail, ok
from test_observe_supervise import FakeProc
from test_rollout import CONTEXT, GET, FakeTime, fake_time  # noqa: F401 - the fixture is used by name

from devloop import observe, rollout
from devloop.core import render
from devloop.kit import App

EVENTS = "kubectl --context k8s-local --namespace shop get events -o json"
NS_GET = "kubectl --context k8s-local --namespace shop get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json"


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    settings = {"root": str(tmp_path), "name": "shop", "namespace": "shop",
                "cluster": {"provider": "docker", "ip": "127.0.0.1"}}
    settings.update(extra)
    return settings


def listing(*items: dict[str, Any]) -> Any:
    return ok(json.dumps({"items": list(items)}))


def labelled(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].setdefault("labels", {})[render.LABEL] = "shop"
    return obj


def test_status_shows_this_apps_workloads_with_the_probe_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [labelled(deployment("web", 1, 0)), deployment("someone-else"), replicaset("web-1", "web"),
             pod("web-1-a", "web-1", ready=False, statuses=[container_status(ready=False)])]
    probe = {"items": [{"involvedObject": {"name": "web-1-a"}, "type": "Warning", "reason": "Unhealthy",
                        "message": "Readiness probe failed: HTTP 503", "count": 2}]}
    c = StrictContext({CONTEXT: ok("k8s-local\n"), NS_GET: listing(*items), EVENTS: ok(json.dumps(probe))},
                      app=config(tmp_path))
    observe.status_(c)
    assert c.commands == [CONTEXT, NS_GET, EVENTS]
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "READY", "RESTARTS", "AGE", "IMAGE", "STATUS"]
    assert [line.split()[0] for line in out[1:]] == ["deployment/web", "replicaset/web-1", "pod/web-1-a"]
    assert out[-1].endswith("Running, not ready (main): HTTP 503 (x2)")


def test_status_all_shows_every_workload(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [labelled(deployment("web")), deployment("someone-else")]
    c = StrictContext({CONTEXT: ok("k8s-local\n"), NS_GET: listing(*items)}, app=config(tmp_path))
    observe.status_(c, all=True)
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["deployment/someone-else",
                                                                                     "deployment/web"]


def test_status_with_nothing_deployed_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({CONTEXT: ok("k8s-local\n"), NS_GET: listing()}, app=config(tmp_path))
    observe.status_(c)
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1:] == []
    assert "no workload of app shop (environment dev) in namespace shop: `inv up` deploys it" in captured.err


def test_the_context_guard_runs_first(tmp_path: Path) -> None:
    c = StrictContext({CONTEXT: ok("prod-eu\n")}, app=config(tmp_path))
    for task in (observe.status_, observe.logs, observe.forward, observe.open_):
        with pytest.raises(Exit) as caught:
            task(c)
        assert caught.value.code == 2 and "prod-eu" in str(caught.value.message)
    assert set(c.commands) == {CONTEXT}


def test_open_prints_the_ingress_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingress = labelled({"kind": "Ingress", "metadata": {"name": "shop"}, "spec": {"rules": [{"host": "shop.127.0.0.1.nip.io"}]}})
    get = "kubectl --context k8s-local --namespace shop get ingresses,services -o json"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get: listing(ingress)}, app=config(tmp_path))
    observe.open_(c)
    captured = capsys.readouterr()
    assert captured.out == "http://shop.127.0.0.1.nip.io/\n"
    assert "from the Ingress host; it answers where the cluster runs an ingress controller" in captured.err  # no status


def test_open_says_when_no_ingress_controller_took_the_ingress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingress = labelled({"kind": "Ingress", "metadata": {"name": "shop"}, "spec": {"rules": [{"host": "shop.127.0.0.1.nip.io"}]},
                        "status": {"loadBalancer": {}}})
    get = "kubectl --context k8s-local --namespace shop get ingresses,services -o json"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get: listing(ingress)}, app=config(tmp_path))
    observe.open_(c)
    assert "from the Ingress host; no ingress controller has given the Ingress an address yet" in capsys.readouterr().err


def test_open_asks_minikube_for_a_nodeport_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"type": "NodePort"}}
    get = "kubectl --context minikube --namespace shop get ingresses,services -o json"
    url = "minikube -p minikube service web --url --namespace shop"
    c = StrictContext({"kubectl config current-context": ok("minikube\n"), get: listing(service),
                       url: ok("http://192.168.49.2:31234\n")}, app=config(tmp_path, cluster={"provider": "minikube"}))
    observe.open_(c, browser=False)
    assert capsys.readouterr().out == "http://192.168.49.2:31234\n"
    assert c.commands[-1] == url


def test_open_without_any_way_in_says_what_to_add(tmp_path: Path) -> None:
    get = "kubectl --context k8s-local --namespace shop get ingresses,services -o json"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get: listing()}, app=config(tmp_path))
    with pytest.raises(Exit) as caught:
        observe.open_(c)
    assert "add an Ingress" in str(caught.value.message)


def test_open_browser_uses_webbrowser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    get = "kubectl --context k8s-local --namespace shop get ingresses,services -o json"
    deployed = "kubectl --context k8s-local --namespace shop get deployment/web -o name"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get: listing(), deployed: ok("deployment.apps/web\n")},
                      app=config(tmp_path, forwards=["deploy/web 3000:3000"]))
    observe.open_(c, browser=True)
    assert opened == ["http://127.0.0.1:3000/"]


def test_open_says_nothing_is_deployed_instead_of_a_forwards_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get = "kubectl --context k8s-local --namespace shop get ingresses,services -o json"
    deployed = "kubectl --context k8s-local --namespace shop get deployment/web -o name"
    missing = fail(1, stderr='Error from server (NotFound): deployments.apps "web" not found')
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get: listing(), deployed: missing},
                      app=config(tmp_path, forwards=["deploy/web 3000:3000"]))
    with pytest.raises(Exit) as caught:
        observe.open_(c)
    message = str(caught.value.message)
    assert caught.value.code == 1 and "nothing of shop is deployed in namespace shop (context k8s-local)" in message
    assert "deploy/web" in message and "inv up" in message
    assert "http://" not in capsys.readouterr().out


def interrupted(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize("task", ["logs", "forward", "status"])
def test_ctrl_c_ends_logs_forward_and_status_watch_with_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            fake_time: FakeTime, task: str) -> None:  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(rollout, "list_json", interrupted)
    monkeypatch.setattr(rollout, "spawner", lambda app, merge_stderr=False, quiet=True: lambda argv: FakeProc())
    get_deploy = "kubectl --context k8s-local --namespace shop get deployment/web -o json"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get_deploy: ok(json.dumps(deployment("web")))},
                      app=config(tmp_path, forwards=[f"deploy/web {port}:8080"]))
    with pytest.raises(Exit) as caught:
        {"logs": observe.logs, "forward": observe.forward, "status": lambda c: observe.status_(c, watch=True)}[task](c)
    assert caught.value.code == 130


@pytest.mark.parametrize(("remainder", "command"), [
    ("get pods", "kubectl --context k8s-local --namespace shop get pods"),
    ("get pods -A", "kubectl --context k8s-local get pods -A"),
    ("logs deploy/web --tail 5", "kubectl --context k8s-local --namespace shop logs deploy/web --tail 5"),
])
def test_kubectl_passes_arguments_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remainder: str,
                                          command: str) -> None:
    monkeypatch.setattr(sys, "argv", ["inv", "k8s.kubectl", "--", *remainder.split()])
    c = StrictContext({CONTEXT: ok("k8s-local\n"), command: ok()}, app=config(tmp_path))
    c.remainder = remainder
    observe.kubectl_(c)
    assert c.commands == [CONTEXT, command]


def test_kubectl_keeps_quoted_words_and_returns_kubectls_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["inv", "k8s.kubectl", "--", "exec", "web", "--", "sh", "-c", "echo a b"])
    command = "kubectl --context k8s-local --namespace shop exec web -- sh -c 'echo a b'"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), command: fail(3)}, app=config(tmp_path))
    c.remainder = "exec web -- sh -c echo a b"
    with pytest.raises(Exit) as caught:
        observe.kubectl_(c)
    assert caught.value.code == 3
    assert c.commands[-1] == command


def test_kubectl_checks_a_context_given_in_the_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["inv"])
    c = StrictContext({}, app=config(tmp_path))
    c.remainder = "--context prod get pods"
    with pytest.raises(Exit) as caught:
        observe.kubectl_(c)
    assert "'prod' is not in app.cluster.allowed_contexts" in str(caught.value.message)
    c.remainder = ""
    with pytest.raises(Exit) as nothing:
        observe.kubectl_(c)
    assert nothing.value.code == 2


@pytest.mark.parametrize(("target", "ports", "forwards", "expected"), [
    (None, None, ["deploy/web 3000:8080", "deploy/mysql 3306"], ["deploy/web 3000:8080", "deploy/mysql 3306:3306"]),
    ("deploy/web", "4000:8080,4001", [], ["deploy/web 4000:8080 4001:4001"]),
    ("deployment/mysql", None, ["deploy/web 3000:8080", "deploy/mysql 3306"], ["deploy/mysql 3306:3306"]),
])
def test_forward_specs(tmp_path: Path, target: str | None, ports: str | None, forwards: list[str],
                       expected: list[str]) -> None:
    app = App.load(StrictContext({}, app=config(tmp_path, forwards=forwards)))
    assert [str(f) for f in observe.forward_specs(app, target, ports)] == expected


@pytest.mark.parametrize(("target", "ports", "words"), [
    (None, "3000", "given without --target"), ("deploy/x", None, "app.forwards has none for it"),
    (None, None, "no port forwards configured"),
])
def test_forward_specs_errors(tmp_path: Path, target: str | None, ports: str | None, words: str) -> None:
    app = App.load(StrictContext({}, app=config(tmp_path)))
    with pytest.raises(observe.KitError) as caught:
        observe.forward_specs(app, target, ports)
    assert words in caught.value.message and caught.value.code == 2


def test_forward_refuses_a_taken_port_naming_its_holder(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        c = StrictContext({CONTEXT: ok("k8s-local\n")}, app=config(tmp_path, forwards=[f"deploy/mysql {port}:3306"]))
        with pytest.raises(Exit) as caught:
            observe.forward(c)
    message = str(caught.value.message)
    assert f"local port {port} (deploy/mysql) is already in use by pid {os.getpid()}" in message
    assert f"kill {os.getpid()}" in message
    assert c.commands == [CONTEXT]  # refused before anything started


def test_forward_loop_resolves_the_selector_and_forwards_to_a_ready_pod(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime) -> None:  # noqa: F811
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started: list[list[str]] = []
    monkeypatch.setattr(rollout, "spawner", lambda app, merge_stderr=False, quiet=True: lambda argv: started.append(argv) or FakeProc())
    monkeypatch.setattr(observe.supervise, "Wakeup", fake_time.wake)
    get_deploy = "kubectl --context k8s-local --namespace shop get deployment/web -o json"
    pods = "kubectl --context k8s-local --namespace shop get pods -o json"
    web = deployment("web")
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get_deploy: ok(json.dumps(web)),
                       pods: listing(pod("web-1-a", "web-1", labels={"app": "web"}))}, app=config(tmp_path))
    app = App.load(c)
    rounds = iter(range(3))
    observe.supervise_forwards(app, observe.forward_specs(app, "deploy/web", f"{port}:8080"),
                               stop_when=lambda: next(rounds, None) is None)
    assert started == [["kubectl", "--context", "k8s-local", "--namespace", "shop", "port-forward", "--address",
                        "127.0.0.1", "pod/web-1-a", f"{port}:8080"]]
    assert fake_time.feeds == [["pods"]]
    assert c.commands[:3] == [CONTEXT, get_deploy, pods]


def test_forward_loop_with_its_forward_up_still_looks_at_stop_when_every_tick(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """`inv dev` ending sets stop_when: the loop must see it within a tick, not after the 2 s backstop."""
    started: list[list[str]] = []
    monkeypatch.setattr(rollout, "spawner", lambda app, merge_stderr=False, quiet=True: lambda argv: started.append(argv) or FakeProc())
    monkeypatch.setattr(observe.supervise, "Wakeup", fake_time.wake)
    get_deploy = "kubectl --context k8s-local --namespace shop get deployment/web -o json"
    pods = "kubectl --context k8s-local --namespace shop get pods -o json"
    monkeypatch.setattr(observe, "listening", lambda port: True)  # kubectl listens at once: the forward is up
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get_deploy: ok(json.dumps(deployment("web"))),
                       pods: listing(pod("web-1-a", "web-1", labels={"app": "web"}))}, app=config(tmp_path))
    app = App.load(c)
    port = 18080
    monkeypatch.setattr(observe.ports, "port_free", lambda p: True)
    rounds = iter(range(4))
    observe.supervise_forwards(app, observe.forward_specs(app, "deploy/web", f"{port}:8080"),
                               stop_when=lambda: next(rounds, None) is None)
    assert f"up: 127.0.0.1:{port} → deploy/web:8080" in capsys.readouterr().err
    assert len(fake_time.waits) == 4 and max(fake_time.waits) <= observe.TICK


def test_follow_logs_wires_children_lines_and_pod_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         fake_time: FakeTime) -> None:  # noqa: F811
    out: list[str] = []
    feeds: list[Any] = []
    children: list[list[str]] = []

    def start_factory(app: App, events: queue.Queue[tuple[Any, ...]]) -> Any:
        def start(argv: list[str], key: tuple[str, str]) -> FakeProc:
            children.append(argv)
            events.put(("line", key, "2026-01-01T00:00:01Z hello from " + key[0]))
            events.put(("end", key, ""))
            events.put(_CHANGE)
            done = FakeProc()
            done.code = 0  # its stream ended: the pod can be reported gone
            return done
        feeds.append(events)
        return start

    _CHANGE = observe._CHANGE
    monkeypatch.setattr(observe, "_log_start", start_factory)
    get_pods = "kubectl --context k8s-local --namespace shop get pods -l app=shop -o json"
    first = pod("web-1-a", statuses=[container_status("web", cid="docker://1")])
    second = pod("web-1-b", statuses=[container_status("web", cid="docker://2")])
    c = StrictContext({CONTEXT: ok("k8s-local\n"), get_pods: [listing(first), listing(first, second), listing(second)]},
                      app=config(tmp_path), repeat=False)
    app = App.load(c)
    observe.follow_logs(app, "app=shop", "10s", None, False, out.append, stop_when=lambda: feeds[0].empty() and len(out) >= 5)
    assert children == [
        ["kubectl", "--context", "k8s-local", "--namespace", "shop", "logs", "-f", "web-1-a", "-c", "web", "--timestamps",
         "--since=10s"],
        ["kubectl", "--context", "k8s-local", "--namespace", "shop", "logs", "-f", "web-1-b", "-c", "web", "--timestamps"]]
    assert out == ["+ web-1-a/web following", "web-1-a/web hello from web-1-a", "+ web-1-b/web following",
                   "web-1-b/web hello from web-1-b", "- web-1-a is gone"]


def test_summary_prints_the_table_and_the_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = [{"kind": "Deployment", "metadata": {"name": "web"}},
                 {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {"rules": [{"host": "shop.127.0.0.1.nip.io"}]}}]
    c = StrictContext({CONTEXT: ok("k8s-local\n"), NS_GET: listing(deployment("web"), deployment("other"))},
                      app=config(tmp_path))
    observe.summary(App.load(c), documents)
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["NAME", "deployment/web", "url:"]
    assert out[-1] == ("url: http://shop.127.0.0.1.nip.io/    (the Ingress host; it answers where the cluster runs an "
                       "ingress controller)")  # provider docker: the cluster's own, if it has one


def test_summary_under_dry_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({}, app=config(tmp_path), dry=True)
    observe.summary(App.load(c), [])
    assert c.commands == []
    assert "--dry" in capsys.readouterr().err
