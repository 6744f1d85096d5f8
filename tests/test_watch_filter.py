"""What a changed path asks for (rebuild which image, re-apply, nothing) and which folders get watched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import make_app

from devloop.core.watchfilter import Change, Watch, WatchFilter, editor_temp, plan_watches


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def hello_filter(root: Path, watch_paths: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> WatchFilter:
    return WatchFilter(root, [("hello", root, root / "Dockerfile")], [root / "k8s"], ignore=ignore,
                       watch_paths=[root / p for p in watch_paths])


def kind(change: Change | None) -> str:
    if change is None:
        return "ignored"
    if change.images and change.manifest:
        return "both"
    return "image" if change.images else "manifest"


@pytest.mark.parametrize(("path", "expected"), [
    ("app/www/index.html", "image"),
    ("app/web.sh", "image"),
    ("app/new/folder/file.txt", "image"),
    ("Dockerfile", "image"),
    (".dockerignore", "image"),  # what the context holds changes
    ("k8s/web-deploy.yaml", "manifest"),  # k8s/ is left out of the image by .dockerignore
    ("k8s/extra.yml", "manifest"),
    ("k8s/notes.txt", "ignored"),
    ("k8s/.hidden.yaml", "ignored"),
    ("README.md", "ignored"),  # **/*.md in .dockerignore
    ("app/www/notes.md", "ignored"),
    ("invoke.yaml", "ignored"),
    (".env", "ignored"),
    (".kit/rendered-dev.yaml", "ignored"),  # the kit's own output
    (".git/index", "ignored"),
    ("app/.git/HEAD", "ignored"),
    ("app/__pycache__/x.cpython-311.pyc", "ignored"),
    ("app/www/.index.html.swp", "ignored"),  # vim
    ("app/www/index.html~", "ignored"),
    ("app/www/4913", "ignored"),
    ("app/www/.#index.html", "ignored"),  # emacs
    ("app/www/#index.html#", "ignored"),
    ("app/www/index.html___jb_tmp___", "ignored"),  # JetBrains
    ("app/www/.goutputstream-XYZ12", "ignored"),  # GNOME
    ("app/.DS_Store", "ignored"),
])
def test_hello_paths(hello: Path, path: str, expected: str) -> None:
    assert kind(hello_filter(hello).classify(str(hello / path))) == expected


def test_a_change_names_its_path_relative_to_the_app(hello: Path) -> None:
    change = hello_filter(hello).classify(str(hello / "app" / "web.sh"))
    assert change == Change("app/web.sh", frozenset({"hello"}), False)


@pytest.mark.parametrize(("path", "expected"), [
    ("app/web.sh", "image"),
    ("Dockerfile", "image"),
    ("k8s/web-deploy.yaml", "manifest"),
    (".dockerignore", "image"),  # outside app.watch.paths, but it decides what the build reads
    ("docs/guide.txt", "ignored"),
])
def test_watch_paths_limit_what_counts(hello: Path, path: str, expected: str) -> None:
    (hello / "docs").mkdir()
    assert kind(hello_filter(hello, ("app", "Dockerfile", "k8s")).classify(str(hello / path))) == expected


def test_with_watch_paths_a_changed_dockerignore_still_applies_from_that_event_on(hello: Path) -> None:
    (hello / ".dockerignore").write_text("")
    f = hello_filter(hello, ("app", "k8s"))
    assert str(hello / ".dockerignore") in f.targets() and str(hello / "Dockerfile") in f.targets()
    assert kind(f.classify(str(hello / "app" / "dev.log"))) == "image"
    (hello / ".dockerignore").write_text("app/dev.log\n")
    assert kind(f.classify(str(hello / ".dockerignore"))) == "image"
    assert f.classify(str(hello / "app" / "dev.log")) is None  # a log written all the time no longer counts


def test_app_watch_ignore_uses_dockerignore_patterns_from_the_root(hello: Path) -> None:
    f = hello_filter(hello, ignore=("app/tmp/", "**/*.log"))
    assert f.classify(str(hello / "app" / "tmp" / "cache.bin")) is None
    assert f.classify(str(hello / "app" / "deep" / "x.log")) is None
    assert f.classify(str(hello / "app" / "web.sh")) is not None


def test_an_exception_line_re_includes_a_file(hello: Path) -> None:
    (hello / ".dockerignore").write_text("docs/\n!docs/keep.txt\n")
    f = hello_filter(hello)
    assert f.classify(str(hello / "docs" / "drop.txt")) is None
    assert kind(f.classify(str(hello / "docs" / "keep.txt"))) == "image"


def test_a_changed_dockerignore_applies_from_that_event_on(hello: Path) -> None:
    f = hello_filter(hello)
    assert kind(f.classify(str(hello / "app" / "www" / "index.html"))) == "image"
    (hello / ".dockerignore").write_text("app/www/\n")
    assert kind(f.classify(str(hello / ".dockerignore"))) == "image"
    assert f.classify(str(hello / "app" / "www" / "index.html")) is None


def test_only_the_image_whose_context_changed_rebuilds(tmp_path: Path) -> None:
    for name in ("web", "worker", "k8s"):
        (tmp_path / name).mkdir()
    f = WatchFilter(tmp_path, [("web", tmp_path / "web", tmp_path / "web" / "Dockerfile"),
                               ("worker", tmp_path / "worker", tmp_path / "docker" / "worker.Dockerfile")],
                    [tmp_path / "k8s"])
    web = f.classify(str(tmp_path / "web" / "app.rb"))
    worker_dockerfile = f.classify(str(tmp_path / "docker" / "worker.Dockerfile"))
    manifest = f.classify(str(tmp_path / "k8s" / "a.yaml"))
    assert web is not None and web.images == {"web"}
    assert worker_dockerfile is not None and worker_dockerfile.images == {"worker"}
    assert f.classify(str(tmp_path / "docker" / "other.txt")) is None
    plan = f.plan([web, manifest, None])
    assert plan.images == {"web"} and plan.manifests and plan.build
    only_manifests = f.plan([manifest])
    assert not only_manifests.build and only_manifests.manifests and only_manifests.anything
    assert not f.plan([]).anything


def test_a_kustomized_manifest_folder_counts_every_file(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources: []\n")
    f = WatchFilter(tmp_path, [], [tmp_path / "k8s"])
    assert kind(f.classify(str(tmp_path / "k8s" / "app.properties"))) == "manifest"


def test_a_manifest_folder_inside_the_context_and_not_dockerignored_is_both(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    f = WatchFilter(tmp_path, [("app", tmp_path, tmp_path / "Dockerfile")], [tmp_path / "k8s"])
    assert kind(f.classify(str(tmp_path / "k8s" / "a.yaml"))) == "both"


@pytest.mark.parametrize(("name", "temp"), [("x.swp", True), (".x.swx", True), ("x~", True), ("4913", True),
                                            (".#x", True), ("#x#", True), ("x.rb", False), ("swp.rb", False)])
def test_editor_temp_files(name: str, temp: bool) -> None:
    assert editor_temp(name) is temp


# -- what gets watched -----------------------------------------------------------------------------


def tree(root: Path, *files: str) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_targets_drop_paths_inside_another(hello: Path) -> None:
    assert hello_filter(hello).targets() == [str(hello)]  # context "." holds the Dockerfile and k8s/
    assert hello_filter(hello, ("app", "Dockerfile", "k8s")).targets() == [
        str(hello / ".dockerignore"), str(hello / "Dockerfile"), str(hello / "app"), str(hello / "k8s")]


def test_ignored_trees_are_not_watched(tmp_path: Path) -> None:
    tree(tmp_path, "app/models/user.rb", "app/views/x.erb", "node_modules/a/b/index.js", "log/dev.log",
         "tmp/cache/x", ".git/HEAD", "Dockerfile", "k8s/web.yaml")
    (tmp_path / ".dockerignore").write_text("node_modules/\nlog/\ntmp/\nk8s/\n")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [tmp_path / "k8s"])
    watches = plan_watches(f.targets(), f.prunable)
    assert set(watches) == {Watch(str(tmp_path), False), Watch(str(tmp_path / "app"), True),
                            Watch(str(tmp_path / "k8s"), True)}


def test_nested_ignored_folders_split_only_the_folders_above_them(tmp_path: Path) -> None:
    tree(tmp_path, "a/b/node_modules/x.js", "a/b/src/y.js", "a/c/z.js", "d/w.js")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [], ignore=("**/node_modules",))
    watches = plan_watches([str(tmp_path)], f.prunable)
    assert set(watches) == {Watch(str(tmp_path), False), Watch(str(tmp_path / "a"), False),
                            Watch(str(tmp_path / "a" / "b"), False), Watch(str(tmp_path / "a" / "b" / "src"), True),
                            Watch(str(tmp_path / "a" / "c"), True), Watch(str(tmp_path / "d"), True)}


def test_a_tree_without_ignored_folders_is_one_recursive_watch(tmp_path: Path) -> None:
    tree(tmp_path, "a/b/c.txt", "d/e.txt")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [])
    assert plan_watches([str(tmp_path)], f.prunable) == [Watch(str(tmp_path), True)]


def test_too_many_watches_fall_back_to_one_recursive_watch(tmp_path: Path) -> None:
    tree(tmp_path, *[f"p{i}/node_modules/x.js" for i in range(10)], *[f"p{i}/src/y.js" for i in range(10)])
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [], ignore=("**/node_modules",))
    assert plan_watches([str(tmp_path)], f.prunable, max_watches=8) == [Watch(str(tmp_path), True)]


def test_a_file_target_is_watched_through_its_folder(hello: Path) -> None:
    f = hello_filter(hello, ("app", "Dockerfile", "k8s"))
    watches = plan_watches(f.targets(), f.prunable)
    assert Watch(str(hello), False) in watches and Watch(str(hello / "app"), True) in watches


def test_a_dockerignore_with_exceptions_prunes_nothing(tmp_path: Path) -> None:
    tree(tmp_path, "docs/keep.txt", "docs/drop.txt")
    (tmp_path / ".dockerignore").write_text("docs/\n!docs/keep.txt\n")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [])
    assert not f.prunable(os.path.join(str(tmp_path), "docs"))


# -- mutation gaps (#13 item 28): each test fails on a code change that gives a wrong result --------------


def test_a_dockerfile_under_a_dockerignored_folder_is_still_watched(tmp_path: Path) -> None:
    tree(tmp_path, "docker/Dockerfile", "docker/notes.txt", "app/main.py", "vendor/big/x.js")
    (tmp_path / ".dockerignore").write_text("docker/\nvendor/\n")
    dockerfile = tmp_path / "docker" / "Dockerfile"
    f = WatchFilter(tmp_path, [("web", tmp_path, dockerfile)], [])
    assert kind(f.classify(str(dockerfile))) == "image"
    assert f.classify(str(tmp_path / "docker" / "notes.txt")) is None
    assert not f.prunable(str(tmp_path / "docker")) and f.prunable(str(tmp_path / "vendor"))
    watches = set(plan_watches(f.targets(), f.prunable))
    assert watches == {Watch(str(tmp_path), False), Watch(str(tmp_path / "app"), True),
                       Watch(str(tmp_path / "docker"), True)}


def test_a_folder_holding_an_image_context_is_not_pruned(tmp_path: Path) -> None:
    tree(tmp_path, "services/web/app.rb", "other/x.txt")
    context = tmp_path / "services" / "web"
    f = WatchFilter(tmp_path, [("web", context, context / "Dockerfile")], [])
    assert set(plan_watches([str(tmp_path)], f.prunable)) == {Watch(str(tmp_path), False),
                                                               Watch(str(tmp_path / "services"), True)}


def test_a_folder_holding_a_manifest_folder_is_not_pruned(tmp_path: Path) -> None:
    tree(tmp_path, "deploy/k8s/base/a.yaml", "app/x.rb")
    (tmp_path / ".dockerignore").write_text("deploy/\n")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [tmp_path / "deploy" / "k8s"])
    assert not f.prunable(str(tmp_path / "deploy"))
    assert not f.prunable(str(tmp_path / "deploy" / "k8s" / "base"))


@pytest.mark.parametrize("folder", [".git", ".hg", ".svn", ".kit", "__pycache__", ".idea", ".mypy_cache",
                                    ".pytest_cache", ".ruff_cache"])
def test_tool_folders_are_never_watched(tmp_path: Path, folder: str) -> None:
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [])
    assert f.classify(str(tmp_path / "src" / folder / "x")) is None
    assert f.classify(str(tmp_path / "src" / "x")) is not None


@pytest.mark.parametrize("name", ["x.swp", "x.swo", "x.swx", "x.swpx", ".x.swn", "x~", "4913", ".#x", "#x#",
                                  "x___jb_tmp___", "x___jb_old___", ".goutputstream-AB12", "x.kate-swp", ".DS_Store",
                                  "x.tmp"])
def test_every_kind_of_editor_temp_file(name: str) -> None:
    assert editor_temp(name)


def test_json_manifests_count(hello: Path) -> None:
    assert kind(hello_filter(hello).classify(str(hello / "k8s" / "extra.json"))) == "manifest"


def test_a_new_dockerignore_applies_only_once_its_own_event_arrives(hello: Path) -> None:
    f = hello_filter(hello)
    page = str(hello / "app" / "www" / "index.html")
    (hello / ".dockerignore").write_text("app/www/\n")
    assert kind(f.classify(page)) == "image"  # the event for .dockerignore has not come yet
    f.classify(str(hello / ".dockerignore"))
    assert f.classify(page) is None


def test_file_targets_share_their_folders_watch(tmp_path: Path) -> None:
    tree(tmp_path, "a.txt", "b.txt", "app/x.rb")
    files = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert plan_watches(files, lambda folder: False) == [Watch(str(tmp_path), False)]
    # a recursive watch on another folder does not cover the file's folder
    planned = plan_watches([str(tmp_path / "app"), str(tmp_path / "a.txt")], lambda folder: False)
    assert set(planned) == {Watch(str(tmp_path / "app"), True), Watch(str(tmp_path), False)}


def test_exactly_max_watches_keeps_the_plan(tmp_path: Path) -> None:
    tree(tmp_path, "a/b/node_modules/x.js", "a/b/src/y.js", "a/c/z.js", "d/w.js")
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [], ignore=("**/node_modules",))
    assert len(plan_watches([str(tmp_path)], f.prunable, max_watches=6)) == 6


def test_symlinked_folders_are_not_planned_twice(tmp_path: Path) -> None:
    tree(tmp_path, "a/node_modules/x.js", "a/src/y.js")
    (tmp_path / "a" / "link").symlink_to(tmp_path / "a" / "src", target_is_directory=True)
    f = WatchFilter(tmp_path, [("web", tmp_path, tmp_path / "Dockerfile")], [], ignore=("**/node_modules",))
    watches = set(plan_watches([str(tmp_path)], f.prunable))
    assert watches == {Watch(str(tmp_path), False), Watch(str(tmp_path / "a"), False),
                       Watch(str(tmp_path / "a" / "src"), True)}


def test_folders_holding_only_the_context_or_only_the_dockerfile_are_kept(tmp_path: Path) -> None:
    tree(tmp_path, "services/web/app.rb", "docker/web.Dockerfile", "other/x.txt")
    context = tmp_path / "services" / "web"
    f = WatchFilter(tmp_path, [("web", context, tmp_path / "docker" / "web.Dockerfile")], [])
    assert not f.prunable(str(tmp_path / "services")) and not f.prunable(str(tmp_path / "docker"))
    assert f.prunable(str(tmp_path / "other"))
