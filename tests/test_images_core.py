"""Image identity: .dockerignore semantics, content tags, build args, name rules."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from devloop.core import images
from devloop.core.errors import KitError


def ignores(patterns: str, path: str) -> bool:
    return images.ignored(path, images.parse_dockerignore(patterns))


@pytest.mark.parametrize("patterns,path,expected", [
    ("*.md", "README.md", True),
    ("*.md", "docs/README.md", False),          # * does not cross folders
    ("**/*.md", "docs/deep/README.md", True),
    ("**/*.md", "README.md", True),             # ** matches zero folders
    ("node_modules", "node_modules/a/b.js", True),  # a folder pattern covers its content
    ("/tmp", "tmp/x", True),                    # leading slash is the context root
    ("*.log\n!keep.log", "keep.log", False),    # ! re-includes
    ("*.log\n!keep.log", "other.log", True),
    ("!keep.log\n*.log", "keep.log", True),     # last match wins
    ("docs\n!docs/public", "docs/public/x.html", False),
    ("docs\n!docs/public", "docs/private/x.html", True),
    ("# comment\n\n  spaced.txt  ", "spaced.txt", True),
    ("fil?.txt", "file.txt", True),
    ("fil?.txt", "fi/e.txt", False),
    ("[ab].txt", "a.txt", True),
    ("[ab].txt", "c.txt", False),
    ("a/**/z", "a/z", True),
    ("a/**/z", "a/b/c/z", True),
    ("./build", "build/out", True),
])
def test_dockerignore_semantics(patterns: str, path: str, expected: bool) -> None:
    assert ignores(patterns, path) is expected


def make_context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "node_modules" / "pkg").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (ctx / "app" / "main.sh").write_text("echo hi\n")
    (ctx / "node_modules" / "pkg" / "index.js").write_text("x\n")
    (ctx / "notes.md").write_text("notes\n")
    (ctx / ".dockerignore").write_text("node_modules\n*.md\n")
    return ctx


def tag_of(ctx: Path, args: dict[str, str] | None = None, target: str = "") -> str:
    return images.build_inputs(ctx, ctx / "Dockerfile", args or {}, target).tag


def test_context_files_respect_dockerignore_and_skip_ignored_folders(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    assert images.build_inputs(ctx, ctx / "Dockerfile", {}).files == (".dockerignore", "Dockerfile", "app/main.sh")


def test_tag_is_stable_and_changes_with_every_input(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    base = tag_of(ctx)
    assert tag_of(ctx) == base and len(base) == images.TAG_LENGTH
    assert tag_of(ctx, {"A": "1"}) != base
    assert tag_of(ctx, target="prod") != base
    (ctx / "app" / "main.sh").write_text("echo changed\n")
    changed = tag_of(ctx)
    assert changed != base
    (ctx / "app" / "main.sh").chmod(0o755)
    assert tag_of(ctx) != changed  # the executable bit reaches the image too


def test_ignored_changes_keep_the_tag(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    base = tag_of(ctx)
    (ctx / "notes.md").write_text("edited\n")
    (ctx / "node_modules" / "pkg" / "index.js").write_text("edited\n")
    (ctx / "node_modules" / "new.js").write_text("new\n")
    assert tag_of(ctx) == base


def test_dockerfile_outside_context_still_counts(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    other = tmp_path / "Dockerfile.prod"
    other.write_text("FROM scratch\n")
    first = images.build_inputs(ctx, other, {}).tag
    other.write_text("FROM scratch\nCOPY app /app\n")
    assert images.build_inputs(ctx, other, {}).tag != first


def test_missing_context_and_dockerfile_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="build context .*nope"):
        images.build_inputs(tmp_path / "nope", tmp_path / "Dockerfile", {})
    with pytest.raises(KitError, match="Dockerfile .*Dockerfile not found"):
        images.build_inputs(tmp_path, tmp_path / "Dockerfile", {})


def test_build_args_from_config_then_environment_and_unset_ones_named() -> None:
    dockerfile = "ARG BASE_IMAGE\nARG RUBY=3.2\nARG UNUSED\nFROM ${BASE_IMAGE}\nRUN echo $RUBY\n"
    assert images.resolve_build_args(dockerfile, {"BASE_IMAGE": ""}, {"BASE_IMAGE": "busybox:1"}, "web") == \
        {"BASE_IMAGE": "busybox:1"}
    assert images.resolve_build_args(dockerfile, {"BASE_IMAGE": "x:1"}, {"BASE_IMAGE": "env"}, "web") == {"BASE_IMAGE": "x:1"}
    with pytest.raises(KitError) as err:
        images.resolve_build_args(dockerfile, {"BASE_IMAGE": ""}, {}, "web")
    assert "BASE_IMAGE" in err.value.message and "UNUSED" not in err.value.message
    assert "app.images.web.build_args.BASE_IMAGE" in err.value.hint


@pytest.mark.parametrize("name", ["demoapp", "team/demoapp", "registry.local:5000/team/demo-app", "a__b", "a.b_c"])
def test_valid_names(name: str) -> None:
    images.check_name(name)


@pytest.mark.parametrize("name", ["DemoApp", "demo app", "-demo", "demo:", "demo//x", "demo_"])
def test_invalid_names_are_named_with_the_rule(name: str) -> None:
    with pytest.raises(KitError) as err:
        images.check_name(name)
    assert repr(name) in err.value.message and "lowercase" in err.value.hint


@pytest.mark.parametrize("tag,ok", [("abc123", True), ("v1.2-rc_1", True), (".hidden", False), ("a" * 129, False),
                                    ("with space", False)])
def test_tag_rule(tag: str, ok: bool) -> None:
    if ok:
        images.check_tag(tag)
    else:
        with pytest.raises(KitError, match="invalid image tag"):
            images.check_tag(tag)


def test_a_latin1_dockerignore_leaves_out_what_docker_leaves_out(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / ".dockerignore").write_bytes(b"# caf\xe9 notes\nnotes.md\nnode_modules\ncaf\xe9.txt\n")
    (ctx / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"left out\n")
    (ctx / os.fsdecode(b"caf\xe8.txt")).write_bytes(b"sent\n")
    files = images.build_inputs(ctx, ctx / "Dockerfile", {}).files
    assert os.fsdecode(b"caf\xe8.txt") in files and os.fsdecode(b"caf\xe9.txt") not in files


def test_a_file_name_that_is_not_utf8_is_hashed_by_its_bytes(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    odd = ctx / "app" / os.fsdecode(b"\xff-data.bin")
    odd.write_bytes(b"one\n")
    (ctx / "app" / "link").symlink_to(os.fsdecode(b"\xff-data.bin"))
    first = tag_of(ctx)
    odd.write_bytes(b"two\n")
    assert tag_of(ctx) != first


def test_a_latin1_dockerfile_gives_its_args(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_bytes(b"# caf\xe9\nARG BASE_IMAGE\nARG GREETING=caf\xe9\nFROM ${BASE_IMAGE}\n")
    assert images.dockerfile_args(images.read_dockerfile(dockerfile)) == {
        "BASE_IMAGE": None, "GREETING": os.fsdecode(b"caf\xe9")}


# -- mutation gaps (#13 item 27): each test fails on a code change that gives a wrong result --------------


@pytest.mark.parametrize("patterns,path,expected", [
    ("[!a].txt", "b.txt", False),  # Docker (Go regexp) reads ! literally inside brackets: not a negation
    ("[!a].txt", "a.txt", True),
    ("[!a].txt", "!.txt", True),
    ("[^a].txt", "b.txt", True),  # ^ is the negation
    ("[^a].txt", "a.txt", False),
    ("a/**/z", "a/xz", False),
    ("a/**/z", "a/b/xz", False),
    ("a/**/z", "ab/z", False),
    ("**", "anything/at/all", True),
])
def test_dockerignore_brackets_and_double_stars(patterns: str, path: str, expected: bool) -> None:
    assert ignores(patterns, path) is expected


def test_a_re_included_file_is_a_build_input(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / "docs").mkdir()
    (ctx / "docs" / "keep.txt").write_text("kept\n")
    (ctx / "docs" / "drop.txt").write_text("dropped\n")
    (ctx / ".dockerignore").write_text("node_modules\n*.md\ndocs\n!docs/keep.txt\n")
    assert "docs/keep.txt" in images.build_inputs(ctx, ctx / "Dockerfile", {}).files
    base = tag_of(ctx)
    (ctx / "docs" / "drop.txt").write_text("edited\n")
    assert tag_of(ctx) == base
    (ctx / "docs" / "keep.txt").write_text("edited\n")
    assert tag_of(ctx) != base  # else a stale image runs


def test_symlinks_are_hashed_by_their_target_path(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    (ctx / "app" / "current").symlink_to("main.sh")
    (ctx / "app" / "dir-link").symlink_to(ctx / "node_modules", target_is_directory=True)
    inputs = images.build_inputs(ctx, ctx / "Dockerfile", {})
    assert {"app/current", "app/dir-link"} <= set(inputs.files)
    (ctx / "app" / "other.sh").write_text("echo hi\n")  # the same content as main.sh
    base = tag_of(ctx)
    (ctx / "app" / "current").unlink()
    (ctx / "app" / "current").symlink_to("other.sh")
    assert tag_of(ctx) != base


def test_extra_inputs_change_the_tag(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    one = images.build_inputs(ctx, ctx / "Dockerfile", {}, extra=["platform=linux/amd64"]).tag
    assert one != tag_of(ctx)
    assert one != images.build_inputs(ctx, ctx / "Dockerfile", {}, extra=["platform=linux/arm64"]).tag
    assert one == images.build_inputs(ctx, ctx / "Dockerfile", {}, extra=["platform=linux/amd64"]).tag


def later(seconds: float) -> int:
    """A clock ``seconds`` from now: files written now are then older than the racy window."""
    return time.time_ns() + int(seconds * 1e9)


def test_the_digest_cache_reads_no_unchanged_file_and_notices_changes(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    path = tmp_path / "digests.json"
    first = images.DigestCache(path, now_ns=lambda: later(100))  # long after every file was written
    base = images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=first).tag
    assert first.hits == 0 and path.is_file()
    again = images.DigestCache(path, now_ns=lambda: later(100))
    assert images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=again).tag == base
    assert again.hits == 3  # .dockerignore, Dockerfile, app/main.sh: none read again
    (ctx / "app" / "main.sh").write_text("echo changed, longer\n")
    changed = images.DigestCache(path, now_ns=lambda: later(100))
    assert images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=changed).tag != base and changed.hits == 2


def test_the_digest_cache_does_not_remember_racy_files(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    now = (ctx / "app" / "main.sh").stat().st_mtime_ns  # as if hashed in the same tick as the write
    cache = images.DigestCache(tmp_path / "digests.json", now_ns=lambda: now)
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=cache)
    assert str(ctx / "app" / "main.sh") not in cache.entries
    reread = images.DigestCache(tmp_path / "digests.json", now_ns=lambda: now)
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=reread)
    assert reread.hits == 0


def test_the_digest_cache_forgets_files_no_longer_seen_and_survives_garbage(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    path = tmp_path / "digests.json"
    cache = images.DigestCache(path, now_ns=lambda: later(100))
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=cache)
    (ctx / "notes.md").unlink()
    (ctx / "app" / "main.sh").unlink()
    cache = images.DigestCache(path, now_ns=lambda: later(100))
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=cache)
    assert str(ctx / "app" / "main.sh") not in images.DigestCache(path).entries
    path.write_text("not json")
    assert images.DigestCache(path).entries == {}
    unwritten = images.DigestCache(path, now_ns=lambda: later(100), write=False)
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=unwritten)
    assert path.read_text() == "not json"


def test_an_image_name_may_have_255_characters() -> None:
    images.check_name("a" * 255)
    with pytest.raises(KitError, match="invalid image name"):
        images.check_name("a" * 256)


@pytest.mark.parametrize("patterns,path,expected", [
    ("a\\*", "a*", True),  # an escaped star is a star
    ("a\\*", "ab", False),
    ("abc\\", "abc\\", True),  # a trailing backslash is itself
    ("#notes.txt", "#notes.txt", False),  # a comment, not a pattern
])
def test_dockerignore_escapes_and_comments(patterns: str, path: str, expected: bool) -> None:
    assert ignores(patterns, path) is expected


def test_the_kits_own_folder_never_changes_the_tag(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    base = tag_of(ctx)
    (ctx / ".kit").mkdir()
    (ctx / ".kit" / "rendered-dev.yaml").write_text("x\n")
    assert tag_of(ctx) == base and ".kit/rendered-dev.yaml" not in images.build_inputs(ctx, ctx / "Dockerfile", {}).files


def test_a_file_is_remembered_only_once_older_than_the_racy_window(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    info = (ctx / "app" / "main.sh").stat()
    written = max(info.st_mtime_ns, info.st_ctime_ns)
    full = str(ctx / "app" / "main.sh")
    at_edge = images.DigestCache(None, now_ns=lambda: written + images.DigestCache.RACY_NS)
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=at_edge)
    assert full not in at_edge.entries
    past = images.DigestCache(None, now_ns=lambda: written + images.DigestCache.RACY_NS + 1)
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=past)
    assert full in past.entries


def test_the_digest_cache_is_written_only_when_it_changed(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    path = tmp_path / "digests.json"
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=images.DigestCache(path, now_ns=lambda: later(100)))
    unchanged = images.DigestCache(path, now_ns=lambda: later(100))
    path.unlink()
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=unchanged)
    assert not path.exists()  # every digest was a hit: nothing to write


def test_a_racy_rewrite_drops_the_remembered_digest_from_the_file(tmp_path: Path) -> None:
    ctx = make_context(tmp_path)
    path = tmp_path / "digests.json"
    full = str(ctx / "app" / "main.sh")
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=images.DigestCache(path, now_ns=lambda: later(100)))
    assert full in images.DigestCache(path).entries
    (ctx / "app" / "main.sh").write_text("echo rewritten\n")
    images.build_inputs(ctx, ctx / "Dockerfile", {}, cache=images.DigestCache(path, now_ns=time.time_ns))
    assert full not in images.DigestCache(path).entries


# -- mutation gaps, part 2: the .dockerignore root, file modes, and reading what Docker/minikube/the cluster say --


def test_lines_that_name_the_context_root_select_nothing(tmp_path: Path) -> None:
    """Docker never leaves out the context root, so ``.``, ``/`` or a lone ``!`` is no pattern: no file is left
    out, and no ``!`` line is recorded (which would make every ignored folder be walked)."""
    assert images.parse_dockerignore(".\n/\n./\n!\n!.\n!/\n") == []
    ctx = make_context(tmp_path)
    (ctx / ".dockerignore").write_text(".\n/\n")
    assert "notes.md" in images.build_inputs(ctx, ctx / "Dockerfile", {}).files


def test_every_permission_bit_is_a_build_input(tmp_path: Path) -> None:
    """COPY keeps a file's mode, so a file made private (644 -> 600) gives another image and another tag."""
    ctx = make_context(tmp_path)
    script = ctx / "app" / "main.sh"
    script.chmod(0o644)
    readable = tag_of(ctx)
    script.chmod(0o600)
    private = tag_of(ctx)
    assert private != readable
    script.chmod(0o700)
    assert tag_of(ctx) not in (readable, private)
    script.chmod(0o644)
    assert tag_of(ctx) == readable


LEGACY_NOTICE = """DEPRECATED: The legacy builder is deprecated and will be removed in a future release.
            Install the buildx component to build images with BuildKit:
            https://docs.docker.com/go/buildx/
"""


def test_a_failed_legacy_build_names_its_last_step_without_the_cli_notice() -> None:
    output = LEGACY_NOTICE + "Sending build context to Docker daemon  3.072kB\n\nStep 1/3 : FROM busybox:1\n" \
        " ---> 3f57d9401f8d\nStep 2/3 : RUN false\n ---> Running in 1b2c\n\n" \
        "The command '/bin/sh -c false' returned a non-zero code: 1\n"
    step, tail = images.build_failure(output)
    assert step == "Step 2/3 : RUN false"
    # only what the failing step said: the steps before it were shown as the build ran, and are not the cause
    assert tail.splitlines() == ["The command '/bin/sh -c false' returned a non-zero code: 1"]


def test_a_failed_buildkit_build_names_its_step_and_keeps_only_the_tail_of_what_it_said() -> None:
    lines = [f"#{n} [{n}/20] RUN step {n}" for n in range(1, 21)] + [f"#20 0.{n} make: line {n}" for n in range(30)] \
        + ["ERROR: failed to solve: exit code: 1"]
    step, tail = images.build_failure("\n".join(lines), lines=3)
    assert step == "#20 [20/20] RUN step 20"
    assert tail.splitlines() == ["#20 0.28 make: line 28", "#20 0.29 make: line 29", "ERROR: failed to solve: exit code: 1"]


def test_a_build_that_failed_before_any_step_has_no_step() -> None:
    assert images.build_failure("unable to prepare context: path \"nope\" not found\n") == \
        ("", 'unable to prepare context: path "nope" not found')
    assert images.build_failure("") == ("", "")


IMAGE_LS = "\n".join([
    json.dumps({"Containers": "N/A", "CreatedAt": "2024-11-27 15:24:00 +0000 UTC", "CreatedSince": "2 hours ago",
                "ID": "1111aaaa2222", "Repository": "demoapp", "Size": "4.26MB", "Tag": "3f2a9c1b0d4e"}),
    "WARNING: some daemon notice",
    json.dumps({"CreatedAt": "2024-11-27 17:24:00 +0100 CET", "CreatedSince": "3 hours ago", "ID": "3333bbbb4444",
                "Repository": "<none>", "Size": "4.26MB", "Tag": "<none>"}),
    "{not json",
    json.dumps({"ID": "5555cccc6666", "Repository": "demoapp", "Tag": "old", "CreatedAt": "yesterday"}),
]) + "\n"


def test_docker_image_ls_json_lines_are_read_and_other_lines_skipped() -> None:
    listed = images.parse_image_list(IMAGE_LS)
    assert [(i.repository, i.tag, i.id, i.since, i.size) for i in listed] == [
        ("demoapp", "3f2a9c1b0d4e", "1111aaaa2222", "2 hours ago", "4.26MB"),
        ("<none>", "<none>", "3333bbbb4444", "3 hours ago", "4.26MB"),
        ("demoapp", "old", "5555cccc6666", "", ""),
    ]
    first, untagged, odd = listed
    assert first.created == datetime(2024, 11, 27, 15, 24, tzinfo=timezone.utc)
    assert untagged.created == datetime(2024, 11, 27, 16, 24, tzinfo=timezone.utc)  # the offset counts, not the zone name
    assert odd.created == images.EPOCH  # unreadable: oldest of all
    assert images.parse_image_list("") == []


@pytest.mark.parametrize("repository,tag,dangling,ref", [
    ("demoapp", "3f2a", False, "demoapp:3f2a"),
    ("<none>", "<none>", True, "sha256:abc"),
    ("demoapp", "<none>", True, "sha256:abc"),  # its tag moved to a newer build
    ("<none>", "3f2a", True, "sha256:abc"),
])
def test_an_untagged_image_is_removed_by_its_id(repository: str, tag: str, dangling: bool, ref: str) -> None:
    image = images.LocalImage(repository, tag, "sha256:abc", images.EPOCH)
    assert image.dangling is dangling and image.ref == ref


def at(hour: int) -> datetime:
    return datetime(2024, 11, 27, hour, tzinfo=timezone.utc)


def local(ref: str, hour: int) -> images.LocalImage:
    repository, tag = ref.rsplit(":", 1)
    return images.LocalImage(repository, tag, f"id-{ref}", at(hour))


def decided(plan: images.PrunePlan) -> tuple[list[str], list[str]]:
    return [i.ref for i, _ in plan.keep], [i.ref for i, _ in plan.remove]


def test_prune_keeps_the_newest_per_repository_and_removes_the_rest() -> None:
    listed = [local("web:a", 1), local("web:b", 2), local("web:c", 3), local("web:d", 4),
              local("worker:x", 1), local("worker:y", 2), local("worker:y", 2)]
    plan = images.prune_plan(listed, 2, current=[])
    assert decided(plan) == (["web:d", "web:c", "worker:y", "worker:x"], ["web:b", "web:a"])
    assert [why for _, why in plan.remove] == ["older than the 2 newest"] * 2


def test_prune_always_keeps_the_current_and_the_deployed_tags() -> None:
    listed = [local("web:old", 1), local("web:deployed", 2), local("web:new1", 3), local("web:new2", 4),
              local("web:current", 5)]
    plan = images.prune_plan(listed, 1, current={"web:current"}, deployed=["web:deployed", "web:gone"])
    assert decided(plan) == (["web:current", "web:new2", "web:deployed"], ["web:new1", "web:old"])
    assert [why.split(":")[0] for _, why in plan.keep] == ["current", "one of the 1 newest", "deployed"]


def test_prune_with_keep_0_removes_all_but_current_and_untagged_always_go() -> None:
    untagged = images.LocalImage("<none>", "<none>", "sha256:dead", at(9))
    listed = [local("web:a", 1), local("web:b", 2), untagged]
    assert decided(images.prune_plan(listed, 0, current=["web:a"])) == (["web:a"], ["sha256:dead", "web:b"])
    assert decided(images.prune_plan([untagged], 5, current=["sha256:dead"]))[1] == ["sha256:dead"]
    with pytest.raises(KitError, match="--keep -1 must be 0 or more"):
        images.prune_plan(listed, -1, current=[])


def test_refs_docker_would_not_remove_because_a_container_uses_them() -> None:
    stderr = ('Error response from daemon: conflict: unable to remove repository reference "web:a" (must force) - '
              "container 1b2c is using its referenced image 3f2a\n"
              "Error response from daemon: conflict: unable to delete 3f2a9c1b0d4e (cannot be forced) - image is "
              "being used by running container 1b2c\n"
              "Error response from daemon: No such image: web:gone\n")
    assert images.removal_conflicts(stderr) == ["web:a", "3f2a9c1b0d4e"]


@pytest.mark.parametrize("ref,qualified", [
    ("hello", "docker.io/library/hello:latest"),
    ("hello:1", "docker.io/library/hello:1"),
    ("team/hello:1", "docker.io/team/hello:1"),
    ("registry.local/hello:1", "registry.local/hello:1"),
    ("registry.local:5000/team/hello", "registry.local:5000/team/hello:latest"),
    ("localhost:5000/hello:1", "localhost:5000/hello:1"),
    ("localhost/hello:1", "localhost/hello:1"),
    ("docker.io/library/hello:1", "docker.io/library/hello:1"),
])
def test_refs_are_qualified_the_way_containerd_lists_them(ref: str, qualified: str) -> None:
    assert images.qualified_ref(ref) == qualified


MINIKUBE_LS = """[
 {"id":"sha256:9a7c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b","repoDigests":[],
  "repoTags":["docker.io/library/demoapp:3f2a9c1b0d4e","docker.io/library/demoapp:latest"],"size":"4260000"},
 {"id":"5b6c7d8e9f0a1b2c","repoDigests":[],"repoTags":["registry.k8s.io/pause:3.9"],"size":"1"},
 {"id":"sha256:0000","repoDigests":["x@sha256:1"],"repoTags":null,"size":"1"}
]"""
FULL_ID = "9a7c1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def test_the_node_listing_maps_qualified_refs_to_image_ids() -> None:
    assert images.parse_node_images(MINIKUBE_LS) == {
        "docker.io/library/demoapp:3f2a9c1b0d4e": FULL_ID,
        "docker.io/library/demoapp:latest": FULL_ID,
        "registry.k8s.io/pause:3.9": "5b6c7d8e9f0a1b2c",
    }
    for broken in ("", "not json", '{"error": "no node"}', "null"):
        assert images.parse_node_images(broken) == {}


@pytest.mark.parametrize("ref,image_id,state", [
    ("demoapp:3f2a9c1b0d4e", "sha256:" + FULL_ID, "same"),
    ("demoapp:3f2a9c1b0d4e", FULL_ID[:12], "same"),  # the short ID `docker image ls` prints
    ("demoapp:3f2a9c1b0d4e", FULL_ID[:11], "different"),  # too short to tell
    ("demoapp:3f2a9c1b0d4e", "sha256:" + "1" + FULL_ID[1:], "different"),
    ("demoapp:3f2a9c1b0d4e", "", "different"),
    ("demoapp:other", "sha256:" + FULL_ID, "missing"),
    ("registry.k8s.io/pause:3.9", "5b6c7d8e9f0a1b2c", "same"),
])
def test_the_node_has_our_image_only_with_the_same_image_id(ref: str, image_id: str, state: str) -> None:
    assert images.node_state(images.parse_node_images(MINIKUBE_LS), ref, image_id) == state


def workload(kind: str, name: str, *containers: dict[str, str], init: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name},
            "spec": {"template": {"spec": {"initContainers": list(init), "containers": list(containers)}}}}


def test_set_image_points_every_rollable_workload_at_the_built_reference() -> None:
    live = [
        workload("Deployment", "web", {"name": "app", "image": "demoapp:old"}, {"name": "proxy", "image": "nginx:1"},
                 init=({"name": "migrate", "image": "demoapp:old"},)),
        workload("StatefulSet", "db-tools", {"name": "tools", "image": "demoapp:3f2a"}),
        workload("DaemonSet", "agent", {"name": "agent", "image": "demoapp", "imagePullPolicy": "Always"}),
        workload("Job", "once", {"name": "job", "image": "demoapp:old"}),
        workload("Deployment", "other", {"name": "other", "image": "nginx:1"}),
    ]
    plans, missing = images.set_image_plan(live, {"demoapp": "demoapp:3f2a"})
    assert [(p.workload, p.changes, p.current, p.pull_always) for p in plans] == [
        ("deployment/web", {"migrate": "demoapp:3f2a", "app": "demoapp:3f2a"}, [], []),
        ("statefulset/db-tools", {}, ["tools"], []),
        ("daemonset/agent", {"agent": "demoapp:3f2a"}, [], ["agent"]),
    ]
    assert plans[0].argv() == ["set", "image", "deployment/web", "migrate=demoapp:3f2a", "app=demoapp:3f2a"]
    assert missing == []


def test_set_image_follows_a_registry_reference_and_is_limited_to_the_wanted_workloads() -> None:
    built = {"demoapp": "registry.local:5000/demoapp:3f2a"}
    live = [workload("Deployment", "web", {"name": "app", "image": "registry.local:5000/demoapp:old"}),
            workload("Deployment", "admin", {"name": "app", "image": "demoapp:old"})]
    plans, missing = images.set_image_plan(live, built, wanted=["deployment/web", "deployment/gone"])
    assert [(p.workload, p.changes) for p in plans] == [("deployment/web", {"app": "registry.local:5000/demoapp:3f2a"})]
    assert missing == ["deployment/gone"]


def test_set_image_skips_objects_without_a_pod_spec_or_image() -> None:
    live: list[dict[str, Any]] = [{"kind": "Deployment", "metadata": {"name": "empty"}, "spec": None},
                                  {"kind": "Deployment", "metadata": {"name": "bare"}, "spec": {"template": {}}},
                                  workload("Deployment", "noimage", {"name": "app"})]
    assert images.set_image_plan(live, {"demoapp": "demoapp:3f2a"}) == ([], [])


def test_the_deployed_reference_is_the_first_container_naming_the_repository() -> None:
    documents: list[dict[str, Any]] = [
        {"kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"image": "demoapp:nope"}},
        workload("Deployment", "web", {"name": "sidecar"}, {"name": "app", "image": "demoapp:3f2a"},
                 init=({"name": "migrate", "image": "registry.local:5000/demoapp:3f2a"},)),
        workload("Deployment", "worker", {"name": "worker", "image": "demoapp:older"}, {"name": "x", "image": ""}),
    ]
    assert images.deployed_refs(documents) == {"registry.local:5000/demoapp": "registry.local:5000/demoapp:3f2a",
                                               "demoapp": "demoapp:3f2a"}


def test_the_notes_of_builds_read_back_as_written_and_skip_what_is_not_a_note() -> None:
    notes = {"sha256:" + "a" * 64: "shop", "sha256:" + "b" * 64: "other"}
    text = images.format_built(notes) + "garbage\nsha256:" + "c" * 64 + "\n\n"  # a line cut short: no app
    assert images.parse_built(text) == notes
    listed = [images.LocalImage("shop", "0123456789ab", "a" * 12, images.EPOCH),
              images.LocalImage("<none>", "<none>", "b" * 12, images.EPOCH),
              images.LocalImage("<none>", "<none>", "d" * 12, images.EPOCH),
              images.LocalImage("shop", "latest", "a" * 12, images.EPOCH),  # a tag the kit does not give
              images.LocalImage("ruby", "3.3", "a" * 12, images.EPOCH)]  # not a name of the project's images
    assert images.built_here(listed, notes, {"shop"}) == listed[:2]
    assert images.still_there(list(notes), listed[1:3]) == ["sha256:" + "b" * 64]
