"""Image identity: .dockerignore semantics, content tags, build args, name rules."""

from __future__ import annotations

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
