"""Image identity: .dockerignore semantics, content tags, build args, name rules."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
