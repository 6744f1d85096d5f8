"""Converging through `inv k8s.apply` and `inv up` against a strict mock context: the exact commands for prune,
Job reruns and the server-side dry run, and the API server's refusals in one line each."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from invoke import Exit
from kube_objects import job_manifest
from strict import StrictContext, fail, ok, rx
from test_converge import PATCH_JOB, PATCH_SERVICE
from test_tasks_up import hello_config, ready_listing

from devloop import docker_api, k8s, shell, workflow
from devloop.core import converge
from devloop.core.errors import KitError
from devloop.kit import App

CONTEXT = "kubectl config current-context"
LIST = f"kubectl --context k8s-local get {converge.listing_kinds()} -l devloop/app=hello,devloop/env=dev -o json"
APPLY = "kubectl --context k8s-local apply -f .kit/rendered-dev.yaml"
DRY_RUN = "kubectl --context k8s-local apply --dry-run=server -f .kit/dry-run-dev.yaml"
RERUN = "kubectl --context k8s-local delete job hello-migrate --cascade=foreground --wait=true --timeout=120s --ignore-not-found"
PRUNE = "kubectl --context k8s-local delete deployment/hello-old --ignore-not-found --wait=false"
LABELS = {"devloop/app": "hello", "devloop/env": "dev"}
JOB = job_manifest("hello-migrate", "migrate", "echo migrated")


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = make_app(tmp_path)
    monkeypatch.chdir(target)
    monkeypatch.setattr(docker_api, "daemon_url", lambda env: None)  # the mock context scripts `docker image inspect`
    monkeypatch.setattr(shell, "spawn", lambda *a, **kw: None)  # no kubectl --watch children
    return target


def config(app_dir: Path, **overrides: Any) -> dict[str, Any]:
    return hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"}, **overrides)


def listed(*items: dict[str, Any]) -> Any:
    return ok(json.dumps({"items": list(items)}))


def stale_deployment() -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "hello-old", "labels": LABELS}}


def live_job(image: str = "hello:old") -> dict[str, Any]:
    applied = {"kind": "Job", "spec": {"template": {"spec": {"containers": [{"name": "migrate", "image": image}]}}}}
    return {"kind": "Job", "metadata": {"name": "hello-migrate", "labels": LABELS,
                                        "annotations": {converge.LAST_APPLIED: json.dumps(applied)}},
            "spec": applied["spec"], "status": {"succeeded": 1}}


def context(app_dir: Path, results: dict[Any, Any], dry: bool = False, **overrides: Any) -> StrictContext:
    return StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"), **results},
                         app=config(app_dir, **overrides), dry=dry)


def kubectl_commands(c: StrictContext) -> list[str]:
    return [cmd for cmd in c.commands if cmd.startswith("kubectl --context")]


def test_apply_reruns_the_changed_job_applies_then_prunes_what_was_dropped(app_dir: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "k8s" / "migrate-job.yaml").write_text(JOB)
    c = context(app_dir, {LIST: listed(live_job(), stale_deployment()), RERUN: ok(), APPLY: ok(), PRUNE: ok()})
    k8s.apply(c)
    assert kubectl_commands(c) == [LIST, RERUN, APPLY, PRUNE]
    err = capsys.readouterr().err
    assert "rerun job/hello-migrate: its pod template changed; deleting it with its pods, the apply creates it again" in err
    assert "pruned deployment/hello-old: no longer in k8s/" in err


def test_no_prune_keeps_what_was_dropped_and_needs_no_read(app_dir: Path) -> None:
    c = context(app_dir, {APPLY: ok()})
    k8s.apply(c, no_prune=True)
    assert kubectl_commands(c) == [APPLY]


def test_volumes_lists_claims_too(app_dir: Path) -> None:
    claims = LIST.replace("networkpolicies,", "networkpolicies,persistentvolumeclaims,")
    claim = {"kind": "PersistentVolumeClaim", "metadata": {"name": "hello-data", "labels": LABELS}}
    prune = "kubectl --context k8s-local delete persistentvolumeclaim/hello-data --ignore-not-found --wait=false"
    c = context(app_dir, {claims: listed(claim), APPLY: ok(), prune: ok()})
    k8s.apply(c, volumes=True)
    assert kubectl_commands(c) == [claims, APPLY, prune]


def test_dry_apply_reads_but_deletes_nothing(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = context(app_dir, {LIST: listed(stale_deployment())}, dry=True)
    k8s.apply(c)
    assert kubectl_commands(c) == [LIST]
    err = capsys.readouterr().err
    assert f"$ {PRUNE}    # --dry: not run" in err and "would prune (--dry) deployment/hello-old: no longer in k8s/" in err


def recreate(app_dir: Path) -> None:
    deploy = app_dir / "k8s" / "web-deploy.yaml"
    deploy.write_text(deploy.read_text().replace("spec:\n  replicas:", "spec:\n  strategy: {type: Recreate}\n  replicas:", 1))


def test_a_live_guess_the_server_accepts_does_not_block_the_apply(app_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    recreate(app_dir)
    web = {"kind": "Deployment", "metadata": {"name": "hello-web", "labels": LABELS},
           "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}}
    c = context(app_dir, {LIST: listed(web), DRY_RUN: ok("deployment.apps/hello-web configured (server dry run)\n"),
                          APPLY: ok()})
    k8s.apply(c)
    assert kubectl_commands(c) == [LIST, DRY_RUN, APPLY]
    assert "lint: deployment/hello-web: the API server accepts the change (server-side dry run), so this is no error" \
        in capsys.readouterr().err


def test_a_refused_rerun_is_confirmed_by_the_server_and_explained_in_two_lines(app_dir: Path) -> None:
    (app_dir / "k8s" / "migrate-job.yaml").write_text(JOB)
    refused = fail(1, stderr=PATCH_JOB.replace('"mig"', '"hello-migrate"'))
    c = context(app_dir, {LIST: listed(live_job()), DRY_RUN: refused}, rerun_jobs=False)
    with pytest.raises(Exit) as raised:
        k8s.apply(c)
    assert kubectl_commands(c) == [LIST, DRY_RUN]  # nothing applied
    message = str(raised.value.message)
    assert "migrate-job.yaml Job/hello-migrate: error: spec.template is immutable\n    fix: a Job cannot change" in message
    assert "PodTemplateSpec" not in message and len(message) < 1000


def test_a_refusal_of_the_apply_itself_is_one_line_per_object(app_dir: Path) -> None:
    c = context(app_dir, {LIST: listed(), APPLY: fail(1, stderr=PATCH_SERVICE.replace('"web"', '"hello-web"'))})
    with pytest.raises(Exit) as raised:
        k8s.apply(c)
    assert str(raised.value.message).splitlines() == [
        "error: the API server refused 1 change(s) (the other objects were applied):",
        "  service/hello-web (k8s/service.yaml): spec.clusterIPs[0] is immutable — drop spec.clusterIP from the manifest "
        "(the server picks one), or delete the Service (`inv k8s.kubectl -- delete service hello-web`) to give it the new one",
        "  fix: fix them and run again (`inv k8s.lint` asks the server without applying)"]


def test_a_misspelt_field_kubectl_refuses_names_the_object_its_file_and_kubectl(app_dir: Path) -> None:
    worker = app_dir / "k8s" / "worker-deploy.yaml"
    worker.write_text(worker.read_text().replace("  replicas: 1", "  replicaz: 1"))
    schema = ('error: error validating ".kit/rendered-dev.yaml": error validating data: ValidationError(Deployment.spec): '
              'unknown field "replicaz" in io.k8s.api.apps.v1.DeploymentSpec; if you choose to ignore these errors, '
              "turn validation off with --validate=false\n")
    c = context(app_dir, {LIST: listed(), APPLY: fail(1, stderr=schema)})
    with pytest.raises(Exit) as raised:
        k8s.apply(c)
    assert str(raised.value.message).splitlines()[:2] == [
        "error: kubectl's schema check refused 1 change(s) (kubectl stops at the first object its schema check refuses: "
        "those before it were applied, those after it were not):",
        "  deployment/hello-worker (k8s/worker-deploy.yaml): spec.replicaz is not a field there — check its name and "
        "indentation (`kubectl explain deployment.spec`)"]


def test_lint_asks_the_server_about_every_object_and_says_it_accepts_them(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = context(app_dir, {LIST: listed(), DRY_RUN: ok()})
    k8s.lint_(c)
    assert kubectl_commands(c) == [LIST, DRY_RUN]
    assert "lint: the API server accepts the 5 object(s) sent (server-side dry run)" in capsys.readouterr().err


def test_lint_reports_what_kubectl_or_the_server_would_refuse_as_an_error(app_dir: Path) -> None:
    worker = app_dir / "k8s" / "worker-deploy.yaml"
    worker.write_text(worker.read_text().replace("  replicas: 1", "  replicaz: 1"))
    schema = ('error: error validating ".kit/dry-run-dev.yaml": error validating data: ValidationError(Deployment.spec): '
              'unknown field "replicaz" in io.k8s.api.apps.v1.DeploymentSpec; if you choose to ignore\n')
    c = context(app_dir, {LIST: listed(), DRY_RUN: fail(1, stderr=schema)})
    with pytest.raises(Exit) as raised:
        k8s.lint_(c)
    message = str(raised.value.message)
    assert message.startswith("error: lint found 1 problem(s) in the manifests:")
    assert "worker-deploy.yaml Deployment/hello-worker: error: spec.replicaz is not a field there" in message


def test_lint_into_a_namespace_not_made_yet_says_the_server_could_not_check(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = LIST.replace("--context k8s-local", "--context k8s-local --namespace hello-qa")
    dry = DRY_RUN.replace("--context k8s-local", "--context k8s-local --namespace hello-qa")
    missing = fail(1, stderr='Error from server (NotFound): namespaces "hello-qa" not found\n')
    c = context(app_dir, {listing: listed(), dry: missing}, namespace="hello-qa")
    k8s.lint_(c)
    err = capsys.readouterr().err
    assert "lint: namespace hello-qa does not exist yet (the apply makes it): the server could not check the objects" in err
    assert "no errors" in err


def test_lint_counts_a_placeholder_left_as_it_is_and_guesses_the_one_meant(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_map = app_dir / "k8s" / "configmap.yaml"
    config_map.write_text(config_map.read_text().replace("${INGRESS_HOST}", "${INGRESS_HOTS}"))
    k8s.lint_(context(app_dir, {}), live=False)
    err = capsys.readouterr().err
    assert "${INGRESS_HOTS} is not declared in app.vars; left as it is (did you mean ${INGRESS_HOST}?)" in err
    assert "lint: 5 object(s) checked, 1 warning(s), no errors" in err


def test_lint_without_the_cluster_asks_nothing(app_dir: Path) -> None:
    c = context(app_dir, {LIST: fail(1, stderr="error: You must be logged in to the server (Unauthorized)\n")})
    k8s.lint_(c)
    assert kubectl_commands(c) == [LIST]


@pytest.mark.parametrize("copy_here", [False, True])
def test_the_tls_secret_is_kept_only_while_this_checkout_has_no_copy_of_it(app_dir: Path, copy_here: bool) -> None:
    app = App.load(context(app_dir, {}))
    if copy_here:  # the files tls.cert keeps; tls_documents then decides (a certificate for another host is left out)
        files = k8s.tls.files_for(app, "hello-tls")
        files.info.parent.mkdir(parents=True)
        for path in (files.key, files.cert, files.info):
            path.write_text("x")
    assert k8s.policy(app).tls_secret == ("" if copy_here else "hello-tls")


def test_an_apply_into_a_namespace_being_deleted_is_one_line(app_dir: Path) -> None:
    ending = "".join(f'Error from server (Forbidden): error when creating ".kit/rendered-dev.yaml": {kind} "{name}" is '
                     "forbidden: unable to create new content in namespace hello-qa because it is being terminated\n"
                     for kind, name in (("configmaps", "hello-config"), ("deployments.apps", "hello-web")))
    apply = APPLY.replace("--context k8s-local", "--context k8s-local --namespace hello-qa")
    listing = LIST.replace("--context k8s-local", "--context k8s-local --namespace hello-qa")
    c = context(app_dir, {listing: listed(), apply: fail(1, stderr=ending)}, namespace="hello-qa")
    with pytest.raises(Exit) as raised:
        k8s.apply(c)
    assert str(raised.value.message).splitlines() == [
        "error: namespace hello-qa is being deleted: nothing can be created in it until it is gone",
        "  fix: wait until `inv k8s.kubectl -- get namespace hello-qa` finds none, then run again"]


def test_an_apply_that_cannot_reach_the_cluster_says_so_and_not_that_the_server_refused(app_dir: Path) -> None:
    from test_kube import OPENAPI

    c = context(app_dir, {LIST: fail(1, stderr=OPENAPI), APPLY: fail(1, stderr=OPENAPI)})
    with pytest.raises(Exit) as raised:
        k8s.apply(c)
    assert str(raised.value.message).splitlines() == [
        "error: cannot apply: the cluster of context k8s-local (https://127.0.0.1:1) does not answer "
        "(dial tcp 127.0.0.1:1: connect: connection refused)",
        "  fix: check the cluster is up: inv doctor (the rendered file is kept; run again once it answers)"]
    assert raised.value.code == 1


def test_down_against_a_cluster_that_does_not_answer_is_one_error_with_a_fix(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_kube import REFUSED

    delete = rx(r"^kubectl --context k8s-local delete ingresses,services,.* -l devloop/app=hello,devloop/env=dev ")
    c = context(app_dir, {delete: fail(1, stderr=REFUSED)})
    with pytest.raises(Exit) as raised:
        workflow.down(c)
    assert str(raised.value.message).splitlines() == [
        "error: cannot delete: the cluster of context k8s-local (https://127.0.0.1:6443) does not answer "
        "(dial tcp 127.0.0.1:6443: connect: connection refused)",
        "  fix: check the cluster is up: inv doctor (run again once it answers)"]
    assert "memcache" not in capsys.readouterr().err  # kubectl's retries are not repeated to the user


def test_up_converges_the_same_way(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = context(app_dir, {LIST: listed(stale_deployment()), APPLY: ok(), PRUNE: ok(),
                          rx(r"^kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods "):
                              ok(ready_listing())})
    workflow.up(c)
    commands = kubectl_commands(c)
    assert commands[:3] == [LIST, APPLY, PRUNE]
    assert "pruned deployment/hello-old: no longer in k8s/" in capsys.readouterr().err


def test_an_apply_does_not_look_the_namespace_up_first(app_dir: Path) -> None:
    apply = "kubectl --context k8s-local --namespace hello-qa apply -f .kit/rendered-dev.yaml"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       apply: [ok(), fail(1, stderr="error: the server was unable to return a response"), ok()]},
                      app=config(app_dir, namespace="hello-qa"), repeat=False)
    app = App.load(c)
    documents = k8s.rendered(app, {})
    k8s.apply_documents(app, documents)
    with pytest.raises(KitError):
        k8s.apply_documents(app, documents)  # any other failure: no namespace is made
    k8s.apply_documents(app, documents)
    assert kubectl_commands(c) == [apply, apply, apply]


def test_an_apply_into_a_missing_namespace_makes_it_and_applies_again(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get_ns = "kubectl --context k8s-local get namespace hello-qa -o name"
    create = "kubectl --context k8s-local create namespace hello-qa"
    apply = "kubectl --context k8s-local --namespace hello-qa apply -f .kit/rendered-dev.yaml"
    gone = 'Error from server (NotFound): error when creating ".kit/rendered-dev.yaml": namespaces "hello-qa" not found'
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       get_ns: [fail(1), fail(1)], create: [ok(), ok()],
                       apply: [fail(1, stderr=gone, stdout="clusterrole.rbac.authorization.k8s.io/reader created\n"),
                               ok("deployment.apps/hello-web created\n"), ok(), fail(1, stderr=gone), ok()]},
                      app=config(app_dir, namespace="hello-qa"), repeat=False)
    app = App.load(c)
    documents = k8s.rendered(app, {})
    k8s.apply_documents(app, documents)  # a new environment: its namespace does not exist yet
    k8s.apply_documents(app, documents)  # a watch session's next cycle
    k8s.apply_documents(app, documents)  # someone deleted the namespace meanwhile
    assert kubectl_commands(c) == [apply, get_ns, create, apply, apply, apply, get_ns, create, apply]
    captured = capsys.readouterr()
    out = captured.out
    assert captured.err.count("namespace hello-qa does not exist: making it, then applying again") == 2
    assert "clusterrole.rbac.authorization.k8s.io/reader created" in out  # the first attempt's output is kept
    assert "deployment.apps/hello-web created" in out


def test_a_dry_apply_shows_the_namespace_it_would_make(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get_ns = "kubectl --context k8s-local get namespace hello-qa -o name"
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       get_ns: fail(1)}, app=config(app_dir, namespace="hello-qa"), dry=True, repeat=False)
    app = App.load(c)
    k8s.apply_documents(app, k8s.rendered(app, {}))
    err = capsys.readouterr().err
    assert "$ kubectl --context k8s-local create namespace hello-qa    # --dry: not run" in err
    assert "$ kubectl --context k8s-local --namespace hello-qa apply -f .kit/rendered-dev.yaml    # --dry: not run" in err


def converge_once(app: App) -> None:
    """One watch cycle's converge: plan from the live objects, apply, prune."""
    documents = k8s.rendered(app, {})
    plan, _ = k8s.check(app, documents)
    k8s.apply_converged(app, documents, plan)


def test_a_session_reads_for_prune_again_only_when_the_set_of_objects_changed(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       LIST: [listed(stale_deployment()), listed(), listed()], PRUNE: ok(), APPLY: [ok()] * 4},
                      app=config(app_dir), repeat=False)
    app = App.load(c)
    converge_once(app)  # reads, prunes hello-old
    converge_once(app)  # the same objects: nothing can be left to prune
    assert kubectl_commands(c) == [LIST, APPLY, PRUNE, APPLY]
    assert re.search(r"^converge: the same \d+ object\(s\) as this session.s last apply: nothing to prune$",
                     capsys.readouterr().err, re.M)
    (app_dir / "k8s" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello-extra\n")
    converge_once(app)  # another set: read again
    (app_dir / "k8s" / "extra.yaml").unlink()
    converge_once(app)  # the set the last read was not of: read again (and prune hello-extra, were it listed)
    assert kubectl_commands(c)[4:] == [LIST, APPLY, LIST, APPLY]


def test_after_a_failed_apply_the_next_cycle_reads_again(app_dir: Path) -> None:
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       LIST: [listed()] * 2, APPLY: [ok(), fail(1, stderr="error: something broke"), ok()]},
                      app=config(app_dir), repeat=False)
    app = App.load(c)
    converge_once(app)
    with pytest.raises(KitError):
        converge_once(app)  # the same set, so no read; the apply fails: what it left is unknown
    converge_once(app)
    assert kubectl_commands(c) == [LIST, APPLY, APPLY, LIST, APPLY]


def test_a_job_always_reads_the_live_objects(app_dir: Path) -> None:
    (app_dir / "k8s" / "migrate-job.yaml").write_text(JOB)
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       LIST: [listed(), listed(live_job())], RERUN: ok(), APPLY: [ok()] * 2},
                      app=config(app_dir), repeat=False)
    app = App.load(c)
    converge_once(app)
    converge_once(app)  # its template may have changed: whether it reruns is read from the live Job
    assert kubectl_commands(c) == [LIST, APPLY, LIST, RERUN, APPLY]


def test_a_dry_converge_is_not_taken_for_a_done_one(app_dir: Path) -> None:
    c = StrictContext({CONTEXT: ok("k8s-local\n"), rx(r"^docker image inspect "): ok("sha256:1\n"),
                       LIST: [listed(stale_deployment())] * 2}, app=config(app_dir), dry=True, repeat=False)
    app = App.load(c)
    converge_once(app)
    converge_once(app)  # hello-old was not pruned: the next one reads (and would prune it) again
    assert kubectl_commands(c) == [LIST, LIST]
