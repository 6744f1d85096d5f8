"""Live update decisions: which saves sync into running containers, which rebuild, and why."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from kube_objects import pod

from devloop.core import liveupdate as lu

RAILS = lu.LiveUpdate(
    sync=(lu.SyncRule("app", "/app/app"), lu.SyncRule("config", "/app/config"), lu.SyncRule("lib/**/*.rb", "/app/lib")),
    run="touch tmp/restart.txt",
    rebuild=("Gemfile", "Gemfile.lock", "config/boot.rb"),
)


@pytest.mark.parametrize("rule,path,dest", [
    (lu.SyncRule("app", "/app/app"), "app/models/user.rb", "/app/app/models/user.rb"),
    (lu.SyncRule("app/", "/srv"), "app/x", "/srv/x"),
    (lu.SyncRule("app", "/app/app"), "apps/x.rb", None),
    (lu.SyncRule("app", "/app/app"), "app", "/app/app"),
    (lu.SyncRule("www/index.html", "/www/index.html"), "www/index.html", "/www/index.html"),
    (lu.SyncRule("lib/**/*.rb", "/app/lib"), "lib/a/b/c.rb", "/app/lib/a/b/c.rb"),
    (lu.SyncRule("lib/**/*.rb", "/app/lib"), "lib/c.rb", "/app/lib/c.rb"),
    (lu.SyncRule("lib/**/*.rb", "/app/lib"), "lib/c.txt", None),
    (lu.SyncRule("*.html", "/www"), "a/b.html", None),
    (lu.SyncRule("", "/app"), "a/b.html", "/app/a/b.html"),
])
def test_a_rule_maps_a_context_path_into_the_container(rule: lu.SyncRule, path: str, dest: str | None) -> None:
    assert rule.target(path) == dest


def test_a_batch_under_sync_rules_syncs_every_file() -> None:
    decision = lu.decide("demoapp", RAILS, ["app/models/user.rb", "config/routes.rb"], "Dockerfile")
    assert decision.sync and decision.files == (lu.FileSync("app/models/user.rb", "/app/app/models/user.rb"),
                                                lu.FileSync("config/routes.rb", "/app/config/routes.rb"))


@pytest.mark.parametrize("paths,reason", [
    (["app/a.rb", "Gemfile.lock"], "Gemfile.lock is a rebuild trigger (Gemfile.lock)"),
    (["config/boot.rb"], "config/boot.rb is a rebuild trigger (config/boot.rb)"),  # a trigger wins over a sync rule
    (["Dockerfile"], "Dockerfile is the Dockerfile"),
    (["app/a.rb", "bin/start-puma"], "bin/start-puma is outside every sync rule"),
])
def test_anything_else_rebuilds_with_the_reason(paths: list[str], reason: str) -> None:
    decision = lu.decide("demoapp", RAILS, paths, "Dockerfile")
    assert not decision.sync and decision.rebuild == reason and decision.files == ()


def test_without_rules_every_change_rebuilds() -> None:
    assert lu.decide("x", None, ["a"], "Dockerfile").rebuild == "no live_update rules"


def test_settings_are_checked_with_their_key() -> None:
    problems: list[str] = []
    parsed = lu.parse({"sync": [{"src": "app", "dest": "/app"}], "run": "touch x", "rebuild": ["Gemfile"]},
                      "app.images.web.live_update", problems)
    assert problems == [] and parsed == lu.LiveUpdate((lu.SyncRule("app", "/app"),), "touch x", ("Gemfile",))
    assert lu.parse(None, "k", problems) is None and problems == []
    bad: list[str] = []
    lu.parse({"sync": [{"src": "app", "dest": "app"}, {"src": "../x", "dest": "/x"}, "app:/app", {"src": "a", "dst": "/a"}],
              "run": ["a"], "rebuild": "Gemfile", "restart": True}, "app.images.web.live_update", bad)
    assert bad == [  # unknown keys (restart, dst) are the config check's (schema.unknown_keys), with their lines
        "app.images.web.live_update.sync[0].dest must be an absolute path in the container, got 'app'",
        "app.images.web.live_update.sync[1].src must be a path inside the build context, got '../x'",
        "app.images.web.live_update.sync[2] must be {src: PATH, dest: /PATH/IN/CONTAINER}, got 'app:/app'",
        "app.images.web.live_update.sync[3] has no dest: write {src: PATH, dest: /PATH/IN/CONTAINER}",
        "app.images.web.live_update.rebuild must be a list of paths or globs, got 'Gemfile'",
        "app.images.web.live_update.run must be one shell command (a string), got ['a']",
    ]


def _pod(name: str, image: str, running: bool = True, restarts: int = 0, deleting: bool = False) -> dict:  # type: ignore[type-arg]
    doc = pod(name, ready=running)
    doc["metadata"]["uid"] = f"uid-{name}"
    doc["spec"]["containers"] = [{"name": "web", "image": image}, {"name": "side", "image": "redis:7"}]
    state = {"running": {}} if running else {"waiting": {"reason": "CrashLoopBackOff"}}
    doc["status"]["containerStatuses"] = [{"name": "web", "state": state, "restartCount": restarts},
                                          {"name": "side", "state": {"running": {}}, "restartCount": 0}]
    if deleting:
        doc["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return doc


def test_running_containers_of_the_image_are_targets_others_are_reasons() -> None:
    pods = [_pod("a", "hello:1"), _pod("b", "127.0.0.1:5000/hello:2"), _pod("c", "hello:1", running=False),
            _pod("d", "hello:1", deleting=True), _pod("e", "hello-other:1")]
    targets, problems = lu.running_containers(pods, "hello")
    assert [(t.pod, t.container) for t in targets] == [("a", "web")]
    assert problems == ["pod/c container web is not running (CrashLoopBackOff)"]
    registry, _ = lu.running_containers(pods, "127.0.0.1:5000/hello")
    assert [t.pod for t in registry] == ["b"]


def test_a_restarted_container_is_a_new_instance() -> None:
    before = lu.running_containers([_pod("a", "hello:1")], "hello")[0][0]
    after = lu.running_containers([_pod("a", "hello:1", restarts=1)], "hello")[0][0]
    assert before.key != after.key and before.pod == after.pod


def test_the_tar_stream_puts_files_at_their_container_paths(tmp_path: Path) -> None:
    from devloop.livesync import tar_stream

    (tmp_path / "index.html").write_text("<h1>v2</h1>")
    data = tar_stream({"/app/www/index.html": str(tmp_path / "index.html")})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("app/www/index.html")
        assert tar.extractfile(member).read() == b"<h1>v2</h1>"  # type: ignore[union-attr]


@pytest.mark.parametrize("owner,labels,expected", [
    ({"kind": "ReplicaSet", "name": "hello-web-5db4bcd47"}, {"pod-template-hash": "5db4bcd47"}, "deployment/hello-web"),
    ({"kind": "ReplicaSet", "name": "plain-rs"}, {}, "replicaset/plain-rs"),
    ({"kind": "StatefulSet", "name": "db"}, {}, "statefulset/db"),
    ({"kind": "Job", "name": "migrate"}, {}, ""),
    (None, {}, ""),
])
def test_a_pods_workload_is_found_from_its_owner(owner: dict | None, labels: dict, expected: str) -> None:  # type: ignore[type-arg]
    meta = {"name": "p", "labels": labels, **({"ownerReferences": [owner]} if owner else {})}
    assert lu.pod_owner({"metadata": meta}) == expected
