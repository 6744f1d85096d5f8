"""The pure converge plan: what `up` prunes, which Jobs it reruns or cleans up, and the API server's refusals in
one line each (no cluster, no commands)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devloop.core import converge, lint
from devloop.core.converge import Action, Policy

OURS = {"devloop/app": "shop", "devloop/env": "dev"}
POLICY = Policy("shop", "dev", "k8s/", namespace="shop-dev")


def obj(kind: str, name: str, labels: dict[str, str] | None = OURS, **meta: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "shop-dev", "labels": dict(labels or {}), **meta}}


def job(name: str, created: str, done: str | None = "Complete", image: str = "shop:1", **meta: Any) -> dict[str, Any]:
    found = obj("Job", name, creationTimestamp=created, **meta)
    found["spec"] = {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
    found["status"] = {"conditions": [{"type": done, "status": "True"}]} if done else {"active": 1}
    return found


def rendered(*docs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "status"} for d in docs]


def test_an_object_the_manifests_dropped_is_pruned_with_the_reason() -> None:
    live = [obj("Deployment", "shop-api"), obj("Deployment", "shop-worker"), obj("ConfigMap", "shop-env")]
    plan = converge.plan(rendered(obj("Deployment", "shop-api"), obj("ConfigMap", "shop-env")), live, POLICY)
    assert plan.prune == [Action("Deployment", "shop-worker", "no longer in k8s/")]
    assert plan.prune[0].ref == "deployment/shop-worker"


def test_a_rendered_object_without_a_namespace_is_the_live_one_in_the_namespace() -> None:
    doc = {"kind": "Service", "metadata": {"name": "shop-api"}}
    assert converge.plan([doc], [obj("Service", "shop-api")], POLICY).prune == []


@pytest.mark.parametrize("live", [
    obj("Pod", "shop-api-7d9-x", ownerReferences=[{"kind": "ReplicaSet", "name": "shop-api-7d9"}]),  # a controller's
    obj("Deployment", "other-app", labels={"devloop/app": "other", "devloop/env": "dev"}),  # another app's
    obj("Deployment", "shop-api-staging", labels={"devloop/app": "shop", "devloop/env": "staging"}),  # another env's
    obj("Deployment", "hand-made", labels={}),  # not applied by the kit
    obj("Deployment", "going", deletionTimestamp="2024-01-01T00:00:00Z"),  # already being deleted
    obj("PersistentVolumeClaim", "shop-data"),  # data: only with --volumes
    obj("Namespace", "shop-dev"),  # the environment's own namespace
    obj("Namespace", "default"),
])
def test_what_prune_never_touches(live: dict[str, Any]) -> None:
    assert converge.plan([], [live], POLICY).prune == []


def test_the_environments_tls_secret_is_never_pruned_but_another_tls_secret_is() -> None:
    policy = Policy("shop", "dev", "k8s/", namespace="shop-dev", tls_secret="shop-tls")
    made_by_tls_cert = dict(obj("Secret", "shop-tls"), type="kubernetes.io/tls")
    other = dict(obj("Secret", "old-tls"), type="kubernetes.io/tls")
    same_name_not_tls = obj("Secret", "shop-tls")
    assert converge.plan([], [made_by_tls_cert], policy).prune == []  # this checkout has no .kit/tls copy of it
    assert [a.name for a in converge.plan([], [other, same_name_not_tls], policy).prune] == ["old-tls", "shop-tls"]


def test_claims_and_cluster_scoped_objects_are_pruned_when_asked() -> None:
    live = [obj("PersistentVolumeClaim", "shop-data"), {"kind": "ClusterRole", "metadata": {"name": "shop-r", "labels": OURS}}]
    plan = converge.plan([], live, Policy("shop", "dev", volumes=True))
    assert [a.ref for a in plan.prune] == ["persistentvolumeclaim/shop-data", "clusterrole/shop-r"]
    assert "persistentvolumeclaims" in converge.listing_kinds(volumes=True)
    assert "persistentvolumeclaims" not in converge.listing_kinds() and "clusterroles" in converge.listing_kinds()


def test_no_prune_keeps_everything_but_still_reruns_changed_jobs() -> None:
    live = [obj("Deployment", "shop-worker"), job("shop-migrate", "2024-01-01T00:00:00Z", image="shop:1")]
    docs = rendered(job("shop-migrate", "", image="shop:2"))
    plan = converge.plan(docs, live, Policy("shop", "dev", prune=False))
    assert plan.prune == [] and [a.ref for a in plan.rerun] == ["job/shop-migrate"]


def test_earlier_finished_jobs_keep_the_newest_few() -> None:
    live = [job(f"shop-setup-{n}", f"2024-01-0{n}T00:00:00Z", "Complete" if n != 2 else "Failed") for n in range(1, 6)]
    live.append(job("shop-setup-6", "2024-01-06T00:00:00Z"))  # the current version
    plan = converge.plan(rendered(job("shop-setup-6", "")), live, Policy("shop", "dev", job_keep=2))
    assert [a.name for a in plan.prune] == ["shop-setup-1", "shop-setup-2", "shop-setup-3"]
    assert plan.prune[0].reason == "an earlier Job, finished (the newest 2 are kept: app.job_keep)"
    none_kept = converge.plan(rendered(job("shop-setup-6", "")), live, Policy("shop", "dev", job_keep=0))
    assert len(none_kept.prune) == 5


def test_an_earlier_job_still_running_is_pruned_as_dropped() -> None:
    live = [job("shop-setup-1", "2024-01-01T00:00:00Z", done=None)]
    assert converge.plan([], live, POLICY).prune == [Action("Job", "shop-setup-1", "no longer in k8s/")]


def last_applied(doc: dict[str, Any]) -> dict[str, str]:
    return {converge.LAST_APPLIED: json.dumps(doc)}


def test_a_job_changed_since_the_last_apply_is_rerun_or_refused() -> None:
    before = rendered(job("shop-migrate", "", image="shop:1"))[0]
    live = [job("shop-migrate", "2024-01-01T00:00:00Z", image="shop:1", annotations=last_applied(before))]
    same = converge.plan([before], live, POLICY)
    assert same.rerun == [] and same.refused == [] and same.prune == []
    after = rendered(job("shop-migrate", "", image="shop:2"))
    assert converge.plan(after, live, POLICY).rerun == [Action("Job", "shop-migrate", "its pod template changed")]
    refused = converge.plan(after, live, Policy("shop", "dev", rerun_jobs=False))
    assert refused.rerun == [] and [a.ref for a in refused.refused] == ["job/shop-migrate"]


def test_a_job_template_is_compared_with_what_was_applied_not_with_server_defaults() -> None:
    doc = rendered(job("shop-migrate", ""))[0]
    live = job("shop-migrate", "2024-01-01T00:00:00Z", annotations=last_applied(doc))
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["template"]["metadata"] = {"labels": {"job-name": "shop-migrate", "controller-uid": "u"}}
    assert not converge.template_changed(doc, live)
    changed = json.loads(json.dumps(doc))
    changed["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    assert converge.template_changed(changed, live)
    bare = job("shop-migrate", "2024-01-01T00:00:00Z", image="shop:1")  # applied by hand: images and commands
    assert not converge.template_changed(doc, bare)
    assert converge.template_changed(rendered(job("shop-migrate", "", image="shop:2"))[0], bare)


def test_lint_sees_the_live_objects_except_the_jobs_about_to_be_rerun() -> None:
    live = [obj("Deployment", "shop-api"), obj("Job", "shop-migrate"), obj("Service", "shop-api")]
    assert sorted(converge.live_map(live, "shop-dev", {"job/shop-migrate"})) == ["Deployment/shop-dev/shop-api"]


# -- the API server's refusals --------------------------------------------------------------------------

STRUCT = "core.PodTemplateSpec{ObjectMeta:v1.ObjectMeta{Name:\"\", " + "Labels:map[string]string{\"job-name\":\"mig\"}, " * 60 + \
         "Spec:core.PodSpec{Containers:[]core.Container{core.Container{Name:\"c\", Command:[]string{\"sh\", \"-c\", \"a: b\"}}}}}"
PATCH_JOB = ('Error from server (Invalid): error when applying patch:\n{"metadata":{"annotations":{}}}\nto:\n'
             'Resource: "batch/v1, Resource=jobs", GroupVersionKind: "batch/v1, Kind=Job"\nName: "mig", Namespace: "ns"\n'
             f'for: ".kit/rendered-dev.yaml": error when patching ".kit/rendered-dev.yaml": Job.batch "mig" is invalid: '
             f"spec.template: Invalid value: {STRUCT}: field is immutable")
PATCH_SERVICE = ('Error from server (Invalid): error when applying patch:\n{}\nto:\nResource: "/v1, Resource=services"\n'
                 'for: "f.yaml": error when patching "f.yaml": Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
                 '[]string{"10.0.0.201"}: may not change once set')


def test_a_multi_kb_struct_dump_becomes_one_line_naming_object_field_and_fix() -> None:
    assert len(PATCH_JOB) > 3000
    [refused] = converge.rejections(PATCH_JOB)
    line = str(refused)
    assert line.startswith("job/mig: spec.template is immutable — a Job cannot change once created")
    assert "delete job mig" in line and "${IMAGE_TAG}" in line and "\n" not in line and len(line) < 300


def test_each_block_of_kubectls_output_is_one_refusal() -> None:
    text = "Warning: resource x is deprecated\n" + PATCH_JOB + PATCH_SERVICE  # kubectl glues blocks without a newline
    assert [(r.ref, r.field) for r in converge.rejections(text)] == [("job/mig", "spec.template"),
                                                                     ("service/web", "spec.clusterIPs[0]")]
    assert "drop spec.clusterIP from the manifest" in converge.rejections(PATCH_SERVICE)[0].fix


@pytest.mark.parametrize(("output", "expected"), [
    ('The Deployment "web" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy '
     "`type` is 'Recreate'",
     "deployment/web: spec.strategy.rollingUpdate is forbidden: may not be specified when strategy `type` is 'Recreate' "
     "— add `rollingUpdate: null` under spec.strategy"),
    ('The Deployment "web" is invalid: [spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string'
     '{"app":"x"}}: field is immutable, spec.replicas: Invalid value: -1: must be greater than or equal to 0]',
     "deployment/web: spec.selector is immutable — keep the old selector, or delete the deployment "
     "(`inv k8s.kubectl -- delete deployment web`) and apply again\n"
     "deployment/web: spec.replicas is invalid: -1 (must be greater than or equal to 0) — fix spec.replicas in the manifest"),
    ('Error from server (NotFound): error when creating ".kit/rendered-dev.yaml": namespaces "gone" not found',
     'namespaces "gone" not found'),
    ("error: the server could not find the requested resource", "the server could not find the requested resource"),
    ("deployment.apps/web configured\nWarning: spec.template: deprecated", ""),
])
def test_refusals_in_the_users_terms(output: str, expected: str) -> None:
    assert "\n".join(str(r) for r in converge.rejections(output)) == expected


SCHEMA = ('error: error validating ".kit/rendered-dev.yaml": error validating data: [ValidationError(Deployment.spec): '
          'unknown field "replicaz" in io.k8s.api.apps.v1.DeploymentSpec, ValidationError(Deployment.spec.template.spec.'
          'containers[0]): unknown field "imagez" in io.k8s.api.core.v1.Container, ValidationError(Service.spec.ports[0].'
          'port): invalid type for io.k8s.api.core.v1.ServicePort.port: got "string", expected "integer", '
          'ValidationError(Deployment.spec): missing required field "selector" in io.k8s.api.apps.v1.DeploymentSpec]; '
          'if you choose to ignore these errors, turn validation off with --validate=false\n')
SENT = [{"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicaz": 2, "template": {"spec": {
            "containers": [{"name": "web", "imagez": "x"}]}}}},
        {"kind": "Deployment", "metadata": {"name": "worker"}, "spec": {"selector": {}, "replicas": 1}},
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": "80"}]}}]


def test_kubectls_schema_errors_name_the_object_that_has_the_field_and_say_who_refused() -> None:
    refused = converge.rejections(SCHEMA, SENT)
    assert [str(r) for r in refused] == [
        "deployment/web: spec.replicaz is not a field there — check its name and indentation "
        "(`kubectl explain deployment.spec`)",
        "deployment/web: spec.template.spec.containers[0].imagez is not a field there — check its name and indentation "
        "(`kubectl explain deployment.spec.template.spec.containers`)",
        'service/web: spec.ports[0].port is invalid: invalid type for port: got "string", expected "integer" — '
        "fix the value's type",
        "deployment/web: spec.selector is required — add it"]
    assert all(r.by_kubectl for r in refused)


def test_a_missing_required_field_names_only_objects_that_have_its_parent() -> None:
    missing = ('error: error validating "x.yaml": error validating data: ValidationError(Deployment.spec.template.spec.'
               'containers[1]): missing required field "image" in io.k8s.api.core.v1.Container; if you choose to ignore')
    sent = [{"kind": "Deployment", "metadata": {"name": "one"}, "spec": {"template": {"spec": {"containers": [{}]}}}},
            {"kind": "Deployment", "metadata": {"name": "two"},
             "spec": {"template": {"spec": {"containers": [{"image": "a"}, {"name": "side"}]}}}}]
    assert [r.ref for r in converge.rejections(missing, sent)] == ["deployment/two"]


def test_the_api_servers_strict_field_check_names_the_object_and_the_field() -> None:
    patch = ('Error from server (BadRequest): error when applying patch:\n{}\nto:\nResource: "apps/v1, Resource='
             'deployments", GroupVersionKind: "apps/v1, Kind=Deployment"\nName: "web", Namespace: "shop"\nfor: "x.yaml": '
             'error when patching "x.yaml": Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
             'error: unknown field "spec.replicaz"\n')
    create = ('Error from server (BadRequest): error when creating "x.yaml": Deployment in version "v1" cannot be handled '
              'as a Deployment: strict decoding error: unknown field "spec.replicaz", unknown field "spec.templat"\n')
    assert [str(r) for r in converge.rejections(patch, SENT)] == [
        "deployment/web: spec.replicaz is not a field there — check its name and indentation (`kubectl explain deployment`)"]
    refused = converge.rejections(create, SENT)
    assert [(r.ref, r.field, r.by_kubectl) for r in refused] == [("deployment/web", "spec.replicaz", False),
                                                               ("", "Deployment spec.templat", False)]


def test_a_schema_error_no_sent_object_explains_names_the_kind() -> None:
    assert [str(r) for r in converge.rejections(SCHEMA)][0] == \
        "Deployment spec.replicaz is not a field there — check its name and indentation (`kubectl explain deployment.spec`)"


@pytest.mark.parametrize(("path", "value"), [("spec.replicaz", 2), ("spec.template.spec.containers[0].name", "web"),
                                             ("spec.template.spec.containers[1].name", None), ("spec.nope.deeper", None),
                                             ("metadata.name.x", None)])
def test_dig_follows_fields_and_list_indexes(path: str, value: Any) -> None:
    assert converge.dig(SENT[0], path) == value


def test_output_kept_for_an_error_has_no_endless_lines() -> None:
    kept = converge.short_output("x" * 5000 + "\nlast line\n")
    assert kept.splitlines()[-1] == "last line" and len(kept.splitlines()[0]) < 220


# -- lint's live guesses against the server's answer -----------------------------------------------------


def guess(ref: str) -> lint.Finding:
    return lint.Finding(f"k8s/x.yaml {ref}", "live guess", "fix it", ref=ref, live=True)


def test_a_guess_the_server_accepts_is_no_error_and_a_refusal_is() -> None:
    plain = lint.Finding("k8s/a.yaml Service/a", "selects nothing", "fix", error=False)
    refused = converge.Rejection("job/mig", "spec.template", "is immutable", "delete it")
    report, accepted = lint.confirm([plain, guess("deployment/web"), guess("job/mig")], [refused],
                                    {"job/mig": "k8s/job.yaml Job/mig"})
    assert accepted == [guess("deployment/web")]
    assert report[0] == plain
    assert str(report[1]) == "k8s/job.yaml Job/mig: error: spec.template is immutable\n    fix: delete it"


# -- configuration ------------------------------------------------------------------------------------------


def test_job_keep_and_rerun_jobs_are_read_per_environment(tmp_path: Any) -> None:
    from devloop.core.config import settings_from
    from devloop.core.errors import KitError
    from devloop.core.schema import with_env_overrides

    app = {"name": "shop", "job_keep": 1, "environments": {"dev": {}, "staging": {"rerun_jobs": False}}}
    assert (settings_from(app, tmp_path).job_keep, settings_from(app, tmp_path).rerun_jobs) == (1, True)
    assert settings_from(app, tmp_path, env="staging").rerun_jobs is False
    assert settings_from({"name": "shop"}, tmp_path).job_keep == 3  # the default
    assert settings_from(with_env_overrides({"INVOKE_APP_RERUN_JOBS": "false"}, {"rerun_jobs": True}),
                         tmp_path).rerun_jobs is False
    with pytest.raises(KitError) as raised:
        settings_from({"job_keep": -1, "environments": {"dev": {"rerun_jobs": "sometimes"}}}, tmp_path)
    assert "app.job_keep must be a whole number, 0 or more" in raised.value.message
    assert "app.environments.dev.rerun_jobs must be true or false, got 'sometimes'" in raised.value.message


def test_applied_from_compares_the_spec_kubectl_applied_last() -> None:
    doc = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2, "template": {"x": 1}}}

    def live(annotation: str | None) -> dict[str, Any]:
        annotations = {converge.LAST_APPLIED: annotation} if annotation is not None else {}
        return {"kind": "Deployment", "metadata": {"name": "web", "annotations": annotations},
                "spec": {"replicas": 2, "template": {"x": 1}, "defaulted": True}}

    assert converge.applied_from(doc, live(json.dumps({"spec": {"template": {"x": 1}, "replicas": 2}})))
    assert not converge.applied_from(doc, live(json.dumps({"spec": {"replicas": 1, "template": {"x": 1}}})))
    assert not converge.applied_from(doc, live(None))  # never applied with kubectl apply: cannot tell
    assert not converge.applied_from(doc, live("{not json"))
    assert not converge.applied_from(doc, live(json.dumps(["spec"])))


def test_converged_key_names_the_objects_kept_and_what_prune_may_touch() -> None:
    web = {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}}
    config = {"kind": "ConfigMap", "metadata": {"name": "cfg"}}
    rules = Policy("demo", "dev", namespace="demo-dev")
    key = converge.converged_key([web, config], rules)
    assert converge.converged_key([config, {**web, "spec": {"replicas": 3}}], rules) == key  # contents do not count
    assert converge.converged_key([config], rules) != key
    assert converge.converged_key([web, {**config, "metadata": {"name": "cfg", "namespace": "other"}}], rules) != key
    assert converge.converged_key([web, config], Policy("demo", "dev", namespace="demo-dev", volumes=True)) != key
    assert converge.converged_key([web, config], Policy("demo", "qa", namespace="demo-dev")) != key
