"""The demo Rails app's own k8s/ (top level): it renders in every environment, hangs together (names, selectors,
stable DNS names, secrets), lints clean, and passes a server-side dry run on the real cluster.

There is no Rails source in this repository, so the manifests are rendered, linted and dry-run only.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, inv
from invoke import Config, Context

from devloop import k8s, tls
from devloop.core import images as core_images
from devloop.core import render
from devloop.core.config import DEFAULTS
from devloop.kit import App

ENVIRONMENTS = {  # env -> (namespace, Ingress host, TLS secret) for MINIKUBE_IP 127.0.0.1
    "dev": ("demoapp", "demoapp.127.0.0.1.nip.io", "demoapp-tls"),
    "staging": ("demoapp-staging", "demoapp-staging.127.0.0.1.nip.io", "demoapp-staging-tls"),
    "qa": ("demoapp-qa", "demoapp-qa.127.0.0.1.nip.io", "demoapp-qa-tls"),
}
CLUSTER_ENV = {"INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1"}
THIRD_PARTY = {"mysql:5.7", "redis:4-alpine"}


def demo_app(tmp_path: Path, namespaces: dict[str, str] | None = None, secrets: bool = True) -> Path:
    """The repo's demo app (invoke.yaml, k8s/, chart) in a folder of its own, wired to the kit like a user's repo,
    with each environment's secrets file made from its committed example and a stand-in Dockerfile."""
    app = tmp_path / "demoapp"
    app.mkdir()
    for item in ("k8s", "charts", "secrets"):
        shutil.copytree(REPO / item, app / item)
    for example in (app / "secrets").glob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    config = yaml.safe_load((REPO / "invoke.yaml").read_text())
    for env, namespace in (namespaces or {}).items():
        config["app"]["environments"][env]["namespace"] = namespace
    if not secrets:
        del config["app"]["secrets"]
    (app / "invoke.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (app / "Dockerfile").write_text("# stands in for the Rails app's Dockerfile\nFROM scratch\n")
    shutil.copy(REPO / ".dockerignore", app / ".dockerignore")  # keeps .kit/ and secrets/ out, as in its repo
    shutil.copy(REPO / "tasks.py", app / "tasks.py")  # the demo app's own tasks.py and tasks/, as in its repo
    shutil.copytree(REPO / "tasks", app / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    return app


def example_values(env: str) -> dict[str, str]:
    from devloop.core.config import read_dotenv

    return read_dotenv(REPO / "secrets" / f"{env}.env.example").values


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_app(app_dir: Path, env: str) -> App:
    """The demo app as a task sees it, with a real invoke Context (commands really run)."""
    config = yaml.safe_load((app_dir / "invoke.yaml").read_text())["app"]
    settings = merge(merge(DEFAULTS, config), {"root": str(app_dir), "cluster": {"provider": "docker", "ip": "127.0.0.1"}})
    return App.load(Context(Config(overrides={"app": settings})), env)


def rendered_in_process(app_dir: Path, env: str) -> list[dict[str, Any]]:
    """Exactly what `inv k8s.apply --env ENV` sends (Secret values unmasked)."""
    return k8s.rendered(load_app(app_dir, env))


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_demo(docs: list[dict[str, Any]], env: str, tag: str) -> None:
    """The demo's objects, and that they refer to each other correctly."""
    namespace, host, tls_secret = ENVIRONMENTS[env]
    assert Counter(d["kind"] for d in docs) == Counter({"Service": 3, "StatefulSet": 2, "Deployment": 2, "Job": 1,
                                                        "ConfigMap": 1, "Ingress": 1, "Secret": 1})
    assert {d["metadata"]["namespace"] for d in docs} == {namespace}
    assert all(d["metadata"]["labels"][render.ENV_LABEL] == env for d in docs)
    services, statefulsets = by_kind(docs, "Service"), by_kind(docs, "StatefulSet")
    deployments, configmaps, secrets = by_kind(docs, "Deployment"), by_kind(docs, "ConfigMap"), by_kind(docs, "Secret")
    workloads = [*statefulsets.values(), *deployments.values(), *by_kind(docs, "Job").values()]

    # Every port of every Service says its protocol (server-side apply needs it) and selects a workload.
    for service in services.values():
        assert all(p.get("protocol") == "TCP" for p in service["spec"]["ports"])
        assert any(matches(service["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"]) for w in workloads)
    for workload in [*statefulsets.values(), *deployments.values()]:
        assert matches(workload["spec"]["selector"]["matchLabels"], workload["spec"]["template"]["metadata"]["labels"])

    # MySQL and Redis: StatefulSets with their own volumes behind headless Services; the app uses the stable names.
    rails_env = configmaps["demoapp-rails-env"]["data"]
    for name, port, key in [("demoapp-mysql", 3306, "MYSQL_HOST"), ("demoapp-redis", 6379, "REDIS_HOST")]:
        sts = statefulsets[name]
        headless = services[sts["spec"]["serviceName"]]
        assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["ports"][0]["port"] == port
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        assert rails_env[key] == f"{name}-0.{sts['spec']['serviceName']}"  # <pod>.<headless service>
    assert rails_env["REDIS_URL"] == "redis://demoapp-redis-0.demoapp-redis:6379/1"
    assert rails_env["APP_HOST"] == host

    # puma: 2 replicas with probes behind a NodePort Service; puma and sidekiq wait for the db-setup Job.
    puma = deployments["demoapp-puma"]
    assert puma["spec"]["replicas"] == 2
    container = puma["spec"]["template"]["spec"]["containers"][0]
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    assert services["demoapp-puma"]["spec"]["type"] == "NodePort"
    for name in ("demoapp-puma", "demoapp-sidekiq"):
        init = deployments[name]["spec"]["template"]["spec"]["initContainers"]
        assert [i["name"] for i in init] == ["wait-for-db-setup"]
    job = by_kind(docs, "Job")[f"demoapp-setup-db-{tag}"]  # one Job per image version: Jobs are immutable
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["./bin/setup-db"]

    # Our image gets the built tag everywhere; third-party images are left alone.
    images = {c["image"] for d in docs for c in render.containers(d)}
    assert images == {f"demoapp:{tag}"} | THIRD_PARTY

    # Every ConfigMap/Secret reference resolves, key by key.
    secret_keys = {name: set(s.get("stringData") or {}) | set(s.get("data") or {}) for name, s in secrets.items()}
    for doc in docs:
        for c in render.containers(doc):
            for source in c.get("envFrom") or []:
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            for var in c.get("env") or []:
                ref = var.get("valueFrom") or {}
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["key"] in secret_keys[ref["secretKeyRef"]["name"]]
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in configmaps[ref["configMapKeyRef"]["name"]]["data"]
    assert secret_keys["demoapp-secrets"] == {"SECRET_KEY_BASE", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"}

    # The Ingress: networking.k8s.io/v1, the environment's own host and TLS secret, to puma's named port.
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": tls_secret}]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == host
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_app(tmp_path_factory.mktemp("demo"))


def demo_tag(app_dir: Path) -> str:
    return core_images.build_inputs(app_dir, app_dir / "Dockerfile", {}).tag


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_demo_renders_in_each_environment(demo: Path, env: str) -> None:
    result = inv(demo, "k8s.render", "--env", env, env=CLUSTER_ENV)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    check_demo(docs, env, demo_tag(demo))
    for value in example_values(env).values():  # never printed, not even by render
        assert value not in result.stdout and value not in result.stderr


def test_environments_never_clash() -> None:
    namespaces, hosts, secrets = zip(*ENVIRONMENTS.values(), strict=True)
    assert len(set(namespaces)) == len(set(hosts)) == len(set(secrets)) == len(ENVIRONMENTS)


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_what_apply_sends_carries_the_real_secret_values(demo: Path, env: str) -> None:
    docs = rendered_in_process(demo, env)
    check_demo(docs, env, demo_tag(demo))
    secret = by_kind(docs, "Secret")["demoapp-secrets"]
    values = secret.get("stringData") or {}
    if not values:
        import base64

        values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    assert values == example_values(env)


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_demo_lints_clean(demo: Path, env: str) -> None:
    result = inv(demo, "k8s.lint", "--env", env, "--no-live", env=CLUSTER_ENV)
    assert result.returncode == 0, result.stderr
    assert "no errors" in result.stderr and "0 warning(s)" in result.stderr


def test_the_committed_examples_hold_dummy_values_only() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "secrets/dev.env"], cwd=REPO).returncode == 0
    assert ignored, "secrets/<env>.env must be git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", "secrets/dev.env.example"], cwd=REPO).returncode == 1
    for env in ENVIRONMENTS:
        values = example_values(env)
        assert set(values) == {"SECRET_KEY_BASE", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"}
        assert all(v.startswith("dummy-") for v in values.values())


# -- the real cluster: server-side dry run, each environment in a namespace of its own ----------------------


def server_dry_run(docs: list[dict[str, Any]], namespace: str) -> subprocess.CompletedProcess[str]:
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
    return subprocess.run(["kubectl", "apply", "--dry-run=server", "--namespace", namespace, "-f", "-"],
                          input=render.dump(docs), capture_output=True, text=True, timeout=120)


@pytest.mark.integration
@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_demo_passes_a_server_side_dry_run(demo: Path, env: str, cluster: str) -> None:
    namespace = f"kit-demo-{env}"
    app = load_app(demo, env)
    host, secret = tls.env_host_and_secret(app)
    tls.ensure_certificate(app, host, secret)  # the real openssl, through the funnel
    docs = k8s.rendered(app)
    if not any(d["kind"] == "Secret" and d["metadata"]["name"] == secret for d in docs):
        docs += tls.tls_documents(app)
    assert [d["type"] for d in docs if d["metadata"]["name"] == secret] == ["kubernetes.io/tls"]
    subprocess.run(["kubectl", "create", "namespace", namespace], capture_output=True, text=True)
    try:
        result = server_dry_run(docs, namespace)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) == len(docs) and all("(server dry run)" in line for line in lines), result.stdout
        for value in example_values(env).values():
            assert value not in result.stdout and value not in result.stderr
    finally:
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
                       capture_output=True)
