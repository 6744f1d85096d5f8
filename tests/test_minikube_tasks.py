"""minikube tasks against a strict mock context: the exact commands, and the bad-input errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKES
from invoke import Exit
from strict import StrictContext, fail, ok

from devloop import minikube

STATUS = "minikube -p minikube status -o json"
PROFILES = "minikube profile list -o json"
ADDONS = "minikube -p minikube addons list -o json"


def running(name: str = "minikube") -> str:
    return json.dumps({"Name": name, "Host": "Running", "Kubelet": "Running", "APIServer": "Running",
                       "Kubeconfig": "Configured", "Worker": False})


def stopped(name: str = "minikube") -> str:
    return json.dumps({"Name": name, "Host": "Stopped", "Kubelet": "Stopped", "APIServer": "Stopped",
                       "Kubeconfig": "Stopped", "Worker": False})


NOT_FOUND = fail(85, stdout='🤷  Profile "minikube" not found. Run "minikube profile list" to view all profiles.\n')


def profiles(runtime: str = "docker", cpus: int = 2, memory: int = 2048) -> str:
    return json.dumps({"invalid": [], "valid": [{"Name": "minikube", "Status": "Running", "Config": {
        "Driver": "docker", "CPUs": cpus, "Memory": memory,
        "KubernetesConfig": {"KubernetesVersion": "v1.28.3", "ContainerRuntime": runtime},
        "Nodes": [{"IP": "192.168.49.2", "ControlPlane": True}]}}]})


def addons(*enabled: str) -> str:
    return json.dumps({name: {"Profile": "minikube", "Status": "enabled" if name in enabled else "disabled"}
                       for name in ("dashboard", "ingress", "metrics-server")})


@pytest.fixture(autouse=True)
def minikube_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)


def context(results: dict[str, Any], tmp_path: Path, dry: bool = False, **minikube_conf: Any) -> StrictContext:
    cluster = {"provider": "minikube", "minikube": {"profile": "minikube", "cpus": 2, "memory": "2048", "driver": "",
                                                    "disk_size": "", "kubernetes_version": "", "addons": ["ingress"],
                                                    **minikube_conf}}
    return StrictContext(results, app={"root": str(tmp_path), "name": "demo", "cluster": cluster}, dry=dry)


def test_start_from_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = context({
        STATUS: [NOT_FOUND, ok(running())],
        "minikube -p minikube start --driver=hyperkit --cpus=3 --memory=2048 --disk-size=12g": ok(),
        ADDONS: ok(addons()),
        "minikube -p minikube addons enable ingress": ok(),
        PROFILES: ok(profiles()),
    }, tmp_path, driver="hyperkit", cpus=3, disk_size="12g")
    minikube.start(c)
    assert c.commands == [STATUS, "minikube -p minikube start --driver=hyperkit --cpus=3 --memory=2048 --disk-size=12g",
                          ADDONS, "minikube -p minikube addons enable ingress", STATUS, PROFILES]
    out = capsys.readouterr().out
    assert "host        Running" in out and "ip          192.168.49.2" in out and "runtime     docker" in out


def test_start_when_running_starts_nothing_and_skips_enabled_addons(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    c = context({STATUS: ok(running()), PROFILES: ok(profiles()), ADDONS: ok(addons("ingress"))}, tmp_path)
    minikube.start(c)
    assert c.commands == [STATUS, PROFILES, ADDONS, STATUS, PROFILES]
    err = capsys.readouterr().err
    assert "already running (IP 192.168.49.2, runtime docker): nothing to start" in err
    assert "addon ingress: already enabled" in err


def test_start_flags_override_config_and_sizes_that_cannot_apply_are_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = context({
        "minikube -p dev status -o json": ok(stopped("dev")),
        PROFILES: ok(profiles(cpus=2, memory=2048).replace('"minikube"', '"dev"')),
        "minikube -p dev start --cpus=4 --memory=4g --kubernetes-version=v1.20.2": ok(),
        "minikube -p dev addons list -o json": ok(addons("ingress")),
    }, tmp_path, dry=True)
    minikube.start(c, profile="dev", cpus="4", memory="4g", kubernetes_version="v1.20.2")
    err = capsys.readouterr().err
    assert "minikube -p dev start --cpus=4 --memory=4g --kubernetes-version=v1.20.2    # --dry: not run" in err
    assert "note: cpus 4 asked, the cluster has 2" in err and "memory 4096 MB asked, the cluster has 2048 MB" in err


def test_start_ip_failure_is_explained_and_recreate_deletes_and_retries(tmp_path: Path) -> None:
    failure = fail(60, stderr="❌  Exiting due to PR_HYPERKIT_NO_IP: Failed to start host: creating host: create: "
                              "Error creating machine: Error in driver during machine creation: IP address never found "
                              "in dhcp leases file Temporary Error: Could not find an IP address for 6a:c7:25:8a:7f:2b")
    start = "minikube -p minikube start --cpus=2 --memory=2048"
    c = context({STATUS: NOT_FOUND, start: failure}, tmp_path, addons=[])
    with pytest.raises(Exit) as caught:
        minikube.start(c)
    assert caught.value.code == 60
    assert "the VM never got an IP address" in str(caught.value.message)
    assert "inv minikube.delete" in str(caught.value.message)

    c = context({STATUS: [NOT_FOUND, ok(running())], start: [failure, ok()], "minikube -p minikube delete": ok(),
                 PROFILES: ok(profiles())}, tmp_path, addons=[])
    minikube.start(c, recreate=True)
    assert c.commands == [STATUS, start, "minikube -p minikube delete", start, STATUS, PROFILES]


@pytest.mark.parametrize("kwargs, words", [
    ({"driver": "hyperkitt"}, "--driver 'hyperkitt' is not a minikube driver; did you mean 'hyperkit'?"),
    ({"cpus": "three"}, "--cpus 'three' is not a whole number"),
    ({"memory": "lots"}, "--memory 'lots' is not a size"),
    ({"memory": "512"}, "minikube needs at least 1800 MB"),
])
def test_bad_flags_stop_before_any_command(tmp_path: Path, kwargs: dict[str, str], words: str) -> None:
    c = context({}, tmp_path)
    with pytest.raises(Exit) as caught:
        minikube.start(c, **kwargs)
    assert caught.value.code == 2 and words in str(caught.value.message)
    assert c.commands == []


@pytest.mark.parametrize("conf, words", [
    ({"cpus": "many"}, "app.cluster.minikube.cpus must be a whole number, got 'many'"),
    ({"memory": "two gigs"}, "app.cluster.minikube.memory must be a size like 2048 or 4g"),
    ({"driver": "virtualbox2"}, "app.cluster.minikube.driver 'virtualbox2' is not a minikube driver"),
])
def test_bad_config_stops_before_any_command(tmp_path: Path, conf: dict[str, str], words: str) -> None:
    c = context({}, tmp_path, **conf)
    with pytest.raises(Exit) as caught:
        minikube.start(c)
    assert caught.value.code == 2 and words in str(caught.value.message)
    assert c.commands == []


def test_minikube_missing_gives_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for task in (minikube.start, minikube.status, minikube.ip, minikube.stop):
        with pytest.raises(Exit) as caught:
            task(context({}, tmp_path))
        assert caught.value.code == 127
        assert "minikube not found" in str(caught.value.message)
        assert "https://minikube.sigs.k8s.io/docs/start/" in str(caught.value.message)


@pytest.mark.parametrize("status, commands, said", [
    (NOT_FOUND, [STATUS], "no minikube profile 'minikube': nothing to stop"),
    (ok(stopped()), [STATUS], "already stopped"),
    (ok(running()), [STATUS, "minikube -p minikube stop"], ""),
])
def test_stop_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str], status: Any, commands: list[str],
                            said: str) -> None:
    c = context({STATUS: status, "minikube -p minikube stop": ok()}, tmp_path)
    minikube.stop(c)
    assert c.commands == commands
    assert said in capsys.readouterr().err


def test_delete(tmp_path: Path) -> None:
    c = context({"minikube -p other delete": ok()}, tmp_path)
    minikube.delete(c, profile="other")
    assert c.commands == ["minikube -p other delete"]


def test_status_table_json_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minikube.status(context({STATUS: ok(running()), PROFILES: ok(profiles("containerd"))}, tmp_path))
    out = capsys.readouterr().out
    for row in ("profile     minikube", "host        Running", "kubelet     Running", "apiserver   Running",
                "ip          192.168.49.2", "runtime     containerd", "kubernetes  v1.28.3"):
        assert row in out
    minikube.status(context({STATUS: ok(running()), PROFILES: ok(profiles())}, tmp_path), json_=True)
    data = json.loads(capsys.readouterr().out)
    assert data["running"] is True and data["ip"] == "192.168.49.2" and data["runtime"] == "docker"
    with pytest.raises(Exit) as caught:
        minikube.status(context({STATUS: fail(7, stdout=stopped()), PROFILES: ok(profiles())}, tmp_path))
    assert caught.value.code == 3 and "not running (host Stopped)" in str(caught.value.message)


def test_ip_prints_the_address_or_says_why_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minikube.ip(context({"minikube -p minikube ip": ok("192.168.49.2\n")}, tmp_path))
    assert capsys.readouterr().out == "192.168.49.2\n"
    c = context({"minikube -p minikube ip": fail(89, stderr="The control plane node must be running"),
                 STATUS: fail(7, stdout=stopped())}, tmp_path)
    with pytest.raises(Exit) as caught:
        minikube.ip(c)
    assert caught.value.code == 3 and "inv minikube.start" in str(caught.value.message)


def test_docker_env_prints_minikubes_output_for_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exports = 'export DOCKER_HOST="tcp://192.168.49.2:2376"\n'
    minikube.docker_env(context({"minikube -p minikube docker-env --shell bash": ok(exports)}, tmp_path), shell="bash")
    assert capsys.readouterr().out == exports
    c = context({"minikube -p minikube docker-env": fail(14, stderr='❌  Exiting due to MK_USAGE: The docker-env command '
                 'is only compatible with the "docker" runtime, but this cluster was configured to use the "containerd" '
                 'runtime.'), STATUS: ok(running())}, tmp_path)
    with pytest.raises(Exit) as caught:
        minikube.docker_env(c)
    assert "runs the containerd runtime" in str(caught.value.message)


def test_dashboard_needs_a_running_cluster(tmp_path: Path) -> None:
    c = context({STATUS: ok(running()), "minikube -p minikube dashboard --url": ok("http://127.0.0.1:1/\n")}, tmp_path)
    minikube.dashboard(c, url=True)
    assert c.commands == [STATUS, "minikube -p minikube dashboard --url"]
    with pytest.raises(Exit) as caught:
        minikube.dashboard(context({STATUS: NOT_FOUND}, tmp_path))
    assert caught.value.code == 85
