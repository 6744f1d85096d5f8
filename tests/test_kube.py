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
    (deployment("web", 2, total=3), "1 old replica(s) still terminating"),
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
