"""An identical rebuild rolls nothing, on the real cluster with examples/hello: a new file the Dockerfile never
copies gives a new input hash and a build, but the same image ID, so the deployed reference stays; a change to
what the image contains rolls out its new tag."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import inv, make_app
from watch_helpers import cluster_env, namespace

pytestmark = pytest.mark.integration


def live(ns: str, kind: str) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run(["kubectl", "--namespace", ns, "get", kind, "-l", "app=hello", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return [o for o in json.loads(out)["items"] if not o["metadata"].get("deletionTimestamp")]


def state(ns: str) -> tuple[set[str], set[str], set[str]]:
    """(ReplicaSet names, live pod names, the images in the pods' specs) of hello's workloads."""
    pods = live(ns, "pods")
    return ({r["metadata"]["name"] for r in live(ns, "replicasets")}, {p["metadata"]["name"] for p in pods},
            {c["image"] for p in pods for c in p["spec"]["containers"]})


def test_an_identical_rebuild_rolls_nothing_and_a_real_change_rolls_out(cluster: str, base_image: str,
                                                                         tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "app" / "www" / "run.txt").write_text(f"{uuid.uuid4()}\n")  # a tag no earlier run has built
    with namespace("kit-same") as ns:
        env = cluster_env(base_image, ns)
        first = inv(app, "up", env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        deployed = inv(app, "image.tag", env=env).stdout.strip()
        before = state(ns)
        assert before[2] == {deployed} and len(before[1]) == 3, before  # 2 web + 1 worker

        (app / "notes.txt").write_text("not in the image: the Dockerfile copies app/ only\n")
        second = inv(app, "up", env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        new_tag = inv(app, "image.tag", env=env).stdout.strip()
        assert new_tag != deployed  # image.tag still prints the tag the inputs give
        assert f"$ docker build --tag {new_tag}" in second.stderr  # the input hash still decides to build
        assert f"image hello: same content as the deployed {deployed} (image ID " in second.stderr
        assert "nothing to roll out" in second.stderr
        assert state(ns) == before  # no new ReplicaSet, the same pods, the same image in their specs

        with (app / "app" / "web.sh").open("a") as script:
            script.write("# a real change\n")
        third = inv(app, "up", env=env)
        assert third.returncode == 0, third.stderr[-3000:]
        changed = inv(app, "image.tag", env=env).stdout.strip()
        assert "same content as" not in third.stderr
        after = state(ns)
        assert after[2] == {changed} and not after[1] & before[1] and after[0] - before[0], (before, after)

        with (app / "app" / "web.sh").open("a") as script:  # a code change, then an apply without a build
            script.write("# not built yet\n")
        unbuilt = inv(app, "image.tag", env=env).stdout.strip()
        applied = inv(app, "k8s.apply", env=env)
        assert applied.returncode == 0, applied.stderr[-3000:]
        assert f"warning: image hello: {unbuilt} (the sources as they are now) is not built: keeping the deployed " \
               f"{changed}; `inv up` builds and rolls out the change" in applied.stderr
        assert state(ns) == after  # no pod was rolled onto an image that does not exist
