"""`inv k8s.render` as a user runs it: the minikube IP from the stand-in or from config, kustomize,
environments, and bad manifests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import FAKES, inv, make_app


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def fake_minikube_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_MINIKUBE_LOG": str(tmp_path / "minikube.log"),
            "FAKE_MINIKUBE_STATE": str(tmp_path / "mk-state"), "FAKE_MINIKUBE_RUNNING": "1",
            "BASE_IMAGE": "busybox:1", **extra}


def hosts(output: str) -> list[str]:
    return [r["host"] for d in yaml.safe_load_all(output) if d["kind"] == "Ingress" for r in d["spec"]["rules"]]


def test_minikube_ip_comes_from_the_stand_in_once(app: Path, tmp_path: Path) -> None:
    env = fake_minikube_env(tmp_path, FAKE_MINIKUBE_IP="192.168.99.100")
    result = inv(app, "k8s.render", env=env)
    assert result.returncode == 0, result.stderr
    assert hosts(result.stdout) == ["hello.192.168.99.100.nip.io"]
    assert "PUBLIC_URL: http://hello.192.168.99.100.nip.io/" in result.stdout
    calls = [json.loads(line) for line in (tmp_path / "minikube.log").read_text().splitlines()]
    assert [c for c in calls if "ip" in c] == [["-p", "minikube", "ip"]]  # asked once, though used twice


def test_configured_ip_is_used_off_minikube_and_minikube_is_never_asked(app: Path, tmp_path: Path) -> None:
    env = fake_minikube_env(tmp_path, INVOKE_APP_CLUSTER_PROVIDER="docker", INVOKE_APP_CLUSTER_IP="10.20.30.40")
    result = inv(app, "k8s.render", env=env)
    assert hosts(result.stdout) == ["hello.10.20.30.40.nip.io"]
    assert not (tmp_path / "minikube.log").exists()


def test_environments_get_their_own_namespace_and_host(app: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["environments"] = {"dev": {}, "staging": {"namespace": "hello-staging"}, "qa": {"namespace": "hello-qa"}}
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))  # the example's Ingress host is ${INGRESS_HOST}
    env = fake_minikube_env(tmp_path)
    seen = {}
    for name in ("dev", "staging", "qa"):
        result = inv(app, "k8s.render", "--env", name, env=env)
        assert result.returncode == 0, result.stderr
        docs = list(yaml.safe_load_all(result.stdout))
        seen[name] = (hosts(result.stdout)[0], {d["metadata"].get("namespace") for d in docs})
    assert seen == {"dev": ("hello.192.168.49.2.nip.io", {None}),
                    "staging": ("hello-staging.192.168.49.2.nip.io", {"hello-staging"}),
                    "qa": ("hello-qa.192.168.49.2.nip.io", {"hello-qa"})}
    unknown = inv(app, "k8s.render", "--env", "prod", env=env)
    assert unknown.returncode == 2 and "unknown environment 'prod'" in unknown.stderr


def test_kustomize_folder_is_rendered_and_its_error_shown(app: Path, tmp_path: Path) -> None:
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")
    overlay = app / "k8s"
    (overlay / "kustomization.yaml").write_text("resources:\n- configmap.yaml\n- web-deploy.yaml\ncommonLabels:\n  tier: demo\n")
    env = fake_minikube_env(tmp_path)
    result = inv(app, "k8s.render", env=env)
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert {d["kind"] for d in docs} == {"ConfigMap", "Deployment"}
    assert all(d["metadata"]["labels"]["tier"] == "demo" for d in docs)
    (overlay / "kustomization.yaml").write_text("resources:\n- missing.yaml\n")
    broken = inv(app, "k8s.render", env=env)
    assert broken.returncode == 2
    assert "kustomize failed" in broken.stderr and "missing.yaml" in broken.stderr


def test_bad_manifests_are_reported_with_file_and_line(app: Path, tmp_path: Path) -> None:
    env = fake_minikube_env(tmp_path)
    (app / "k8s" / "zz-bad.yaml").write_text("kind: ConfigMap\nmetadata:\n\tname: x\n")
    result = inv(app, "k8s.render", env=env)
    assert result.returncode == 2 and "zz-bad.yaml:3:1: invalid YAML" in result.stderr and "tabs" in result.stderr
    (app / "k8s" / "zz-bad.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\ndata: {a: '${UNSET_ONE}', b: '${UNSET_TWO}'}\n")
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["vars"] = {"UNSET_ONE": None, "UNSET_TWO": None}
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))
    result = inv(app, "k8s.render", env=env)
    assert "zz-bad.yaml:3: ${UNSET_ONE} is not defined" in result.stderr
    assert "zz-bad.yaml:3: ${UNSET_TWO} is not defined" in result.stderr
    unsafe = inv(app, "k8s.render", "--set", "UNSET_ONE=a: b", "--set", "UNSET_TWO=x", env=env)
    assert "the value of UNSET_ONE (from --set) contains ': '" in unsafe.stderr
    (app / "k8s").rename(app / "manifests-moved")
    missing = inv(app, "k8s.render", env=env)
    assert missing.returncode == 2 and "manifest folder" in missing.stderr and "does not exist" in missing.stderr
    assert "Traceback" not in result.stderr + unsafe.stderr + missing.stderr


def test_lint_catches_recreate_with_rolling_update_before_apply(app: Path, tmp_path: Path) -> None:
    deploy = app / "k8s" / "worker-deploy.yaml"
    deploy.write_text(deploy.read_text().replace("  replicas: 1\n", "  replicas: 1\n  strategy:\n    type: Recreate\n"
                                                 "    rollingUpdate: {maxSurge: 1}\n"))
    result = inv(app, "k8s.lint", "--no-live", env=fake_minikube_env(tmp_path))
    assert result.returncode == 1
    assert "worker-deploy.yaml Deployment/hello-worker: error: spec.strategy.rollingUpdate may not be set" in result.stderr


def test_a_manifest_that_is_not_utf8_is_named(app: Path, tmp_path: Path) -> None:
    (app / "k8s" / "zz-binary.yaml").write_bytes(b"\xff\xfe kind: x\n")
    result = inv(app, "k8s.render", env=fake_minikube_env(tmp_path))
    assert result.returncode == 2 and "zz-binary.yaml: not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_warns_when_a_manifest_names_another_namespace(app: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["environments"] = {"dev": {"namespace": "hello-dev"}}
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))
    (app / "k8s" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"
                                            "  namespace: legacy\ndata: {a: b}\n")
    result = inv(app, "k8s.render", env=fake_minikube_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("says namespace") == 1
    assert f"warning: {app}/k8s/extra.yaml: ConfigMap/extra says namespace 'legacy'; the environment's namespace " \
           "'hello-dev' is used instead" in result.stderr
