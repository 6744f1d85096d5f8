"""`inv up` / `inv k8s.apply` converging examples/hello on the real cluster: a removed manifest pruned, the Recreate
switch over a server-defaulted RollingUpdate, a fixed-name Job rerun on a new image, per-version Jobs cleaned
(keep N), and real refusals by the API server explained one line per object."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import inv, make_app
from kube_objects import job_manifest
from watch_helpers import cluster_env, namespace

MIGRATE = job_manifest("hello-migrate", "migrate", "cat /app/www/version.txt")
SETUP = MIGRATE.replace("hello-migrate", "hello-setup-${IMAGE_TAG}").replace("name: migrate", "name: setup")


@pytest.fixture
def hello(tmp_path: Path, cluster: str, base_image: str) -> Iterator[tuple[Path, dict[str, str], str]]:
    app = make_app(tmp_path)
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["workloads"] = []  # wait for every rendered Deployment and Job
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))
    with namespace("kit-converge") as ns:
        yield app, cluster_env(base_image, ns), ns


def kubectl(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--namespace", ns, *args], capture_output=True, text=True)


def new_version(app: Path) -> None:
    (app / "app" / "www" / "version.txt").write_text(f"{uuid.uuid4()}\n")  # a tag no earlier run has built


def up(app: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = inv(app, "up", *args, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def built_tag(result: subprocess.CompletedProcess[str]) -> str:
    return next(line.split("hello:")[1].split()[0] for line in result.stderr.splitlines() if "$ docker build --tag hello:" in line)


def short_lines(text: str) -> bool:
    """No struct dumps: every line the user sees stays readable (the echoed kubectl listing is the longest)."""
    return all(len(line) < 500 for line in text.splitlines())


@pytest.mark.integration
def test_a_removed_manifest_is_pruned_and_recreate_over_a_server_default_is_applied(hello) -> None:  # type: ignore[no-untyped-def]
    app, env, ns = hello
    new_version(app)
    up(app, env)
    assert kubectl(ns, "get", "deployment", "hello-worker", "-o", "name").returncode == 0
    (app / "k8s" / "worker-deploy.yaml").unlink()
    web = app / "k8s" / "web-deploy.yaml"  # applied without a strategy: the server defaulted RollingUpdate
    web.write_text(web.read_text().replace("spec:\n  replicas:", "spec:\n  strategy: {type: Recreate}\n  replicas:", 1))

    second = up(app, env)
    assert "pruned deployment/hello-worker: no longer in k8s/" in second.stderr
    assert "lint: deployment/hello-web: the API server accepts the change (server-side dry run)" in second.stderr
    gone = kubectl(ns, "get", "deployment", "hello-worker", "-o", "name")
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    strategy = json.loads(kubectl(ns, "get", "deployment", "hello-web", "-o", "json").stdout)["spec"]["strategy"]
    assert strategy == {"type": "Recreate"}

    service = app / "k8s" / "service.yaml"  # a field the server never lets change: refused, in one line
    current = kubectl(ns, "get", "service", "hello-web", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    other = "10.0.0.250" if current != "10.0.0.250" else "10.0.0.251"
    service.write_text(service.read_text().replace("  type: NodePort\n", f"  type: NodePort\n  clusterIP: {other}\n"))
    refused = inv(app, "k8s.apply", env=env)
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "error: the API server refused 1 change(s) (the other objects were applied):\n  service/hello-web " \
           "(k8s/service.yaml): spec.clusterIPs[0] is immutable — drop spec.clusterIP from the manifest" in refused.stderr
    assert "Error from server" not in refused.stderr and short_lines(refused.stderr)

    service.write_text(service.read_text().replace(f"  clusterIP: {other}\n", ""))  # a misspelt field: kubectl refuses
    web.write_text(web.read_text().replace("  replicas:", "  replicaz:", 1))
    linted = inv(app, "k8s.lint", env=env)
    assert linted.returncode == 1, linted.stderr[-3000:]
    assert "web-deploy.yaml Deployment/hello-web: error: spec.replicaz is not a field there" in linted.stderr
    misspelt = inv(app, "k8s.apply", env=env)
    assert misspelt.returncode == 1, misspelt.stderr[-3000:]
    assert "error: kubectl's schema check refused 1 change(s) (kubectl stops at the first object its schema check " \
           "refuses: those before it were applied, those after it were not):\n  deployment/hello-web " \
           "(k8s/web-deploy.yaml): spec.replicaz is not a field there" in misspelt.stderr
    web.write_text(web.read_text().replace("  replicaz:", "  replicas:", 1))
    accepted = inv(app, "k8s.lint", env=env)
    assert accepted.returncode == 0 and "lint: the API server accepts the 4 object(s) sent (server-side dry run)" in \
        accepted.stderr, accepted.stderr[-3000:]


@pytest.mark.integration
def test_jobs_rerun_on_a_new_image_earlier_versions_are_cleaned_and_a_refused_rerun_is_explained(hello) -> None:  # type: ignore[no-untyped-def]
    app, env, ns = hello
    env = dict(env, INVOKE_APP_JOB_KEEP="1")
    (app / "k8s" / "migrate-job.yaml").write_text(MIGRATE)
    (app / "k8s" / "setup-job.yaml").write_text(SETUP)
    tags = []
    for _ in range(3):
        new_version(app)
        result = up(app, env)
        tags.append(built_tag(result))
        migrate = json.loads(kubectl(ns, "get", "job", "hello-migrate", "-o", "json").stdout)
        assert migrate["spec"]["template"]["spec"]["containers"][0]["image"] == f"hello:{tags[-1]}"
        assert migrate["status"].get("succeeded") == 1  # the wait covered the new run
        log = kubectl(ns, "logs", "job/hello-migrate").stdout.strip()
        assert log == (app / "app" / "www" / "version.txt").read_text().strip()
    assert "rerun job/hello-migrate: its pod template changed" in result.stderr
    assert f"pruned job/hello-setup-{tags[0]}: an earlier Job, finished (the newest 1 are kept: app.job_keep)" \
        in result.stderr
    names = kubectl(ns, "get", "jobs", "-o", "name").stdout.split()
    assert sorted(names) == sorted(["job.batch/hello-migrate", f"job.batch/hello-setup-{tags[1]}",
                                    f"job.batch/hello-setup-{tags[2]}"])

    new_version(app)
    refused = inv(app, "up", env=dict(env, INVOKE_APP_RERUN_JOBS="false"))
    assert refused.returncode == 1
    assert "migrate-job.yaml Job/hello-migrate: error: spec.template is immutable\n" \
           "    fix: a Job cannot change once created" in refused.stderr
    assert "PodTemplateSpec" not in refused.stderr and short_lines(refused.stderr)
    assert f"hello:{tags[2]}" in kubectl(ns, "get", "job", "hello-migrate", "-o", "jsonpath={..image}").stdout
