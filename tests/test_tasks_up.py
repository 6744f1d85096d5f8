"""`up`, `down`, `doctor` and the image/k8s tasks against a strict mock context: the exact commands, in order."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HELLO, make_app
from invoke import Exit
from strict import StrictContext, fail, ok

from devloop import docker_api, image, k8s, workflow
from devloop.core import converge
from devloop.core import images as core_images


@pytest.fixture(autouse=True)
def docker_cli_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock context scripts `docker image inspect`: the daemon's API is not asked."""
    monkeypatch.setattr(docker_api, "daemon_url", lambda env: None)


def listing(context: str = "k8s-local") -> str:
    """The one read of the kit's live objects that lint and prune share."""
    return f"kubectl --context {context} get {converge.listing_kinds()} -l devloop/app=hello,devloop/env=dev -o json"


def hello_config(app_dir: Path, **overrides: Any) -> dict[str, Any]:
    config = yaml.safe_load((HELLO / "invoke.yaml").read_text())["app"]
    config["root"] = str(app_dir)
    config["images"]["hello"]["build_args"] = {"BASE_IMAGE": "busybox:1"}
    config["cluster"] = dict(config["cluster"], **overrides.pop("cluster", {}))
    config.update(overrides)
    return config


def hello_tag(app_dir: Path) -> str:
    return core_images.build_inputs(app_dir, app_dir / "Dockerfile", {"BASE_IMAGE": "busybox:1"}).tag


def ready_listing() -> str:
    def deployment(name: str, replicas: int) -> dict[str, Any]:
        return {"kind": "Deployment", "metadata": {"name": name, "generation": 1},
                "spec": {"replicas": replicas},
                "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                           "readyReplicas": replicas, "availableReplicas": replicas}}
    return json.dumps({"items": [deployment("hello-web", 2), deployment("hello-worker", 1)]})


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def test_up_on_a_shared_docker_daemon_runs_exactly_these_commands(app_dir: Path) -> None:
    tag = hello_tag(app_dir)
    c = StrictContext({
        "kubectl config current-context": ok("k8s-local\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}": [fail(1, stderr="Error: No such image"),
                                                                      ok("sha256:1234\n")],
        f"docker build --tag hello:{tag} --iidfile {app_dir}/.kit/build-hello-{os.getpid()}.iid --file {app_dir}/Dockerfile "
        f"--build-arg BASE_IMAGE=busybox:1 {app_dir}": ok(),
        listing(): ok('{"items": []}'),
        "kubectl --context k8s-local apply -f .kit/rendered-dev.yaml": ok(),
        "kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json "
        "--request-timeout=10s": ok(ready_listing()),  # the wait (its requests end by its deadline); the closing
        # status table shows what the wait saw ready: no second listing
    }, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}), repeat=False)
    cwd = os.getcwd()
    os.chdir(app_dir)
    try:
        workflow.up(c)
    finally:
        os.chdir(cwd)
    assert [cmd.split()[0:3] for cmd in c.commands] == [
        ["kubectl", "config", "current-context"], ["docker", "image", "inspect"], ["docker", "build", "--tag"],
        ["docker", "image", "inspect"], ["kubectl", "--context", "k8s-local"], ["kubectl", "--context", "k8s-local"],
        ["kubectl", "--context", "k8s-local"],
    ]
    assert c.commands[-3] == listing()  # lint and prune read the kit's objects once, before the apply
    assert c.commands[-2].endswith("apply -f .kit/rendered-dev.yaml")
    rendered = list(yaml.safe_load_all((app_dir / ".kit" / "rendered-dev.yaml").read_text()))
    web = next(d for d in rendered if d["metadata"]["name"] == "hello-web" and d["kind"] == "Deployment")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == f"hello:{tag}"
    ingress = next(d for d in rendered if d["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "hello.127.0.0.1.nip.io"
    assert oct((app_dir / ".kit" / "rendered-dev.yaml").stat().st_mode & 0o777) == "0o600"


def test_up_skips_the_build_when_the_tag_exists(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tag = hello_tag(app_dir)
    c = StrictContext({
        "kubectl config current-context": ok("k8s-local\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}": ok("sha256:1234\n"),
    }, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}))
    image.build(c)
    assert not any(cmd.startswith("docker build") for cmd in c.commands)
    assert f"image hello:{tag}: up to date" in capsys.readouterr().err


def test_dry_up_prints_changes_and_runs_only_queries(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tag = hello_tag(app_dir)
    c = StrictContext({
        "kubectl config current-context": ok("minikube\n"),
        "minikube -p minikube ip": ok("192.168.49.2\n"),
        "kubectl --context minikube get nodes -o 'jsonpath={.items[0].status.nodeInfo.containerRuntimeVersion}'":
            ok("docker://24.0.7"),
        "minikube -p minikube docker-env --shell none": ok("DOCKER_TLS_VERIFY=1\nDOCKER_HOST=tcp://192.168.49.2:2376\n"
                                                           "DOCKER_CERT_PATH=/home/u/.minikube/certs\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}": fail(1, stderr="No such image"),
        listing("minikube"): ok('{"items": []}'),
    }, app=hello_config(app_dir), dry=True)
    workflow.up(c)
    err = capsys.readouterr().err
    assert "$ DOCKER_TLS_VERIFY=1 DOCKER_HOST=tcp://192.168.49.2:2376 DOCKER_CERT_PATH=/home/u/.minikube/certs docker build" in err
    assert "docker build --tag hello:" in err and "# --dry: not run" in err
    assert f"kubectl --context minikube apply -f {app_dir}/.kit/rendered-dev.yaml    # --dry: not run" in err
    assert not any(cmd.startswith(("docker build", "kubectl --context minikube apply")) for cmd in c.commands)
    assert not (app_dir / ".kit").exists()  # --dry writes nothing


def test_context_guard_refuses_before_anything_is_built(app_dir: Path) -> None:
    c = StrictContext({"kubectl config current-context": ok("gke_prod\n")}, app=hello_config(app_dir))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    assert "kube context 'gke_prod' is not in app.cluster.allowed_contexts" in str(err.value.message)
    assert "--allow-context" in str(err.value.message)
    assert c.commands == ["kubectl config current-context"]


def write_kubeconfig(path: Path, context: str) -> Path:
    path.write_text(f"apiVersion: v1\nkind: Config\ncurrent-context: {context}\ncontexts: []\nclusters: []\n")
    return path


def test_the_context_is_read_from_the_kubeconfig_files_without_running_kubectl(
        app_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unset = tmp_path / "unset.yaml"
    unset.write_text("apiVersion: v1\nkind: Config\n")
    first = write_kubeconfig(tmp_path / "first.yaml", "gke_prod")
    second = write_kubeconfig(tmp_path / "second.yaml", "minikube")
    # as kubectl: a missing file is skipped, and the first file that sets current-context wins
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing.yaml"), str(unset), str(first), str(second)]))
    c = StrictContext({}, app=hello_config(app_dir))  # any command would fail the test
    with pytest.raises(Exit) as err:
        workflow.up(c)
    assert "kube context 'gke_prod' is not in app.cluster.allowed_contexts" in str(err.value.message)
    assert c.commands == []


def test_a_kubeconfig_that_is_not_yaml_leaves_the_answer_to_kubectl(app_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "config"
    broken.write_text("current-context: [minikube\n")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    loading = f'error: error loading config file "{broken}": yaml: line 1: did not find expected \',\' or \']\'\n'
    c = StrictContext({"kubectl config current-context": fail(1, stderr=loading)}, app=hello_config(app_dir))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    assert str(err.value.message).splitlines()[:2] == [
        "error: kubectl cannot load the kubeconfig file it names below", f"  | {loading.strip()}"]
    assert c.commands == ["kubectl config current-context"]


def test_a_kubeconfig_variable_naming_no_file_says_so(app_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope.kubeconfig"))
    c = StrictContext({"kubectl config current-context": fail(1, stderr="error: current-context is not set\n")},
                      app=hello_config(app_dir))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    assert str(err.value.message).splitlines()[0] == \
        f"error: KUBECONFIG={tmp_path / 'nope.kubeconfig'} names no file that exists: kubectl has no cluster to talk to"
    assert c.commands == ["kubectl config current-context"]


def test_no_cluster_names_the_fix(app_dir: Path) -> None:
    c = StrictContext({"kubectl config current-context": fail(1, stderr="error: current-context is not set")},
                      app=hello_config(app_dir))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    assert "no current kube context" in str(err.value.message) and "KUBECONFIG" in str(err.value.message)


def test_docker_daemon_down_is_one_clear_line(app_dir: Path) -> None:
    tag = hello_tag(app_dir)
    c = StrictContext({
        "kubectl config current-context": ok("k8s-local\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}":
            fail(1, stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"),
    }, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    message = str(err.value.message)
    assert message.startswith("error: the Docker daemon is not reachable")
    assert "Traceback" not in message and err.value.code == 1


def test_failed_build_names_the_failing_step(app_dir: Path) -> None:
    tag = hello_tag(app_dir)
    output = "Step 1/3 : FROM busybox:1\nStep 2/3 : RUN make\n ---> Running in 1\nmake: no rule\n" \
             "The command '/bin/sh -c make' returned a non-zero code: 2\n"
    c = StrictContext({
        "kubectl config current-context": ok("k8s-local\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}": fail(1, stderr="No such image"),
        re.compile(r"^docker build "): fail(1, stdout=output),
    }, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}))
    with pytest.raises(Exit) as err:
        workflow.up(c)
    message = str(err.value.message)
    assert "docker build failed at Step 2/3 : RUN make" in message
    assert "make: no rule" in message and "previous image and its tag are untouched" in message


def test_down_deletes_by_the_kit_label(app_dir: Path) -> None:
    c = StrictContext({"kubectl config current-context": ok("k8s-local\n"),
                       re.compile("^kubectl --context k8s-local delete "): ok()}, app=hello_config(app_dir))
    record = app_dir / ".kit" / "rendered-dev.yaml"  # what `up` applied: image.prune keeps its images
    record.parent.mkdir(exist_ok=True)
    record.write_text("kind: Deployment\n")
    workflow.down(c)
    delete = c.commands[-1]
    assert "-l devloop/app=hello,devloop/env=dev --ignore-not-found" in delete
    assert "persistentvolumeclaims" not in delete
    assert not record.exists()  # nothing of it runs now


def test_a_down_that_fails_or_is_dry_keeps_the_record_of_what_runs(app_dir: Path) -> None:
    record = app_dir / ".kit" / "rendered-dev.yaml"
    record.parent.mkdir(exist_ok=True)
    record.write_text("kind: Deployment\n")
    failing = StrictContext({"kubectl config current-context": ok("k8s-local\n"),
                             re.compile("^kubectl --context k8s-local delete "): fail(1, stderr="Error: forbidden")},
                            app=hello_config(app_dir))
    with pytest.raises(Exit):
        workflow.down(failing)
    dry = StrictContext({"kubectl config current-context": ok("k8s-local\n")}, app=hello_config(app_dir), dry=True)
    workflow.down(dry)
    assert record.read_text() == "kind: Deployment\n"


def test_diff_leaves_the_record_of_what_the_cluster_runs_alone(app_dir: Path) -> None:
    record = app_dir / ".kit" / "rendered-dev.yaml"  # what `up` applied last
    record.parent.mkdir(exist_ok=True)
    record.write_text("kind: Deployment\n")
    c = StrictContext({"kubectl config current-context": ok("k8s-local\n"),
                       re.compile("^kubectl --context k8s-local diff -f "): ok()},
                      app=hello_config(app_dir, cluster={"provider": "docker", "ip": "10.1.2.3"}))
    k8s.diff(c)
    assert c.commands[-1].endswith("/.kit/diff-dev.yaml")
    assert "hello.10.1.2.3.nip.io" in (app_dir / ".kit" / "diff-dev.yaml").read_text()
    assert record.read_text() == "kind: Deployment\n"


def test_render_prints_yaml_to_stdout_only(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({}, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "10.1.2.3"}))
    k8s.render_(c)
    out = capsys.readouterr()
    docs = list(yaml.safe_load_all(out.out))
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment", "Service", "Ingress"}
    assert "hello.10.1.2.3.nip.io" in out.out and c.commands == []


def test_render_with_set_overrides_and_minikube_ip_from_the_stand_in_value(app_dir: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({"minikube -p minikube ip": ok("192.168.49.2\n")}, app=hello_config(app_dir))
    k8s.render_(c)
    assert "hello.192.168.49.2.nip.io" in capsys.readouterr().out
    k8s.render_(c, set=["MINIKUBE_IP=10.0.0.9"])
    assert "hello.10.0.0.9.nip.io" in capsys.readouterr().out


def test_render_bad_set_and_missing_ip_are_user_errors(app_dir: Path) -> None:
    c = StrictContext({}, app=hello_config(app_dir, cluster={"provider": "docker"}))
    with pytest.raises(Exit) as err:
        k8s.render_(c, set=["NOEQUALS"])
    assert "is not NAME=VALUE" in str(err.value.message) and err.value.code == 2
    with pytest.raises(Exit) as err:
        k8s.render_(c)
    assert "app.cluster.ip is not set" in str(err.value.message)


def test_unknown_image_name_flag(app_dir: Path) -> None:
    c = StrictContext({}, app=hello_config(app_dir))
    with pytest.raises(Exit) as err:
        image.build(c, name="nope")
    assert "no image named 'nope'" in str(err.value.message)


@pytest.mark.parametrize(("manifest", "text", "said"), [
    ("orphan-service.yaml",
     "apiVersion: v1\nkind: Service\nmetadata: {name: orphan}\nspec: {selector: {app: nobody}, ports: [{port: 80}]}\n",
     "orphan-service.yaml Service/orphan: warning: Service selector"),
    ("greeting.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: greeting}\ndata:\n  who: ${WHO}\n",
     "greeting.yaml:5: ${WHO} is not declared in app.vars"),
])
def test_ci_gate_fails_on_warnings_before_anything_is_applied(app_dir: Path, manifest: str, text: str, said: str) -> None:
    (app_dir / "k8s" / manifest).write_text(text)
    tag = hello_tag(app_dir)
    c = StrictContext({
        "kubectl config current-context": ok("k8s-local\n"),
        f"docker image inspect --format '{{{{.Id}}}}' hello:{tag}": ok("sha256:1234\n"),
        listing(): ok('{"items": []}'),
    }, app=hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}))
    with pytest.raises(Exit) as err:
        workflow.up(c, ci=True)
    assert said in str(err.value.message)
    assert not any(" apply " in cmd for cmd in c.commands)
