"""Lint: every check with the file, the object and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devloop.core import lint, render
from devloop.core.render import Source


def docs(text: str, name: str = "k8s/app.yaml") -> tuple[list[dict[str, Any]], dict[int, Path]]:
    origins: dict[int, Path] = {}
    return render.parse([Source(Path(name), text)], origins), origins


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: redis}}
spec:
  strategy: {strategy}
  selector: {{matchLabels: {{app: redis}}}}
  template:
    metadata: {{labels: {{app: {label}}}}}
    spec: {{containers: [{{name: r, image: redis:4}}]}}
"""


def test_clean_manifests_have_no_findings() -> None:
    objects, origins = docs(DEPLOY.format(strategy="{type: Recreate}", label="redis"))
    assert lint.lint(objects, origins) == []


def test_recreate_with_rolling_update_names_file_object_and_fix() -> None:
    objects, origins = docs(DEPLOY.format(strategy="{type: Recreate, rollingUpdate: {maxSurge: 1}}", label="redis"))
    [finding] = lint.lint(objects, origins)
    assert finding.error and str(finding).startswith("k8s/app.yaml Deployment/redis: error:")
    assert "may not be set when strategy type is Recreate" in finding.message
    assert "delete the rollingUpdate block" in finding.fix


def test_live_leftover_rolling_update_is_explained() -> None:
    objects, origins = docs(DEPLOY.format(strategy="{type: Recreate}", label="redis"))
    live = {"Deployment//redis": {"spec": {"strategy": {"type": "RollingUpdate",
                                                         "rollingUpdate": {"maxSurge": "25%"}}}}}
    [finding] = lint.lint(objects, origins, live=live)
    assert "live Deployment still has spec.strategy.rollingUpdate" in finding.message
    assert "rollingUpdate: null" in finding.fix and "kubectl delete deployment redis" in finding.fix


def test_selector_not_matching_template_labels() -> None:
    objects, origins = docs(DEPLOY.format(strategy="{type: RollingUpdate}", label="other"))
    [finding] = lint.lint(objects, origins)
    assert "does not match the pod template labels" in finding.message


@pytest.mark.parametrize("api,kind,replacement,error", [
    ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1", True),
    ("extensions/v1beta1", "Deployment", "apps/v1", True),
    ("apps/v1beta2", "StatefulSet", "apps/v1", True),
    ("networking.k8s.io/v1beta1", "Ingress", "networking.k8s.io/v1", True),
    ("batch/v1beta1", "CronJob", "batch/v1", False),
])
def test_removed_api_versions_name_the_replacement(api: str, kind: str, replacement: str, error: bool) -> None:
    objects, origins = docs(f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\n")
    [finding] = [f for f in lint.lint(objects, origins) if "apiVersion" in f.message]
    assert finding.error is error and f"use apiVersion: {replacement}" in finding.fix


def test_service_selecting_nothing_is_a_warning() -> None:
    text = DEPLOY.format(strategy="{type: RollingUpdate}", label="redis") + \
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"
    objects, origins = docs(text)
    [finding] = lint.lint(objects, origins)
    assert not finding.error and "matches no workload" in finding.message


def test_duplicates_name_both_files() -> None:
    a, origins = docs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "k8s/a.yaml")
    b, more = docs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "k8s/b.yaml")
    origins.update(more)
    [finding] = lint.lint(a + b, origins)
    assert finding.where.startswith("k8s/b.yaml") and "also defined in k8s/a.yaml" in finding.message


def test_our_image_under_another_registry_warns() -> None:
    objects, origins = docs("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                            "spec: {containers: [{name: c, image: quay.io/me/demoapp:1}]}\n")
    [finding] = lint.lint(objects, origins, our_images=["demoapp"], built={"demoapp": "demoapp:abc"})
    assert not finding.error and "write `image: demoapp`" in finding.fix


def test_job_changed_in_place_is_an_error_with_the_fix() -> None:
    objects, origins = docs("apiVersion: batch/v1\nkind: Job\nmetadata: {name: db-setup}\n"
                            "spec: {template: {spec: {containers: [{name: c, image: 'demoapp:new'}]}}}\n")
    live = {"Job//db-setup": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "demoapp:old"}]}}}}}
    [finding] = lint.lint(objects, origins, live=live)
    assert "Jobs are immutable" in finding.message and "delete job db-setup" in finding.fix
    same = {"Job//db-setup": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "demoapp:new"}]}}}}}
    assert lint.lint(objects, origins, live=same) == []


def test_objects_without_api_version_or_name_are_errors() -> None:
    objects, origins = docs("kind: ConfigMap\nmetadata: {}\n")
    [finding] = lint.lint(objects, origins)
    assert finding.error and "ConfigMap has no apiVersion and metadata.name" in finding.message


# -- each rule on its own: a finding on a bad object, none on a good one ---------------------------

GOOD_DEPLOY = DEPLOY.format(strategy="{type: Recreate}", label="redis")
SERVICE = "---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{selector: {{app: {app}}}}}\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{{name: c, image: '{image}'}}]}}\n"
JOB = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: [{name: c, image: 'a:1'}]}}}\n"
LIVE_JOB = {"Job//j": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:0"}]}}}}}
LIVE_ROLLING = {"Deployment//redis": {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}}}

RULE_CASES = [  # rule, bad manifests, good manifests, live objects
    (lint.missing_fields, "kind: ConfigMap\nmetadata: {name: c}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", {}),
    (lint.duplicate, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: ConfigMap\n"
                     "metadata: {name: c}\n",
     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: ConfigMap\n"
     "metadata: {name: c, namespace: other}\n", {}),
    (lint.removed_api, "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n",
     "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n", {}),
    (lint.recreate_strategy, DEPLOY.format(strategy="{type: Recreate, rollingUpdate: {}}", label="redis"), GOOD_DEPLOY, {}),
    (lint.recreate_strategy, GOOD_DEPLOY, DEPLOY.format(strategy="{type: Recreate, rollingUpdate: null}", label="redis"),
     LIVE_ROLLING),
    (lint.selector_mismatch, DEPLOY.format(strategy="{}", label="other"), GOOD_DEPLOY, {}),
    (lint.service_selects_nothing, GOOD_DEPLOY + SERVICE.format(app="web"), GOOD_DEPLOY + SERVICE.format(app="redis"), {}),
    (lint.foreign_image, POD.format(image="quay.io/me/demoapp:1"), POD.format(image="demoapp:abc"), {}),
    (lint.job_changed, JOB, JOB.replace("a:1", "a:0"), LIVE_JOB),
]


def run_rule(rule: lint.Rule, text: str, live: dict[str, Any]) -> list[lint.Finding]:
    objects, origins = docs(text)
    ctx = lint.context(objects, ["demoapp"], {"demoapp": "demoapp:abc"}, live)
    return [finding for doc in objects for finding in rule(lint.subject(doc, origins), ctx)]


@pytest.mark.parametrize("rule,bad,good,live", RULE_CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(RULE_CASES)])
def test_each_rule_finds_the_bad_object_and_passes_the_good_one(rule: lint.Rule, bad: str, good: str,
                                                                 live: dict[str, Any]) -> None:
    [finding] = run_rule(rule, bad, live)
    assert finding.where.startswith("k8s/app.yaml ") and finding.message and finding.fix
    assert run_rule(rule, good, live) == []


def test_every_rule_is_in_the_list_once_and_tested() -> None:
    assert len(set(lint.RULES)) == len(lint.RULES)
    assert {case[0] for case in RULE_CASES} == set(lint.RULES)


def test_findings_come_per_object_in_rule_order() -> None:
    text = ("apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {}\n"
            "spec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: c}}}}\n")
    findings = lint.lint(*docs(text))
    assert [f.message.split(" ")[:2] for f in findings] == [["Deployment", "has"], ["apiVersion", "extensions/v1beta1"],
                                                             ["spec.selector.matchLabels", "{'a':"]]


# -- mutation gaps (#13 item 26): each test fails on a code change that gives a wrong result --------------

# Written out, not read from lint.REMOVED_APIS, so a deleted or changed entry is noticed.
REMOVED = [
    ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1", "1.22", True),
    ("extensions/v1beta1", "Deployment", "apps/v1", "1.16", True),
    ("extensions/v1beta1", "DaemonSet", "apps/v1", "1.16", True),
    ("extensions/v1beta1", "ReplicaSet", "apps/v1", "1.16", True),
    ("extensions/v1beta1", "NetworkPolicy", "networking.k8s.io/v1", "1.16", True),
    ("extensions/v1beta1", "PodSecurityPolicy", "(removed; use Pod Security admission)", "1.25", True),
    ("apps/v1beta1", "Deployment", "apps/v1", "1.16", True),
    ("apps/v1beta2", "DaemonSet", "apps/v1", "1.16", True),
    ("networking.k8s.io/v1beta1", "Ingress", "networking.k8s.io/v1", "1.22", True),
    ("networking.k8s.io/v1beta1", "IngressClass", "networking.k8s.io/v1", "1.22", True),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "rbac.authorization.k8s.io/v1", "1.22", True),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "apiextensions.k8s.io/v1", "1.22", True),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1",
     "1.22", True),
    ("scheduling.k8s.io/v1beta1", "PriorityClass", "scheduling.k8s.io/v1", "1.22", True),
    ("storage.k8s.io/v1beta1", "StorageClass", "storage.k8s.io/v1", "1.22", True),
    ("batch/v1beta1", "CronJob", "batch/v1", "1.25", False),
    ("policy/v1beta1", "PodDisruptionBudget", "policy/v1", "1.25", False),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler", "autoscaling/v2", "1.25", False),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2", "1.26", False),
]


@pytest.mark.parametrize("api,kind,replacement,version,error", REMOVED, ids=[f"{r[0]}-{r[1]}" for r in REMOVED])
def test_every_removed_api_is_reported(api: str, kind: str, replacement: str, version: str, error: bool) -> None:
    [finding] = run_rule(lint.removed_api, f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: x}}\n", {})
    assert finding.error is error and f"is removed in Kubernetes {version}" in finding.message
    assert f"use apiVersion: {replacement} " in finding.fix


def test_every_removed_api_entry_is_in_the_test() -> None:
    assert len(lint.REMOVED_APIS) == len(REMOVED)


def test_rolling_update_settings_on_a_rolling_update_deployment_are_fine() -> None:
    text = DEPLOY.format(strategy="{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}", label="redis")
    assert lint.lint(*docs(text)) == []
    live = {"Deployment//redis": {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}}
    objects, origins = docs(text)
    assert lint.lint(objects, origins, live=live) == []


def test_a_statefulset_with_rolling_update_settings_is_not_a_deployment() -> None:
    text = DEPLOY.replace("kind: Deployment", "kind: StatefulSet").format(
        strategy="{type: Recreate, rollingUpdate: {maxSurge: 1}}", label="redis")
    assert run_rule(lint.recreate_strategy, text, {}) == []


POD_TEMPLATES = {  # kind -> a manifest whose pods carry app=web
    "Deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {selector: {matchLabels: {app: web}}, "
                  "template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: 'a:1'}]}}}\n",
    "Pod": "apiVersion: v1\nkind: Pod\nmetadata: {name: w, labels: {app: web}}\nspec: {containers: [{name: c, image: 'a:1'}]}\n",
    "CronJob": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: w}\nspec: {schedule: '* * * * *', jobTemplate: "
               "{spec: {template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: 'a:1'}]}}}}}\n",
}
for _kind in ("StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
    POD_TEMPLATES[_kind] = POD_TEMPLATES["Deployment"].replace("kind: Deployment", f"kind: {_kind}").replace(
        "apps/v1", "batch/v1" if _kind == "Job" else "apps/v1")


@pytest.mark.parametrize("kind", sorted(POD_TEMPLATES))
def test_a_service_matching_any_kind_of_workload_is_fine(kind: str) -> None:
    assert run_rule(lint.service_selects_nothing, POD_TEMPLATES[kind] + SERVICE.format(app="web"), {}) == []


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "ReplicaSet", "Job"])
def test_selector_mismatch_in_every_workload_kind(kind: str) -> None:
    text = POD_TEMPLATES[kind].replace("labels: {app: web}", "labels: {app: other}")
    [finding] = run_rule(lint.selector_mismatch, text, {})
    assert "does not match the pod template labels" in finding.message


def test_service_and_workload_are_matched_within_one_namespace() -> None:
    workload = POD_TEMPLATES["Deployment"].replace("metadata: {name: w}", "metadata: {name: w, namespace: other}")
    same = SERVICE.format(app="web").replace("metadata: {name: web}", "metadata: {name: web, namespace: other}")
    assert run_rule(lint.service_selects_nothing, workload + same, {}) == []
    [finding] = run_rule(lint.service_selects_nothing, workload + SERVICE.format(app="web"), {})
    assert not finding.error


def test_services_without_selector_or_external_name_are_not_checked() -> None:
    headless = "---\napiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {ports: [{port: 5432}]}\n"
    external = "---\napiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec: {type: ExternalName, selector: {app: x}}\n"
    assert run_rule(lint.service_selects_nothing, GOOD_DEPLOY + headless + external, {}) == []


def test_the_built_reference_under_a_registry_is_not_foreign() -> None:
    text = POD.format(image="registry.example.com/team/demoapp:abc")
    objects, origins = docs(text)
    ctx = lint.context(objects, ["demoapp"], {"demoapp": "registry.example.com/team/demoapp:abc"}, {})
    assert [f for doc in objects for f in lint.foreign_image(lint.subject(doc, origins), ctx)] == []


def test_a_job_whose_command_changed_is_flagged() -> None:
    job = JOB.replace("image: 'a:1'}", "image: 'a:1', command: [migrate, --new]}")
    live = {"Job//j": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:1",
                                                                       "command": ["migrate"]}]}}}}}
    [finding] = run_rule(lint.job_changed, job, live)
    assert "Jobs are immutable" in finding.message
    live_args = {"Job//j": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a:1",
                                                                            "command": ["migrate", "--new"]}]}}}}}
    assert run_rule(lint.job_changed, job, live_args) == []
