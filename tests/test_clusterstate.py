"""The wait's in-memory cluster: a listing, then synthetic watch events; and the JSON stream reader."""

from __future__ import annotations

import json
from typing import Any

from kube_objects import deployment, pod

from devloop.core.clusterstate import ClusterState, JsonStream


def at(obj: dict[str, Any], version: int | str) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    obj["metadata"]["resourceVersion"] = str(version)
    return obj


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def names(state: ClusterState) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}@{o['metadata'].get('resourceVersion', '')}" for o in state.items())


def test_events_add_modify_and_delete_objects() -> None:
    state = ClusterState()
    state.replace([at(deployment("web"), 1)])
    assert state.apply(event("ADDED", at(pod("web-1-a"), 2)))
    assert state.apply(event("MODIFIED", at(deployment("web", 1, 0), 3)))
    assert names(state) == ["Deployment/web@3", "Pod/web-1-a@2"]
    assert state.apply(event("DELETED", at(pod("web-1-a"), 4)))
    assert names(state) == ["Deployment/web@3"]
    assert not state.apply(event("DELETED", at(pod("web-1-a"), 4)))  # already gone


def test_an_event_older_than_what_is_held_is_ignored() -> None:
    state = ClusterState()
    state.apply(event("MODIFIED", at(deployment("web"), 10)))
    assert not state.apply(event("MODIFIED", at(deployment("web", 1, 0), 9)))
    assert state.items()[0]["status"]["readyReplicas"] == 1


def test_a_listing_older_than_the_events_does_not_undo_them() -> None:
    state = ClusterState()
    state.apply(event("MODIFIED", at(deployment("web"), 10)))
    state.apply(event("DELETED", at(pod("web-1-a"), 11)))
    state.replace([at(deployment("web", 1, 0), 8), at(pod("web-1-a"), 7), at(pod("web-1-b"), 9)])
    assert names(state) == ["Deployment/web@10", "Pod/web-1-b@9"]


def test_a_listing_drops_what_it_no_longer_has() -> None:
    state = ClusterState()
    state.replace([at(pod("web-1-a"), 1), at(pod("web-1-b"), 2)])
    state.replace([at(pod("web-1-b"), 3)])
    assert names(state) == ["Pod/web-1-b@3"]


def test_opaque_versions_are_always_taken_and_odd_events_ignored() -> None:
    state = ClusterState()
    state.apply(event("ADDED", at(pod("a"), "xyz")))
    assert state.apply(event("MODIFIED", at(pod("a", ready=False), "abc")))
    assert not state.apply({"type": "BOOKMARK", "object": at(pod("a"), 5)})
    assert not state.apply({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
    assert not state.apply({"type": "ADDED"})
    assert names(state) == ["Pod/a@abc"]


def test_objects_are_told_apart_by_kind_and_namespace() -> None:
    other = at(pod("web"), 2)
    other["metadata"]["namespace"] = "elsewhere"
    state = ClusterState()
    state.replace([at(deployment("web"), 1), at(pod("web"), 1), other])
    assert len(state.items()) == 3


def test_json_stream_reads_one_line_and_indented_values_and_skips_garbage() -> None:
    value = {"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "a"}, "x": ["}", {"y": "{"}]}}
    lines = (json.dumps(value, indent=4).splitlines() + [json.dumps(value), "not json", json.dumps(value)[:30],
             json.dumps(value) + json.dumps(value)] + json.dumps(value, indent=2).splitlines() + [""])
    stream = JsonStream()
    found = [v for line in lines for v in stream.feed(line)]
    assert found == [value] * 5


def test_a_deletion_is_remembered_only_while_a_listing_still_holds_the_object() -> None:
    state = ClusterState()
    for n in range(50):  # a long watch session: pods come and go
        state.apply(event("ADDED", at(pod(f"web-{n}"), 2 * n + 1)))
        state.apply(event("DELETED", at(pod(f"web-{n}"), 2 * n + 2)))
    state.replace([at(pod("web-49"), 97)])  # a listing taken before the last deletion: not brought back
    assert names(state) == []
    assert list(state.deleted) == [("Pod", "kit", "web-49")]  # the other 49 are forgotten
    state.replace([])
    assert state.deleted == {}
