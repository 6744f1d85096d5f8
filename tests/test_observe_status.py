"""The status table and the app URL, from JSON items and a fixed clock."""

from __future__ import annotations

import pytest
from kube_objects import container_status, crashed, deployment, job, pod, replicaset, waiting

from devloop.core import status

NOW = status.parse_time("2026-01-01T01:00:00Z") or 0.0


@pytest.mark.parametrize(("created", "shown"), [
    ("2026-01-01T00:59:15Z", "45s"), ("2026-01-01T00:57:00Z", "3m0s"), ("2026-01-01T00:30:00Z", "30m"),
    ("2025-12-31T20:00:00Z", "5h0m"), ("2025-12-31T00:00:00Z", "25h"), ("2025-12-20T00:00:00Z", "12d"),
    ("garbage", "?"),
])
def test_age_is_compact_like_kubectl(created: str, shown: str) -> None:
    assert status.age(created, NOW) == shown


@pytest.mark.parametrize(("reference", "shown"), [
    ("registry.example.com/team/demoapp:3f2a1c", "registry.example.com/team/demoapp:3f2a1c"),
    ("127.0.0.1:5000/hello:3f2a1c", "127.0.0.1:5000/hello:3f2a1c"),  # the registry's port is not a tag
    ("redis:7@sha256:abcd", "redis:7"),
    ("127.0.0.1:5000/redis@sha256:0123456789abcdef", "127.0.0.1:5000/redis@sha256:0123456789ab"),
    ("hello", "hello"),
])
def test_short_image_keeps_the_reference_the_pods_run(reference: str, shown: str) -> None:
    assert status.short_image(reference) == shown


def test_the_image_column_shows_the_registry_prefix() -> None:
    pushed = "127.0.0.1:5000/hello:3f2a1c"
    table = status.rows([deployment("web", 1, 1, image=pushed), pod("web-a", image=pushed)], NOW)
    assert [row[4] for row in table[1:]] == [pushed, pushed]


def test_table_nests_replicasets_and_pods_under_their_workload() -> None:
    items = [
        deployment("web", 2, 1, updated=2, total=2, created="2026-01-01T00:50:00Z"),
        replicaset("web-2", "web", 2, 2, 1, created="2026-01-01T00:59:00Z", image="demoapp:new"),
        replicaset("web-1", "web", 1, 0, 0, created="2026-01-01T00:50:00Z"),
        pod("web-2-a", "web-2", created="2026-01-01T00:59:00Z", image="demoapp:new"),
        pod("web-2-b", "web-2", ready=False, created="2026-01-01T00:59:30Z", image="demoapp:new",
            statuses=[container_status(ready=False, image="demoapp:new", state=waiting("CrashLoopBackOff"),
                                       last=crashed(2), restarts=3)]),
        job("migrate", complete=True, succeeded=1),
        pod("migrate-x", "migrate", "Job", phase="Succeeded", ready=False,
            statuses=[container_status(ready=False, state={"terminated": {"exitCode": 0}})]),
        pod("loose", ready=True),
    ]
    rows = status.rows(items, NOW)
    assert rows[0] == status.HEADER
    assert rows[1:] == [
        ["deployment/web", "1/2", "", "10m", "demoapp:abc", "1/2 replicas ready"],
        ["  replicaset/web-2", "1/2", "", "60s", "demoapp:new", "current"],
        ["    pod/web-2-a", "1/1", "0", "60s", "demoapp:new", "Running"],
        ["    pod/web-2-b", "0/1", "3", "30s", "demoapp:new", "CrashLoopBackOff (exit 2)"],
        ["job/migrate", "1/1", "", "60m", "migrate:1", "complete"],
        ["  pod/migrate-x", "0/1", "0", "60m", "demoapp:abc", "Completed"],
        ["pod/loose", "1/1", "0", "60m", "demoapp:abc", "Running"],
    ]


def test_only_limits_the_table_to_these_workloads() -> None:
    items = [deployment("web"), deployment("other"), replicaset("web-1", "web"), pod("web-1-a", "web-1"), pod("loose")]
    names = [r[0].strip() for r in status.rows(items, NOW, only=["deploy/web"])[1:]]
    assert names == ["deployment/web", "replicaset/web-1", "pod/web-1-a"]


@pytest.mark.parametrize(("item", "word"), [
    (pod("p", deleting=True), "Terminating"),
    (pod("p", ready=False, statuses=[container_status(ready=False)]), "Running, not ready (main): HTTP 503"),
    (pod("p", ready=False, statuses=[container_status(ready=False, state=waiting("ErrImageNeverPull"))]),
     "ErrImageNeverPull"),
    (pod("p", ready=False, statuses=[container_status(ready=False, state=waiting("ContainerCreating"))]),
     "ContainerCreating"),
    (pod("p", phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": "0/1 nodes are available"}]),
     "Pending: Unschedulable 0/1 nodes are available"),
])
def test_pod_status_says_why_it_is_not_ready(item: dict, word: str) -> None:
    assert status.pod_status(item, probe="HTTP 503") == word


def test_fingerprint_ignores_age() -> None:
    a = [["x", "1/1", "0", "5s", "img", "Running"]]
    b = [["x", "1/1", "0", "6s", "img", "Running"]]
    assert status.fingerprint(a) == status.fingerprint(b)
    assert status.fingerprint(a) != status.fingerprint([["x", "0/1", "0", "5s", "img", "Running"]])


INGRESS = {"kind": "Ingress", "metadata": {"name": "web"},
           "spec": {"rules": [{"host": "demoapp.192.168.49.2.nip.io"}]}}
TLS_INGRESS = {"kind": "Ingress", "metadata": {"name": "web"},
               "spec": {"tls": [{"hosts": ["demoapp.test"]}], "rules": [{"host": "demoapp.test"}]}}
NODEPORT = {"kind": "Service", "metadata": {"name": "web"}, "spec": {"type": "NodePort"}}
CLUSTERIP = {"kind": "Service", "metadata": {"name": "mysql"}, "spec": {"type": "ClusterIP"}}


@pytest.mark.parametrize(("objects", "provider", "forwards", "plan"), [
    ([INGRESS, NODEPORT], "minikube", [], ("url", "http://demoapp.192.168.49.2.nip.io/")),
    ([TLS_INGRESS], "kind", [], ("url", "https://demoapp.test/")),
    ([NODEPORT, CLUSTERIP], "minikube", ["deploy/web 3000"], ("minikube-service", "web")),
    ([NODEPORT], "kind", ["deploy/mysql 3306", "deploy/web 3000:8080"], ("forward", "http://127.0.0.1:3000/")),
    ([CLUSTERIP], "docker", ["deploy/mysql 3306", "bad spec"], ("none", None)),
])
def test_url_plan(objects: list[dict], provider: str, forwards: list[str], plan: tuple[str, str | None]) -> None:
    how, value = status.url_plan(objects, provider, forwards)
    assert how == plan[0]
    if plan[1] is not None:
        assert value == plan[1]
    else:
        assert "add an Ingress" in value


def test_the_ingress_url_says_what_it_needs_to_answer() -> None:
    rendered = [{"kind": "Ingress", "metadata": {"name": "web"}}]
    served = [{"kind": "Ingress", "metadata": {"name": "web"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}}]
    unserved = [{"kind": "Ingress", "metadata": {"name": "web"}, "status": {"loadBalancer": {}}}]
    assert status.ingress_source(rendered, "minikube") == "the Ingress host"
    assert status.ingress_source(rendered, "kind") == "the Ingress host; it answers where the cluster runs an ingress controller"
    assert status.ingress_source(served, "kind") == "the Ingress host"
    assert status.ingress_source(unserved, "minikube") == \
        "the Ingress host; no ingress controller has given the Ingress an address yet"
