"""The pure cluster reader: readiness, hopeless pod states in the user's words, events, kubectl pass-through."""

from __future__ import annotations

from typing import Any

import pytest
from kube_objects import container_status, crashed, deployment, job, pod, replicaset, waiting

from devloop.core import kube


def web_with(statuses: list[dict[str, Any]], *, ready: bool = False, **pod_kw: Any) -> list[dict[str, Any]]:
    return [deployment("web", 1, 0), replicaset("web-1", "web"),
            pod("web-1-a", "web-1", statuses=statuses, ready=ready, **pod_kw)]


@pytest.mark.parametrize(("status", "reason", "words"), [
    (container_status(ready=False, state=waiting("ErrImageNeverPull", "Container image \"demoapp:abc\" is not present")),
     "ErrImageNeverPull", ["the node has no demoapp:abc", "built against another Docker daemon", "run `inv image.load`"]),
    (container_status(ready=False, state=waiting("ImagePullBackOff", "Back-off pulling image"), image="demoapp:abc"),
     "ImagePullBackOff", ["the node has no demoapp:abc", "inv image.load"]),
    (container_status(ready=False, state=waiting("ErrImageNeverPull"), image="redis:7"),
     "ErrImageNeverPull", ["the node has no redis:7", "imagePullPolicy is Never"]),
    (container_status(ready=False, state=waiting("ImagePullBackOff", "manifest unknown"), image="redis:77"),
     "ImagePullBackOff", ["cannot pull redis:77", "manifest unknown", "check the name and tag"]),
    (container_status(ready=False, state=waiting("InvalidImageName", "couldn't parse image reference"), image="Bad:Name"),
     "InvalidImageName", ["'Bad:Name' is not a valid image reference", "fix the image: line"]),
    (container_status(ready=False, state=waiting("CreateContainerConfigError", 'secret "db-credentials" not found')),
     "CreateContainerConfigError", ["Secret db-credentials does not exist in namespace kit", "app.secrets",
                                    "kubectl create secret generic db-credentials"]),
    (container_status(ready=False, state=waiting("CreateContainerConfigError", 'configmap "settings" not found')),
     "CreateContainerConfigError", ["ConfigMap settings does not exist", "configMapRef"]),
    (container_status(ready=False, state=waiting("CreateContainerConfigError",
                                                 "couldn't find key PASSWORD in Secret kit/db-credentials")),
     "CreateContainerConfigError", ["Secret db-credentials has no key PASSWORD", "secretKeyRef.key"]),
    (container_status(ready=False, state=waiting("CrashLoopBackOff", "back-off 10s"), last=crashed(3), restarts=2),
     "CrashLoopBackOff", ["keeps crashing (exit code 3, 2 restarts)", "last lines are below"]),
    (container_status(ready=False, state=waiting("CrashLoopBackOff"), last=crashed(137, reason="OOMKilled"), restarts=1),
     "CrashLoopBackOff", ["OOMKilled", "resources.limits.memory"]),
    (container_status(ready=False, state=waiting("RunContainerError", 'exec: "rails": executable file not found')),
     "RunContainerError", ["executable file not found", "fix its command"]),
])
def test_hopeless_states_get_one_actionable_sentence(status: dict[str, Any], reason: str, words: list[str]) -> None:
    verdict = kube.assess(web_with([status]), ["deploy/web"], ["demoapp"])
    assert [p.reason for p in verdict.hopeless] == [reason]
    sentence = verdict.hopeless[0].sentence
    for word in words:
        assert word in sentence
    assert verdict.hopeless[0].pod == "web-1-a"
    assert not verdict.done


def test_unschedulable_pod_names_the_schedulers_reason() -> None:
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                   "message": "0/1 nodes are available: 1 Insufficient memory."}]
    items = web_with([], phase="Pending", conditions=conditions)
    problem = kube.assess(items, ["deploy/web"], []).hopeless[0]
    assert problem.reason == "Unschedulable"
    assert "0/1 nodes are available: 1 Insufficient memory." in problem.sentence
    assert "lower the pod's resource requests" in problem.sentence


@pytest.mark.parametrize(("status", "reason"), [
    (container_status(ready=False, state=waiting("ContainerCreating")), None),
    (container_status(ready=False), "NotReady"),
    (container_status(ready=False, state=waiting("ErrImagePull", "proxyconnect tcp"), image="redis:7"), "ErrImagePull"),
])
def test_states_that_may_still_resolve_keep_waiting(status: dict[str, Any], reason: str | None) -> None:
    verdict = kube.assess(web_with([status]), ["deploy/web"], ["demoapp"])
    assert not verdict.hopeless and not verdict.done
    assert verdict.waiting == {"deployment/web": "0/1 replicas ready"}
    assert [p.reason for p in verdict.problems] == ([reason] if reason else [])


def test_ready_and_missing_workloads() -> None:
    items = [deployment("web", 2), job("migrate", complete=True)]
    verdict = kube.assess(items, ["deploy/web", "job/migrate", "sts/mysql"], [])
    assert verdict.ready == ["deployment/web", "job/migrate"]
    assert verdict.missing == ["statefulset/mysql"]
    assert not verdict.done
    assert kube.assess(items, ["deploy/web", "job/migrate"], []).done


@pytest.mark.parametrize(("obj", "progress"), [
    (deployment("web", 2, generation=2, observed=1), "the controller has not seen the new spec yet"),
    (deployment("web", 2, updated=1), "1/2 replicas updated"),
    (deployment("web", 2, total=3), "1 old replica(s) still running"),  # status.replicas counts no deleted pod
    (deployment("web", 2, 1), "1/2 replicas ready"),
    (deployment("web", 2), None),
    (job("migrate", completions=2, succeeded=1), "1/2 completions"),
])
def test_workload_progress(obj: dict[str, Any], progress: str | None) -> None:
    assert kube.workload_progress(obj) == progress


def test_a_failed_job_is_hopeless_and_wants_its_log() -> None:
    verdict = kube.assess([job("migrate", failed="Job has reached the specified backoff limit")], ["job/migrate"], [])
    problem = verdict.hopeless[0]
    assert (problem.workload, problem.reason) == ("job/migrate", "JobFailed")
    assert "Job has reached the specified backoff limit" in problem.sentence
    assert "delete the job and apply again" in problem.sentence


def test_progress_deadline_exceeded_is_hopeless() -> None:
    cond = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": 'ReplicaSet "web-1" has timed out progressing.'}]
    verdict = kube.assess([deployment("web", 1, 0, conditions=cond)], ["deploy/web"], [])
    assert [p.reason for p in verdict.hopeless] == ["ProgressDeadlineExceeded"]


def test_a_ready_deployment_is_ready_despite_an_old_progress_deadline() -> None:
    cond = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "old"}]
    verdict = kube.assess([deployment("web", 1, 1, conditions=cond)], ["deploy/web"], [])
    assert (verdict.ready, verdict.problems, verdict.done) == (["deployment/web"], [], True)


def test_only_the_newest_replicasets_pods_count() -> None:
    old_crashing = container_status(ready=False, state=waiting("CrashLoopBackOff"), last=crashed())
    items = [deployment("web", 1, 0, updated=1, total=2), replicaset("web-1", "web", 1), replicaset("web-2", "web", 2),
             pod("web-1-a", "web-1", statuses=[old_crashing], ready=False),
             pod("web-2-a", "web-2", ready=False, statuses=[container_status(ready=False)])]
    verdict = kube.assess(items, ["deploy/web"], [])
    assert verdict.pods == {"deployment/web": ["web-2-a"]}
    assert [p.reason for p in verdict.problems] == ["NotReady"]


def crash_loop(finished: str, restarts: int = 1) -> dict[str, Any]:
    return container_status(ready=False, state=waiting("CrashLoopBackOff"), last=crashed(1, finished), restarts=restarts)


def test_a_crash_loop_waits_while_another_workload_is_still_starting() -> None:
    items = web_with([crash_loop("2026-01-01T00:00:30Z")]) + [deployment("mysql", 1, 0)]
    verdict = kube.assess(items, ["deploy/web", "deploy/mysql"], [])
    assert not verdict.hopeless
    assert "what it needs may still be starting" in verdict.problems[0].sentence


def test_a_crash_loop_that_began_before_its_dependency_was_ready_gets_another_restart() -> None:
    mysql = [deployment("mysql", 1), replicaset("mysql-1", "mysql"), pod("mysql-1-a", "mysql-1", ready_at="2026-01-01T00:00:40Z")]
    before = kube.assess(web_with([crash_loop("2026-01-01T00:00:30Z")]) + mysql, ["deploy/web", "deploy/mysql"], [])
    assert not before.hopeless
    after = kube.assess(web_with([crash_loop("2026-01-01T00:00:45Z")]) + mysql, ["deploy/web", "deploy/mysql"], [])
    assert [p.reason for p in after.hopeless] == ["CrashLoopBackOff"]
    many = kube.assess(web_with([crash_loop("2026-01-01T00:00:30Z", kube.CRASH_RESTARTS)]) + mysql,
                       ["deploy/web", "deploy/mysql"], [])
    assert [p.reason for p in many.hopeless] == ["CrashLoopBackOff"]


def test_a_lone_crash_loop_is_hopeless_at_once_and_wants_the_previous_log() -> None:
    verdict = kube.assess(web_with([crash_loop("2026-01-01T00:00:30Z")]), ["deploy/web"], [])
    problem = verdict.hopeless[0]
    assert problem.wants_previous_log and problem.container == "main"


def test_two_crash_loops_do_not_wait_for_each_other() -> None:
    items = web_with([crash_loop("2026-01-01T00:00:30Z")]) + [
        deployment("worker", 1, 0), replicaset("worker-1", "worker"),
        pod("worker-1-a", "worker-1", statuses=[crash_loop("2026-01-01T00:00:31Z")], ready=False)]
    verdict = kube.assess(items, ["deploy/web", "deploy/worker"], [])
    assert sorted(p.workload for p in verdict.hopeless) == ["deployment/web", "deployment/worker"]


def test_warning_events_per_pod_latest_repeat_kept_once() -> None:
    def event(name: str, reason: str, message: str, when: str, count: int = 1, kind: str = "Warning") -> dict[str, Any]:
        return {"involvedObject": {"name": name}, "type": kind, "reason": reason, "message": message,
                "lastTimestamp": when, "count": count}

    events = [
        event("web-1-a", "Unhealthy", "Readiness probe failed: wget: can't connect", "2026-01-01T00:00:10Z", 4),
        event("web-1-a", "Scheduled", "assigned", "2026-01-01T00:00:01Z", kind="Normal"),
        event("web-1-a", "FailedMount", 'MountVolume.SetUp failed for volume "creds" : secret "x" not found',
              "2026-01-01T00:00:02Z"),
        event("other", "Unhealthy", "Readiness probe failed: nope", "2026-01-01T00:00:03Z"),
    ]
    found = kube.warning_events(events, ["web-1-a"])
    assert found == {"web-1-a": ['FailedMount: MountVolume.SetUp failed for volume "creds" : secret "x" not found',
                                 "Unhealthy: Readiness probe failed: wget: can't connect (x4)"]}
    assert kube.probe_failure(found["web-1-a"]) == "wget: can't connect (x4)"
    assert kube.probe_failure(["FailedMount: x"]) is None
    assert kube.probe_failure(["Unhealthy: Readiness probe failed:  (x18)"]) == "its command failed without output (x18)"
    assert kube.probe_failure(["Unhealthy: Readiness probe failed: "]) == "its command failed without output"
    assert kube.uncounted("wget: can't connect (x4)") == "wget: can't connect"


def test_deadline_report_names_workload_pod_and_probe_message() -> None:
    items = web_with([container_status(ready=False)])
    verdict = kube.assess(items, ["deploy/web", "deploy/gone"], [])
    lines = kube.deadline_report(verdict, {"web-1-a": ["Unhealthy: Readiness probe failed: HTTP 503 (x9)"]})
    assert lines[0] == "deployment/web: 0/1 replicas ready"
    assert "pod web-1-a: NotReady: container main is running but not ready" in lines[1]
    assert lines[2] == "  pod web-1-a: Unhealthy: Readiness probe failed: HTTP 503 (x9)"
    assert lines[3].startswith("deployment/gone: not found in the cluster")


@pytest.mark.parametrize(("args", "argv"), [
    (["get", "pods"], ["kubectl", "--context", "ctx", "--namespace", "ns", "get", "pods"]),
    (["get", "pods", "-n", "other"], ["kubectl", "--context", "ctx", "get", "pods", "-n", "other"]),
    (["get", "pods", "--namespace=other"], ["kubectl", "--context", "ctx", "get", "pods", "--namespace=other"]),
    (["get", "pods", "-A"], ["kubectl", "--context", "ctx", "get", "pods", "-A"]),
    (["--context", "kind-x", "get", "pods"], ["kubectl", "--namespace", "ns", "--context", "kind-x", "get", "pods"]),
    (["exec", "web", "--", "ls", "-n", "x"], ["kubectl", "--context", "ctx", "--namespace", "ns", "exec", "web", "--",
                                              "ls", "-n", "x"]),
])
def test_pass_through_adds_context_and_namespace_unless_given(args: list[str], argv: list[str]) -> None:
    assert kube.pass_through(args, "ctx", "ns") == argv


def test_pass_through_without_a_configured_namespace() -> None:
    assert kube.pass_through(["get", "pods"], "ctx", "") == ["kubectl", "--context", "ctx", "get", "pods"]
    assert kube.option_value(["--context=a", "get"], "--context") == "a"
    assert kube.option_value(["exec", "x", "--", "--context", "b"], "--context") is None


def rollout_with_old_pod(**old_pod: Any) -> list[dict[str, Any]]:
    return [deployment("web", 1, 1, updated=1, total=2), replicaset("web-1", "web", 1), replicaset("web-2", "web", 2),
            pod("web-1-a", "web-1", **old_pod), pod("web-2-a", "web-2")]


def test_old_replicas_are_said_running_until_they_are_being_deleted() -> None:
    running = kube.assess(rollout_with_old_pod(), ["deploy/web"], [])
    assert running.waiting == {"deployment/web": "1 old replica(s) still running"}
    deleting = kube.assess(rollout_with_old_pod(deleting=True), ["deploy/web"], [])
    assert deleting.waiting == {"deployment/web": "1 old replica(s) still terminating"}


def test_the_pod_limit_is_named_as_the_cause_not_resource_requests() -> None:
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                   "message": "0/1 nodes are available: 1 Too many pods."}]
    problem = kube.assess(web_with([], phase="Pending", conditions=conditions), ["deploy/web"], []).hopeless[0]
    assert "0/1 nodes are available: 1 Too many pods." in problem.sentence
    assert "pod limit" in problem.sentence
    assert "resource requests" not in problem.sentence


def never_pull(pod_name: str, image: str = "demoapp:abc") -> list[dict[str, Any]]:
    status = container_status(ready=False, image=image, state=waiting("ErrImageNeverPull", "not present"))
    return [deployment("web", 1, 0), replicaset("web-1", "web"),
            pod(pod_name, "web-1", ready=False, image=image, statuses=[status])]


def test_a_pull_failure_of_an_image_just_delivered_is_retried_once_per_older_pod() -> None:
    verdict = kube.assess(never_pull("web-1-a"), ["deploy/web"], ["demoapp"])
    retry = kube.pulls_to_retry(verdict, {"docker.io/library/demoapp:abc"}, {"web-1-a"})
    assert [p.pod for p in retry] == ["web-1-a"]
    assert not verdict.hopeless and not verdict.done
    assert "which the kit has just delivered" in retry[0].sentence


@pytest.mark.parametrize(("delivered", "older"), [
    (set(), {"web-1-a"}),  # not delivered by this run: the node really has no such image
    ({"demoapp:other"}, {"web-1-a"}),  # another tag was delivered
    ({"demoapp:abc"}, set()),  # a pod that started after the delivery (or was restarted) still fails
])
def test_a_pull_failure_stays_hopeless_unless_the_image_was_just_delivered_to_an_older_pod(
        delivered: set[str], older: set[str]) -> None:
    verdict = kube.assess(never_pull("web-1-a"), ["deploy/web"], ["demoapp"])
    assert kube.pulls_to_retry(verdict, delivered, older) == []
    assert [p.reason for p in verdict.hopeless] == ["ErrImageNeverPull"]


REFUSED = "\n".join(
    [f'E0101 00:00:0{i}.000000   1234 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group '
     'list: Get \\"https://127.0.0.1:6443/api?timeout=10s\\": dial tcp 127.0.0.1:6443: connect: connection refused"'
     for i in range(5)]
    + ["The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"])


def test_kubectls_repeated_connection_error_becomes_one_reason() -> None:
    assert kube.cluster_error(REFUSED) == (
        "https://127.0.0.1:6443",
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?")
    hung = 'E0101 memcache.go:265] "Unhandled Error" err="couldn\'t get current server API group list: Get ' \
           '\\"https://10.0.0.1:443/api\\": net/http: TLS handshake timeout"\n' * 3
    assert kube.cluster_error(hung) == ("https://10.0.0.1:443",
                                        "couldn't get current server API group list: Get \"https://10.0.0.1:443/api\": "
                                        "net/http: TLS handshake timeout")


OPENAPI = ('error: error validating ".kit/rendered-dev.yaml": error validating data: failed to download openapi: Get '
           '"https://127.0.0.1:1/openapi/v2?timeout=32s": dial tcp 127.0.0.1:1: connect: connection refused; if you '
           'choose to ignore these errors, turn validation off with --validate=false\n')


@pytest.mark.parametrize(("stderr", "why"), [
    (OPENAPI, "dial tcp 127.0.0.1:1: connect: connection refused"),
    (REFUSED, "dial tcp 127.0.0.1:6443: connect: connection refused"),
    ("Unable to connect to the server: net/http: TLS handshake timeout\n", "net/http: TLS handshake timeout"),
    ("Unable to connect to the server: dial tcp: lookup cluster.example on 127.0.0.53:53: no such host\n",
     "dial tcp: lookup cluster.example on 127.0.0.53:53: no such host"),
])
def test_a_cluster_that_does_not_answer_is_told_from_its_connection_error(stderr: str, why: str) -> None:
    assert kube.unreachable(stderr) == why


@pytest.mark.parametrize("stderr", [
    "error: You must be logged in to the server (Unauthorized)\n",
    'Error from server (InternalError): error when creating ".kit/rendered-dev.yaml": Internal error occurred: failed '
    'calling webhook "validate.nginx.ingress.kubernetes.io": Post "https://ingress-nginx-controller-admission.ingress-'
    'nginx.svc:443/networking/v1/ingresses?timeout=10s": dial tcp 10.96.1.2:443: connect: connection refused\n',
    'Error from server (Invalid): error when applying patch: Service "web" is invalid: spec.clusterIPs[0]: Invalid value\n',
    'error: error validating ".kit/rendered-dev.yaml": error validating data: ValidationError(Deployment.spec): unknown '
    'field "replicaz" in io.k8s.api.apps.v1.DeploymentSpec; if you choose to ignore these errors, turn validation off\n',
    "",
])
def test_a_cluster_that_answered_is_not_called_unreachable(stderr: str) -> None:
    assert kube.unreachable(stderr) == ""


# -- mutation gaps (#13 item 29): each test fails on a code change that gives a wrong result --------------


@pytest.mark.parametrize(("phase", "conditions"), [
    ("Pending", [{"type": "PodScheduled", "status": "True"}]),  # scheduled, containers being created
    ("Pending", []),  # not looked at by the scheduler yet
    ("Pending", [{"type": "PodScheduled", "status": "False", "reason": "SchedulerError", "message": "retrying"}]),
    ("Running", [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "stale"}]),
])
def test_only_an_unschedulable_pending_pod_is_hopeless(phase: str, conditions: list[dict[str, Any]]) -> None:
    creating = container_status(ready=False, state=waiting("ContainerCreating"))
    verdict = kube.assess(web_with([creating], phase=phase, conditions=conditions), ["deploy/web"], [])
    assert not verdict.hopeless and verdict.waiting == {"deployment/web": "0/1 replicas ready"}


def test_pods_being_deleted_do_not_count() -> None:
    crashing = container_status(ready=False, state=waiting("CrashLoopBackOff"), last=crashed(), restarts=3)
    items = [deployment("web", 1, 0), replicaset("web-1", "web"),
             pod("web-1-a", "web-1", statuses=[crashing], ready=False, deleting=True),
             pod("web-1-b", "web-1", statuses=[container_status(ready=False)], ready=False)]
    verdict = kube.assess(items, ["deploy/web"], ["demoapp"])
    assert verdict.pods == {"deployment/web": ["web-1-b"]} and not verdict.hopeless
    assert [p["metadata"]["name"] for p in kube.current_pods(items)["deployment/web"]] == ["web-1-b"]


def test_the_newest_replicaset_is_chosen_by_revision_not_listing_order() -> None:
    items = [deployment("web", 1, 0, updated=1, total=2), replicaset("web-9", "web", 10), replicaset("web-2", "web", 2),
             replicaset("web-1", "web", 9), pod("web-9-a", "web-9", ready=False), pod("web-2-a", "web-2"),
             pod("web-1-a", "web-1")]
    assert [p["metadata"]["name"] for p in kube.current_pods(items)["deployment/web"]] == ["web-9-a"]
    assert sorted(p["metadata"]["name"] for p in kube.old_pods(items)["deployment/web"]) == ["web-1-a", "web-2-a"]


def statefulset(ready: int, want: int = 2, current: str = "web-1", update: str = "web-1", generation: int = 1,
                observed: int = 1) -> dict[str, Any]:
    return {"kind": "StatefulSet", "metadata": {"name": "db", "generation": generation}, "spec": {"replicas": want},
            "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": 1,
                       "currentRevision": current, "updateRevision": update}}


def daemonset(ready: int, updated: int, want: int = 2, generation: int = 1, observed: int = 1) -> dict[str, Any]:
    return {"kind": "DaemonSet", "metadata": {"name": "agent", "generation": generation}, "spec": {},
            "status": {"observedGeneration": observed, "desiredNumberScheduled": want, "numberReady": ready,
                       "updatedNumberScheduled": updated}}


@pytest.mark.parametrize(("obj", "progress"), [
    (statefulset(2), None),
    (statefulset(1), "1/2 replicas ready"),
    (statefulset(2, current="web-1", update="web-2"), "rolling update in progress (1/2 updated)"),
    (statefulset(2, generation=2), "the controller has not seen the new spec yet"),
    (daemonset(2, 2), None),
    (daemonset(1, 2), "1/2 pods ready"),
    (daemonset(2, 1), "2/2 pods ready"),  # ready, but not every node runs the new pod yet
    (daemonset(2, 2, generation=3, observed=2), "the controller has not seen the new spec yet"),
    (deployment("web", 2, updated=2, total=2, ready=2) | {"status": {"observedGeneration": 1, "replicas": 2,
                                                                       "updatedReplicas": 2, "readyReplicas": 2,
                                                                       "availableReplicas": 1}}, "1/2 replicas ready"),
    (job("migrate", complete=True), None),
    ({"kind": "ConfigMap", "metadata": {"name": "c"}}, None),
])
def test_workload_progress_of_every_kind(obj: dict[str, Any], progress: str | None) -> None:
    assert kube.workload_progress(obj) == progress


def test_statefulset_and_daemonset_pods_are_theirs() -> None:
    items = [statefulset(0, want=1), daemonset(0, 1, want=1),
             pod("db-0", "db", "StatefulSet", ready=False, statuses=[container_status(ready=False)]),
             pod("agent-x", "agent", "DaemonSet", ready=False, statuses=[container_status(ready=False)])]
    verdict = kube.assess(items, ["sts/db", "ds/agent"], [])
    assert verdict.pods == {"statefulset/db": ["db-0"], "daemonset/agent": ["agent-x"]}
    assert set(verdict.waiting) == {"statefulset/db", "daemonset/agent"}


def test_a_crashing_init_container_is_named() -> None:
    init = container_status("migrate", ready=False, state=waiting("CrashLoopBackOff"), last=crashed(2), restarts=4)
    items = web_with([container_status(ready=False, state=waiting("PodInitializing"))], phase="Pending")
    items[-1]["status"]["initContainerStatuses"] = [init]
    problem = kube.assess(items, ["deploy/web"], ["demoapp"]).hopeless[0]
    assert (problem.container, problem.reason) == ("migrate", "CrashLoopBackOff")
    assert "container migrate keeps crashing (exit code 2, 4 restarts)" in problem.sentence


ALIASES = {"deployment": ["deploy", "deployment", "deployments", "Deploy"],
           "statefulset": ["sts", "statefulset", "statefulsets", "STS"], "daemonset": ["ds", "daemonset", "daemonsets"],
           "job": ["job", "jobs"], "service": ["svc", "service", "services"], "pod": ["po", "pod", "pods"],
           "replicaset": ["rs", "replicaset", "replicasets"]}


@pytest.mark.parametrize(("alias", "kind"), [(alias, kind) for kind, aliases in ALIASES.items() for alias in aliases])
def test_every_kind_alias_names_the_same_kind_as_kubectl(alias: str, kind: str) -> None:
    assert kube.normalise_workload(f"{alias}/web") == f"{kind}/web"


@pytest.mark.parametrize(("kind", "name"), [("Deployment", "deployment"), ("StatefulSet", "statefulset"),
                                            ("DaemonSet", "daemonset"), ("Job", "job"), ("ReplicaSet", "replicaset"),
                                            ("Pod", "pod"), ("Service", "service")])
def test_every_object_kind_has_its_kubectl_name(kind: str, name: str) -> None:
    assert kube.KIND_NAMES[kind] == name and kube.key_of({"kind": kind, "metadata": {"name": "x"}}) == f"{name}/x"


# -- mutation gaps (#13): scheduler reasons, pull retries, init and job timing, events, kubectl arguments -----


@pytest.mark.parametrize(("message", "fix"), [
    ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }.",
     "lower the pod's resource requests"),  # the first reason the scheduler names is the one to fix
    ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.", "create the PersistentVolumeClaim"),
    ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.", "fix the pod's nodeSelector"),
    ("0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }.",
     "add a toleration"),
])
def test_each_scheduler_reason_gets_its_own_fix(message: str, fix: str) -> None:
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]
    problem = kube.assess(web_with([], phase="Pending", conditions=conditions), ["deploy/web"], []).hopeless[0]
    assert problem.sentence.startswith(f"no node can run pod web-1-a: {message} — {fix}")


def pull_failure(reason: str) -> list[dict[str, Any]]:
    status = container_status(ready=False, image="demoapp:abc", state=waiting(reason, "pull access denied"))
    return [deployment("web", 1, 0), replicaset("web-1", "web"),
            pod("web-1-a", "web-1", ready=False, image="demoapp:abc", statuses=[status])]


@pytest.mark.parametrize("reason", ["ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff"])
def test_every_pull_failure_of_our_just_delivered_image_is_retried(reason: str) -> None:
    verdict = kube.assess(pull_failure(reason), ["deploy/web"], ["demoapp"])
    assert [p.reason for p in verdict.hopeless] == [reason]
    assert [p.pod for p in kube.pulls_to_retry(verdict, {"demoapp:abc"}, {"web-1-a"})] == ["web-1-a"]
    assert not verdict.hopeless


@pytest.mark.parametrize("state", [waiting("ErrImageNeverPull"), waiting("CreateContainerConfigError", "secret \"x\" not found"),
                                   waiting("RunContainerError", "exec failed"), None])
def test_only_a_crash_loop_asks_for_the_previous_log(state: dict[str, Any] | None) -> None:
    """A container that never ran (or runs now) has no previous log: asking kubectl for one only prints an error."""
    verdict = kube.assess(web_with([container_status(ready=False, state=state)]), ["deploy/web"], ["demoapp"])
    assert len(verdict.problems) == 1 and not verdict.problems[0].wants_previous_log


def test_a_pod_still_initialising_has_no_problem_yet() -> None:
    init = container_status("migrate", ready=False)  # running, not done yet
    items = web_with([container_status(ready=False, state=waiting("PodInitializing"))], phase="Pending")
    items[-1]["status"]["initContainerStatuses"] = [init]
    verdict = kube.assess(items, ["deploy/web"], ["demoapp"])
    assert verdict.problems == [] and verdict.waiting == {"deployment/web": "0/1 replicas ready"}


@pytest.mark.parametrize(("ready", "conditions", "expected"), [
    (True, None, True), (False, None, False), (False, [{"type": "PodScheduled", "status": "True"}], False)])
def test_a_pod_is_ready_only_when_its_ready_condition_is_true(ready: bool, conditions: list[dict[str, Any]] | None,
                                                              expected: bool) -> None:
    assert kube.pod_ready(pod("web-1-a", "web-1", ready=ready, conditions=conditions)) is expected


def test_a_crash_loop_waits_for_a_job_to_complete_then_is_hopeless() -> None:
    migrate = job("migrate", complete=True)
    migrate["status"]["completionTime"] = "2026-01-01T00:00:40Z"
    wanted = ["deploy/web", "job/migrate"]
    before = kube.assess(web_with([crash_loop("2026-01-01T00:00:30Z")]) + [migrate], wanted, [])
    assert before.ready == ["job/migrate"] and not before.hopeless
    after = kube.assess(web_with([crash_loop("2026-01-01T00:00:45Z")]) + [migrate], wanted, [])
    assert [p.reason for p in after.hopeless] == ["CrashLoopBackOff"]


def test_a_crash_in_the_second_its_dependency_became_ready_gets_another_restart() -> None:
    """Times have second resolution: a crash stamped the same second may still have missed the dependency."""
    mysql = [deployment("mysql", 1), replicaset("mysql-1", "mysql"), pod("mysql-1-a", "mysql-1", ready_at="2026-01-01T00:00:40Z")]
    verdict = kube.assess(web_with([crash_loop("2026-01-01T00:00:40Z")]) + mysql, ["deploy/web", "deploy/mysql"], [])
    assert not verdict.hopeless and "may still be starting" in verdict.problems[0].sentence


def test_events_with_only_an_event_time_are_ordered_by_it() -> None:
    """events.k8s.io/v1 events (and some controllers') leave lastTimestamp empty and give eventTime."""
    events = [{"involvedObject": {"name": "web-1-a"}, "type": "Warning", "reason": "BackOff", "message": "restarting",
               "lastTimestamp": None, "eventTime": "2026-01-01T00:00:20.000000Z"},
              {"involvedObject": {"name": "web-1-a"}, "type": "Warning", "reason": "FailedMount", "message": "no secret",
               "lastTimestamp": None, "eventTime": "2026-01-01T00:00:10.000000Z"},
              {"involvedObject": {"name": "web-1-a"}, "type": "Warning", "reason": "Unhealthy", "message": "probe",
               "lastTimestamp": "2026-01-01T00:00:15Z"}]
    assert kube.warning_events(events, ["web-1-a"]) == {"web-1-a": ["FailedMount: no secret", "Unhealthy: probe",
                                                                    "BackOff: restarting"]}


@pytest.mark.parametrize("stderr", ["", "\n", "  \n\n"])
def test_a_silent_kubectl_failure_says_no_answer(stderr: str) -> None:
    assert kube.cluster_error(stderr) == ("", "no answer")


def test_blank_lines_after_kubectls_error_are_not_the_reason() -> None:
    assert kube.cluster_error("error: You must be logged in to the server (Unauthorized)\n\n") == \
        ("", "You must be logged in to the server (Unauthorized)")


@pytest.mark.parametrize("args", [["get", "pods", "--namespace", "other"], ["get", "pods", "-n=other"],
                                  ["get", "pods", "--all-namespaces"]])
def test_every_way_of_choosing_a_namespace_keeps_the_kits_out(args: list[str]) -> None:
    assert kube.pass_through(args, "ctx", "ns") == ["kubectl", "--context", "ctx", *args]


def test_an_option_missing_its_value_is_left_for_kubectl_to_report() -> None:
    assert kube.option_value(["get", "pods", "--context"], "--context") is None
    assert kube.pass_through(["get", "pods", "--context"], "ctx", "ns") == [
        "kubectl", "--context", "ctx", "--namespace", "ns", "get", "pods", "--context"]
