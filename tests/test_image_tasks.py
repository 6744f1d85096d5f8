"""image.ls / rm / prune / shell / rollout against a strict mock context (exact commands), the core they ask
(image listings, prune plans, `kubectl set image` plans, the digest cache), and bad input as a user meets it."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import inv, make_app
from invoke import Exit
from strict import StrictContext, fail, ok

from devloop import docker_api, image
from devloop.core import images as core
from devloop.core.errors import KitError

INSPECT = "docker image inspect --format '{{{{.Id}}}}' {ref}"
LS_LABEL = "docker image ls --filter label=devloop.app=shop --format '{{json .}}'"
LS_NAMES = "docker image ls --filter=reference=shop --format '{{json .}}'"
READ_WORKLOADS = "kubectl --context k8s-local get deployments,statefulsets,daemonsets -o json"
WAIT = "kubectl --context k8s-local get deployments,statefulsets,daemonsets,jobs,replicasets,pods -o json --request-timeout=10s"


@pytest.fixture(autouse=True)
def docker_cli_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock context scripts `docker image inspect`: the daemon's API is not asked."""
    monkeypatch.setattr(docker_api, "daemon_url", lambda env: None)


def make_shop(root: Path) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "hello.txt").write_text("hello\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY app/ /app/\n")
    (root / ".dockerignore").write_text(".kit/\n*.md\n")
    return root


def config(root: Path, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"root": str(root), "name": "shop", "images": {"shop": {}},
                                "cluster": {"provider": "docker", "ip": "127.0.0.1", "context": "k8s-local",
                                            "allowed_contexts": ["k8s-local"]}}
    cluster = overrides.pop("cluster", {})
    settings["cluster"].update(cluster)
    settings.update(overrides)
    return settings


def shop_tag(root: Path) -> str:
    return core.build_inputs(root, root / "Dockerfile", {}).tag


def row(repository: str, tag: str, image_id: str, created: str, since: str = "1 hour ago") -> str:
    return json.dumps({"Repository": repository, "Tag": tag, "ID": image_id, "CreatedAt": f"{created} +0000 UTC",
                       "CreatedSince": since, "Size": "1.99MB"})


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop")


# -- core ---------------------------------------------------------------------------------------


def test_image_listing_is_parsed_newest_first_and_deduplicated() -> None:
    text = "\n".join([
        row("shop", "aaa", "111", "2024-01-01 10:00:00"),
        "WARNING: not json",
        row("shop", "ccc", "333", "2024-01-03 10:00:00"),
        row("shop", "bbb", "222", "2024-01-02 10:00:00"),
        row("shop", "ccc", "333", "2024-01-03 10:00:00"),
        row("<none>", "<none>", "444", "2024-01-04 10:00:00"),
    ])
    found = core.newest_first(core.parse_image_list(text))
    assert [i.ref for i in found] == ["444", "shop:ccc", "shop:bbb", "shop:aaa"]
    assert found[0].dangling and not found[1].dangling
    assert core.parse_created("garbage") == core.EPOCH


def test_prune_plan_keeps_the_newest_n_per_image_and_always_the_current_one() -> None:
    listing = core.parse_image_list("\n".join([
        row("shop", "t1", "1", "2024-01-01 10:00:00"),
        row("shop", "t2", "2", "2024-01-02 10:00:00"),
        row("shop", "t3", "3", "2024-01-03 10:00:00"),
        row("shop", "t4", "4", "2024-01-04 10:00:00"),
        row("worker", "w1", "5", "2024-01-01 10:00:00"),
        row("worker", "w2", "6", "2024-01-02 10:00:00"),
        row("<none>", "<none>", "7", "2024-01-05 10:00:00"),
    ]))
    plan = core.prune_plan(listing, keep=1, current={"shop:t1"})
    assert [(i.ref, why) for i, why in plan.keep] == [
        ("shop:t4", "one of the 1 newest"), ("worker:w2", "one of the 1 newest"),
        ("shop:t1", "current: the tag the inputs give now")]
    assert [i.ref for i, _ in plan.remove] == ["7", "shop:t3", "shop:t2", "worker:w1"]
    assert [i.ref for i, _ in core.prune_plan(listing, keep=0, current={"shop:t4"}).keep] == ["shop:t4"]
    with pytest.raises(KitError, match="--keep -1 must be 0 or more"):
        core.prune_plan(listing, keep=-1, current=set())


def test_a_failed_build_names_its_last_step_and_drops_the_clis_notice() -> None:
    output = ("Sending build context to Docker daemon  4.608kB\nStep 1/5 : FROM base\n ---> 3b43\n"
              "Step 3/5 : COPY missing.txt /missing.txt\n"
              "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n"
              "            Install the buildx component to build images with BuildKit:\n"
              "            https://docs.docker.com/go/buildx/\n\n"
              "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt\n")
    step, tail = core.build_failure(output)
    assert step == "Step 3/5 : COPY missing.txt /missing.txt"
    assert "DEPRECATED" not in tail and "buildx" not in tail and tail.endswith("stat missing.txt")
    assert core.build_failure("#7 [2/3] RUN make\n#7 ERROR: exit code 2\n")[0] == "#7 [2/3] RUN make"
    assert core.build_failure("")[0] == ""


def test_removal_conflicts_name_the_refs_a_container_uses() -> None:
    stderr = ('Error response from daemon: conflict: unable to remove repository reference "shop:t2" (must force) - '
              'container 0a1b is using its referenced image 2222\n'
              "Error response from daemon: conflict: unable to delete 7777 (cannot be forced) - image is being used "
              "by running container 9f9f\n")
    assert core.removal_conflicts(stderr) == ["shop:t2", "7777"]


@pytest.mark.parametrize(("ref", "qualified"), [
    ("shop:1", "docker.io/library/shop:1"),
    ("shop", "docker.io/library/shop:latest"),
    ("team/shop:1", "docker.io/team/shop:1"),
    ("registry.local:5000/team/shop:1", "registry.local:5000/team/shop:1"),
    ("localhost/shop:2", "localhost/shop:2"),
])
def test_refs_are_qualified_like_containerd_names_them(ref: str, qualified: str) -> None:
    assert core.qualified_ref(ref) == qualified


def test_node_state_compares_the_image_id_not_just_the_tag() -> None:
    listing = core.parse_node_images(json.dumps([
        {"id": "sha256:" + "a" * 64, "repoTags": ["docker.io/library/shop:t1"], "size": "1"},
        {"id": "b" * 13, "repoTags": ["docker.io/library/shop:t2"], "size": "1"},
    ]))
    assert core.node_state(listing, "shop:t1", "sha256:" + "a" * 64) == "same"
    assert core.node_state(listing, "shop:t2", "sha256:" + "b" * 64) == "same"  # a listing may shorten IDs
    assert core.node_state(listing, "shop:t1", "sha256:" + "c" * 64) == "different"
    assert core.node_state(listing, "shop:t3", "sha256:" + "a" * 64) == "missing"
    assert core.parse_node_images("not json") == {}


def workload(kind: str, name: str, containers: list[tuple[str, str]], init: list[tuple[str, str]] = (),  # type: ignore[assignment]
             pull: str = "IfNotPresent") -> dict[str, Any]:
    def spec(items: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"name": n, "image": i, "imagePullPolicy": pull} for n, i in items]
    return {"kind": kind, "metadata": {"name": name},
            "spec": {"template": {"spec": {"initContainers": spec(list(init)), "containers": spec(containers)}}}}


def test_set_image_plan_points_our_containers_at_the_built_ref_and_leaves_the_rest() -> None:
    live = [
        workload("Deployment", "shop-web", [("web", "shop:0.0.1"), ("proxy", "nginx:1.25")], init=[("migrate", "shop")]),
        workload("Deployment", "shop-worker", [("worker", "shop:abc")]),
        workload("StatefulSet", "shop-redis", [("redis", "redis:7")]),
        workload("DaemonSet", "agent", [("agent", "registry.local/team/shop:old")], pull="Always"),
        {"kind": "Job", "metadata": {"name": "setup"}, "spec": {"template": {"spec": {"containers": [{"name": "s", "image": "shop"}]}}}},
    ]
    plans, missing = core.set_image_plan(live, {"shop": "shop:abc"})
    assert [(p.workload, p.changes, p.current) for p in plans] == [
        ("deployment/shop-web", {"migrate": "shop:abc", "web": "shop:abc"}, []),
        ("deployment/shop-worker", {}, ["worker"]),
    ]
    assert plans[0].argv() == ["set", "image", "deployment/shop-web", "migrate=shop:abc", "web=shop:abc"]
    assert missing == []
    pushed, _ = core.set_image_plan(live, {"shop": "registry.local/team/shop:abc"})
    assert pushed[-1].workload == "daemonset/agent" and pushed[-1].pull_always == ["agent"]
    only, missing = core.set_image_plan(live, {"shop": "shop:abc"}, ["deployment/shop-worker", "deployment/gone"])
    assert [p.workload for p in only] == ["deployment/shop-worker"] and missing == ["deployment/gone"]


def test_digest_cache_reads_no_unchanged_file_and_never_trusts_a_racy_one(tmp_path: Path) -> None:
    ctx = make_shop(tmp_path / "ctx")
    cache_file = tmp_path / "digests.json"
    clock = [0]

    def tag_with_cache() -> tuple[str, int]:
        cache = core.DigestCache(cache_file, now_ns=lambda: clock[0])
        return core.build_inputs(ctx, ctx / "Dockerfile", {}, cache=cache).tag, cache.hits

    clock[0] = os.stat(ctx / "app" / "hello.txt").st_mtime_ns + 1  # just written: too fresh to remember
    first, hits = tag_with_cache()
    assert first == shop_tag(ctx) and hits == 0 and not cache_file.exists()
    clock[0] += 10 * 10**9  # ten seconds later the files are safe to remember
    assert tag_with_cache() == (first, 0)
    assert tag_with_cache() == (first, 3)  # .dockerignore, Dockerfile and app/hello.txt: no file read
    (ctx / "app" / "hello.txt").write_text("HELLO\n")  # same size, new content
    changed, _ = tag_with_cache()
    assert changed != first and changed == shop_tag(ctx)
    (ctx / "app" / "hello.txt").unlink()
    tag_with_cache()
    assert not any("hello.txt" in k for k in json.loads(cache_file.read_text()))  # forgotten files are dropped
    cache_file.write_text("{broken")
    assert tag_with_cache()[0] == shop_tag(ctx)


def test_the_kit_state_folder_never_changes_the_tag(tmp_path: Path) -> None:
    ctx = make_shop(tmp_path / "ctx")
    (ctx / ".dockerignore").write_text("")
    before = shop_tag(ctx)
    (ctx / ".kit").mkdir()
    (ctx / ".kit" / "rendered-dev.yaml").write_text("kind: Secret\n")
    assert shop_tag(ctx) == before


# -- image.ls -------------------------------------------------------------------------------------


def test_ls_lists_the_projects_images_newest_first_and_marks_the_current_tag(shop: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    tag = shop_tag(shop)
    c = StrictContext({
        LS_LABEL: ok("\n".join([row("shop", tag, "a" * 12, "2024-01-02 10:00:00", "2 days ago"),
                                row("shop", "old", "b" * 12, "2024-01-01 10:00:00", "3 days ago"),
                                row("<none>", "<none>", "c" * 12, "2024-01-03 10:00:00")])),
        LS_NAMES: ok("\n".join([row("shop", "0.0.1", "d" * 12, "2023-12-01 10:00:00", "2 months ago"),
                                row("shop", tag, "a" * 12, "2024-01-02 10:00:00", "2 days ago")])),
    }, app=config(shop), repeat=False)
    image.ls(c)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert [line.split()[1] for line in lines[1:]] == [tag, "old", "0.0.1"]
    assert lines[1].endswith("current") and not lines[2].endswith("current")
    assert c.commands == [LS_LABEL, LS_NAMES]


def test_ls_with_nothing_built_says_how_to_build(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({LS_LABEL: ok(""), LS_NAMES: ok("")}, app=config(shop))
    image.ls(c)
    assert "no images of shop in the local Docker daemon yet: inv image.build" in capsys.readouterr().err


# -- image.rm -------------------------------------------------------------------------------------


LISTED = "\n".join([row("shop", "t1", "1" * 12, "2024-01-01 10:00:00"), row("shop", "t2", "2" * 12, "2024-01-02 10:00:00")])


@pytest.mark.parametrize(("args", "removed"), [
    ({"tag": "t1"}, "docker image rm shop:t1"),
    ({"name": "shop"}, "docker image rm shop:t2 shop:t1"),
    ({"name": "shop", "tag": "t2"}, "docker image rm shop:t2"),
])
def test_rm_removes_exactly_the_named_tags(shop: Path, args: dict[str, str], removed: str) -> None:
    c = StrictContext({LS_LABEL: ok(LISTED), LS_NAMES: ok(LISTED), removed: ok()}, app=config(shop))
    image.rm(c, **args)
    assert c.commands == [LS_LABEL, LS_NAMES, removed]


@pytest.mark.parametrize(("args", "words", "code"), [
    ({}, "say what to remove: --tag T", 2),
    ({"tag": "-bad tag"}, "invalid image tag '-bad tag'", 2),
    ({"tag": "t9"}, "no tag 't9' of shop in the local Docker daemon (there: shop:t2, shop:t1)", 1),
    ({"name": "nginx"}, "no image named 'nginx' in app.images (known: shop)", 1),
])
def test_rm_refuses_what_is_not_the_projects(shop: Path, args: dict[str, str], words: str, code: int) -> None:
    c = StrictContext({LS_LABEL: ok(LISTED), LS_NAMES: ok(LISTED)}, app=config(shop))
    with pytest.raises(Exit) as err:
        image.rm(c, **args)
    assert words in str(err.value.message) and err.value.code == code
    assert not any(cmd.startswith("docker image rm") for cmd in c.commands)


def test_rm_of_an_unknown_tag_names_the_ten_newest_tags_there(shop: Path) -> None:
    many = "\n".join(row("shop", f"t{i:02d}", f"{i:012d}", f"2024-01-01 10:{i:02d}:00") for i in range(25))
    c = StrictContext({LS_LABEL: ok(many), LS_NAMES: ok(many)}, app=config(shop))
    with pytest.raises(Exit) as err:
        image.rm(c, tag="t99")
    assert "(there: shop:t24, shop:t23, shop:t22, shop:t21, shop:t20, shop:t19, shop:t18, shop:t17, shop:t16, " \
           "shop:t15 and 15 more)" in str(err.value.message)


def test_rm_of_a_tag_in_use_names_the_container_and_keeps_it(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conflict = ('Error response from daemon: conflict: unable to remove repository reference "shop:t1" (must force) - '
                "container 0a1b is using its referenced image 1111")
    c = StrictContext({LS_LABEL: ok(LISTED), LS_NAMES: ok(LISTED), "docker image rm shop:t1": fail(1, stderr=conflict)},
                      app=config(shop))
    image.rm(c, tag="t1")
    assert "kept    shop:t1: a container uses it" in capsys.readouterr().err


# -- image.prune ----------------------------------------------------------------------------------


def test_prune_keeps_the_newest_and_the_current_tag_and_shows_what_goes(shop: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tag = shop_tag(shop)
    listing = "\n".join([row("shop", tag, "c" * 12, "2024-01-01 09:00:00", "5 days ago"),
                         row("shop", "t1", "1" * 12, "2024-01-01 10:00:00", "4 days ago"),
                         row("shop", "t2", "2" * 12, "2024-01-02 10:00:00", "3 days ago"),
                         row("shop", "t3", "3" * 12, "2024-01-03 10:00:00", "2 days ago"),
                         row("<none>", "<none>", "4" * 12, "2024-01-04 10:00:00", "1 day ago")])
    removal = f"docker image rm {'4' * 12} shop:t2 shop:t1"
    c = StrictContext({LS_LABEL: ok(listing), removal: ok()}, app=config(shop), repeat=False)
    image.prune(c, keep="1")  # type: ignore[arg-type]  # invoke passes flag values as text
    err = capsys.readouterr().err
    assert c.commands == [LS_LABEL, removal]  # by label only: other images are never candidates
    assert "keep    shop:t3  (2 days ago; one of the 1 newest)" in err
    assert f"keep    shop:{tag}  (5 days ago; current: the tag the inputs give now)" in err
    assert "remove  shop:t1  (4 days ago; older than the 1 newest)" in err
    assert "removed 3 image tag(s)" in err


LS_ALL = "docker image ls --format '{{json .}}'"


def test_prune_finds_the_kits_builds_by_its_notes_and_forgets_the_notes_of_what_is_gone(
        shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The builds carry no label: .kit/built-images names them (another app's notes in the folder are not ours)."""
    tag = shop_tag(shop)
    (shop / ".kit").mkdir(exist_ok=True)
    (shop / ".kit" / "built-images").write_text(
        f"sha256:{'c' * 64} shop\nsha256:{'1' * 64} shop\nsha256:{'4' * 64} shop\nsha256:{'5' * 64} shop\n"
        f"sha256:{'9' * 64} other\n")  # 5…: removed since by hand; 9…: another app's build in this folder
    old = "0123456789ab"
    every = "\n".join([row("shop", tag, "c" * 12, "2024-01-01 09:00:00", "5 days ago"),
                       row("shop", old, "1" * 12, "2024-01-01 10:00:00", "4 days ago"),
                       row("shop", "stable", "1" * 12, "2024-01-01 10:00:00", "4 days ago"),  # tagged by hand
                       row("ruby", "3.3", "c" * 12, "2023-12-01 10:00:00", "5 weeks ago"),  # same ID: a FROM-only stage
                       row("<none>", "<none>", "4" * 12, "2024-01-04 10:00:00", "1 day ago"),  # a set-aside build
                       row("shop", "mine", "7" * 12, "2024-01-02 10:00:00", "3 days ago"),  # not built by the kit
                       row("shop", "9a9a9a9a9a9a", "9" * 12, "2024-01-03 10:00:00", "2 days ago")])  # another app's
    removal = f"docker image rm {'4' * 12} shop:{old}"
    c = StrictContext({LS_LABEL: ok(""), LS_ALL: ok(every), removal: ok()}, app=config(shop), repeat=False)
    image.prune(c, keep="0")  # type: ignore[arg-type]
    assert c.commands == [LS_LABEL, LS_ALL, removal]  # never candidates: shop:stable, ruby:3.3, shop:mine, the other app's
    assert f"keep    shop:{tag}  (5 days ago; current" in capsys.readouterr().err
    assert (shop / ".kit" / "built-images").read_text() == f"sha256:{'c' * 64} shop\nsha256:{'9' * 64} other\n"


def test_a_build_notes_the_image_it_made(shop: Path) -> None:
    tag = shop_tag(shop)
    iidfile = shop / ".kit" / f"build-shop-{os.getpid()}.iid"

    class Docker(StrictContext):
        def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
            if command.startswith("docker build "):
                iidfile.write_text(f"sha256:{'b' * 64}")  # as docker does, once the build is done
            return super().run(command, *args, **kwargs)

    c = Docker({INSPECT.format(ref=f"shop:{tag}"): fail(1, stderr="Error: No such image"),
                f"docker build --tag shop:{tag} --iidfile {iidfile} --file {shop}/Dockerfile {shop}": ok()},
               app=config(shop))
    image.build(c)
    image.build(c)  # built again (say, --no-cache): a second note of the same image is harmless
    assert (shop / ".kit" / "built-images").read_text() == f"sha256:{'b' * 64} shop\n" * 2
    assert core.parse_built((shop / ".kit" / "built-images").read_text()) == {f"sha256:{'b' * 64}": "shop"}


def test_prune_keeps_what_any_environment_runs(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tag = shop_tag(shop)
    listing = "\n".join([row("shop", tag, "c" * 12, "2024-01-05 09:00:00", "1 day ago"),
                         row("shop", "qa-runs-this", "1" * 12, "2024-01-01 10:00:00", "4 days ago"),
                         row("shop", "old", "2" * 12, "2024-01-02 10:00:00", "3 days ago"),
                         row("shop", "newer", "3" * 12, "2024-01-03 10:00:00", "2 days ago")])
    state = shop / ".kit"
    state.mkdir(exist_ok=True)
    deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n" \
                 "      containers: [{name: web, image: 'shop:qa-runs-this'}]\n"
    (state / "rendered-qa.yaml").write_text(deployment)
    (state / "rendered-gone.yaml").write_text(deployment.replace("qa-runs-this", "old"))  # no such environment now
    removal = "docker image rm shop:old"
    c = StrictContext({LS_LABEL: ok(listing), removal: ok()}, app=config(shop, environments={"qa": {}}), repeat=False)
    image.prune(c, keep="1")  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert c.commands == [LS_LABEL, removal]
    assert "keep    shop:qa-runs-this  (4 days ago; deployed" in err


def test_prune_default_keep_comes_from_config_and_dry_runs_nothing(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = "\n".join(row("shop", f"t{i}", str(i) * 12, f"2024-01-0{i} 10:00:00") for i in range(1, 6))
    c = StrictContext({LS_LABEL: ok(listing)}, app=config(shop, image_keep=4), dry=True)
    image.prune(c)
    err = capsys.readouterr().err
    assert "$ docker image rm shop:t1    # --dry: not run" in err
    assert c.commands == [LS_LABEL]


def test_prune_with_nothing_old_removes_nothing(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({LS_LABEL: ok(LISTED)}, app=config(shop))
    image.prune(c)
    assert "nothing to prune: 2 image(s) of shop, all kept" in capsys.readouterr().err
    with pytest.raises(Exit) as err:
        image.prune(c, keep="many")  # type: ignore[arg-type]
    assert "--keep 'many' is not a whole number" in str(err.value.message)


def test_prune_refuses_when_the_current_tag_is_unknown(shop: Path) -> None:
    (shop / "Dockerfile").unlink()
    c = StrictContext({}, app=config(shop))
    with pytest.raises(Exit) as err:
        image.prune(c)
    assert "cannot tell the current tag, so nothing is pruned" in str(err.value.message)
    assert c.commands == []


# -- image.shell ----------------------------------------------------------------------------------


def test_shell_runs_a_throwaway_container_of_the_current_tag(shop: Path) -> None:
    tag = shop_tag(shop)
    run = f"docker run --rm -i --entrypoint sh shop:{tag} -c 'cat /app/hello.txt'"
    c = StrictContext({INSPECT.format(ref=f"shop:{tag}"): ok("sha256:" + "a" * 64), run: ok("hello\n")},
                      app=config(shop), repeat=False)
    image.shell(c, command="cat /app/hello.txt")
    assert c.commands == [INSPECT.format(ref=f"shop:{tag}"), run]


def test_shell_builds_first_when_the_current_tag_is_missing_and_passes_the_exit_status(shop: Path) -> None:
    tag = shop_tag(shop)
    c = StrictContext({INSPECT.format(ref=f"shop:{tag}"): fail(1, stderr="Error: No such image"),
                       re.compile(r"^docker build "): ok(),
                       re.compile(r"^docker run "): fail(3, stderr="sh: nope: not found")}, app=config(shop))
    with pytest.raises(Exit) as err:
        image.shell(c, command="nope")
    assert [cmd.split()[1] for cmd in c.commands] == ["image", "build", "run"]
    assert f"the container of shop:{tag} exited with status 3" in str(err.value.message) and err.value.code == 3


def test_shell_asks_which_image_when_there_are_several(shop: Path) -> None:
    c = StrictContext({}, app=config(shop, images={"shop": {}, "worker": {}}))
    with pytest.raises(Exit) as err:
        image.shell(c)
    assert "say which image: --name one of shop, worker" in str(err.value.message)


# -- image.rollout --------------------------------------------------------------------------------


def ready(*names: str) -> str:
    return json.dumps({"items": [
        {"kind": "Deployment", "metadata": {"name": n, "generation": 2}, "spec": {"replicas": 1},
         "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                    "availableReplicas": 1}} for n in names]})


def test_rollout_sets_the_built_tag_on_each_workload_then_waits(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tag = shop_tag(shop)
    live = json.dumps({"items": [
        workload("Deployment", "shop-web", [("web", "shop:0.0.1")], init=[("migrate", "shop:0.0.1")]),
        workload("Deployment", "shop-worker", [("worker", f"shop:{tag}")]),
        workload("StatefulSet", "shop-redis", [("redis", "redis:7")]),
    ]})
    set_web = f"kubectl --context k8s-local set image deployment/shop-web migrate=shop:{tag} web=shop:{tag}"
    c = StrictContext({INSPECT.format(ref=f"shop:{tag}"): ok("sha256:" + "a" * 64), READ_WORKLOADS: ok(live),
                       set_web: ok(), WAIT: ok(ready("shop-web", "shop-worker"))}, app=config(shop))
    image.rollout(c)
    assert c.commands == [INSPECT.format(ref=f"shop:{tag}"), INSPECT.format(ref=f"shop:{tag}"), READ_WORKLOADS,
                          set_web, WAIT]
    err = capsys.readouterr().err
    assert f"deployment/shop-worker: already runs shop:{tag}" in err
    assert "ready: deployment/shop-web, deployment/shop-worker" in err


def test_rollout_without_build_warns_about_pull_always_and_honours_app_workloads(shop: Path,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    tag = shop_tag(shop)
    live = json.dumps({"items": [workload("Deployment", "shop-web", [("web", "shop")], pull="Always"),
                                 workload("Deployment", "other", [("web", "shop")])]})
    set_web = f"kubectl --context k8s-local --namespace shop-dev set image deployment/shop-web web=shop:{tag}"
    c = StrictContext({READ_WORKLOADS.replace("get", "--namespace shop-dev get"): ok(live), set_web: ok(),
                       WAIT.replace("get", "--namespace shop-dev get"): ok(ready("shop-web"))},
                      app=config(shop, namespace="shop-dev", workloads=["deploy/shop-web", "deploy/gone"]))
    image.rollout(c, no_build=True)
    assert not any(cmd.startswith("docker") for cmd in c.commands) and set_web in c.commands
    err = capsys.readouterr().err
    assert "deployment/shop-web container web has imagePullPolicy: Always" in err
    assert "warning: deployment/gone (app.workloads) is not in the cluster: skipped" in err


def test_rollout_with_nothing_running_our_image_says_apply_first(shop: Path) -> None:
    live = json.dumps({"items": [workload("StatefulSet", "redis", [("redis", "redis:7")])]})
    c = StrictContext({READ_WORKLOADS: ok(live)}, app=config(shop))
    with pytest.raises(Exit) as err:
        image.rollout(c, no_build=True)
    message = str(err.value.message)
    assert "no Deployment, StatefulSet or DaemonSet in the context's namespace runs shop" in message
    assert "apply the manifests first" in message


def test_rollout_refuses_a_context_outside_the_allow_list_before_building(shop: Path) -> None:
    c = StrictContext({}, app=config(shop, cluster={"context": "gke_prod"}))
    with pytest.raises(Exit) as err:
        image.rollout(c)
    assert "kube context 'gke_prod' is not in app.cluster.allowed_contexts" in str(err.value.message)
    assert c.commands == []


# -- bad input, as `inv` users meet it ------------------------------------------------------------


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    return make_app(tmp_path)


ENV = {"INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1", "BASE_IMAGE": "busybox:1"}


def set_image(app: Path, **spec: Any) -> None:
    settings = yaml.safe_load((app / "invoke.yaml").read_text())
    settings["app"]["images"]["hello"].update(spec)
    (app / "invoke.yaml").write_text(yaml.safe_dump(settings))


@pytest.mark.parametrize(("change", "words"), [
    ({"dockerfile": "docker/Dockerfile.prod"}, ["Dockerfile", "docker/Dockerfile.prod not found", "app.images.hello.dockerfile"]),
    ({"context": "services/web"}, ["build context", "services/web does not exist", "app.images.hello.context"]),
])
def test_missing_dockerfile_or_context_names_the_path(hello: Path, change: dict[str, str], words: list[str]) -> None:
    set_image(hello, **change)
    result = inv(hello, "image.build", env=ENV)
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_image_name_is_named_with_the_rule(hello: Path) -> None:
    settings = yaml.safe_load((hello / "invoke.yaml").read_text())
    settings["app"]["images"] = {"Hello_App!": settings["app"]["images"]["hello"]}
    (hello / "invoke.yaml").write_text(yaml.safe_dump(settings))
    result = inv(hello, "image.build", env=ENV)
    assert result.returncode == 2
    assert "invalid image name 'Hello_App!'" in result.stderr and "lowercase letters, digits and separators" in result.stderr


def test_invalid_tag_is_named_with_the_rule(hello: Path) -> None:
    result = inv(hello, "image.rm", "--tag", "v1 final", env=ENV)
    assert result.returncode == 2
    assert "invalid image tag 'v1 final'" in result.stderr and "1-128 characters of letters, digits" in result.stderr


def test_build_arg_used_but_unset_is_named(hello: Path) -> None:
    env = dict(ENV)
    del env["BASE_IMAGE"]
    result = inv(hello, "image.build", env=env)
    assert result.returncode == 2
    assert "build arg(s) BASE_IMAGE used by the Dockerfile but not set" in result.stderr
    assert "app.images.hello.build_args.BASE_IMAGE" in result.stderr and "Traceback" not in result.stderr


def test_every_image_task_is_listed_with_a_short_summary(hello: Path) -> None:
    result = inv(hello, "--list", env=ENV)
    for name in ("build", "load", "tag", "ls", "rm", "prune", "shell", "rollout"):
        assert f"image.{name}" in result.stdout
    for task in image.ns.tasks.values():
        assert len((task.__doc__ or "").strip().splitlines()[0]) < 55, task.name
        probe = copy.copy(task)  # invoke pops help entries while building arguments: keep the task's own
        probe.help = dict(task.help)
        assert all(arg.help for arg in probe.get_arguments()), task.name


def test_a_read_only_digest_cache_is_used_but_never_written(tmp_path: Path) -> None:
    ctx = make_shop(tmp_path / "ctx")
    cache_file = tmp_path / "digests.json"
    later = os.stat(ctx / "Dockerfile").st_mtime_ns + 10 * 10**9
    core.build_inputs(ctx, ctx / "Dockerfile", {}, cache=core.DigestCache(cache_file, now_ns=lambda: later))
    written = cache_file.read_text()
    (ctx / "app" / "new.txt").write_text("new\n")
    readonly = core.DigestCache(cache_file, now_ns=lambda: later + 10 * 10**9, write=False)
    assert core.build_inputs(ctx, ctx / "Dockerfile", {}, cache=readonly).tag == shop_tag(ctx)
    assert readonly.hits == 3 and cache_file.read_text() == written


def test_dry_plans_write_nothing_into_the_app_folder(shop: Path) -> None:
    tag = shop_tag(shop)
    c = StrictContext({INSPECT.format(ref=f"shop:{tag}"): fail(1, stderr="Error: No such image")}, app=config(shop),
                      dry=True)
    image.build(c)
    assert not (shop / ".kit").exists()
    image.build(StrictContext({INSPECT.format(ref=f"shop:{tag}"): ok("sha256:1")}, app=config(shop)))
    assert (shop / ".kit").is_dir()  # a real run keeps its digest cache there


def test_a_context_that_would_send_the_kits_files_is_warned_about(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (shop / ".dockerignore").write_text("*.md\n")
    tag = shop_tag(shop)
    image.tag(StrictContext({}, app=config(shop)))
    out = capsys.readouterr()
    assert out.out.strip() == f"shop:{tag}"  # the kit's files never change the tag
    assert f"warning: image shop: add .kit/ to {shop / '.dockerignore'}" in out.err
