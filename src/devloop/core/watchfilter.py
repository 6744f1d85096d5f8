"""What a changed path means to the loop: which images it rebuilds, whether manifests re-apply, or
nothing (ignored); and which folders to watch so ignored trees (node_modules) cost nothing.

Ignore rules: everything ``.dockerignore`` leaves out of a build context (Docker's own semantics, from
``images.parse_dockerignore``/``ignored``), version-control and tool folders, the kit's ``.kit/``,
editor temp and swap files, and ``app.watch.ignore`` (same pattern syntax, relative to the app root).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .images import Pattern, ignored, parse_dockerignore

# Folders nothing in them can matter to an image or a manifest.
NEVER_WATCHED_DIRS = frozenset({".git", ".hg", ".svn", ".kit", "__pycache__", ".idea", ".mypy_cache",
                                ".pytest_cache", ".ruff_cache"})
# Editor temp/swap/backup files: vim (.x.swp, 4913, x~), emacs (.#x, #x#), JetBrains, GNOME, Kate, macOS.
EDITOR_TEMP = ("*.swp", "*.swo", "*.swx", "*.swpx", ".*.sw?", "*~", "4913", ".#*", "#*#", "*___jb_tmp___",
               "*___jb_old___", ".goutputstream-*", "*.kate-swp", ".DS_Store", "*.tmp")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def editor_temp(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EDITOR_TEMP)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _rel(path: str, folder: str) -> str:
    return os.path.relpath(path, folder).replace(os.sep, "/")


@dataclass
class ImageScope:
    """What one image's build sees: its context minus .dockerignore, plus its Dockerfile."""

    name: str
    context: str
    dockerfile: str
    patterns: list[Pattern] = field(default_factory=list)

    @property
    def ignore_file(self) -> str:
        return os.path.join(self.context, ".dockerignore")

    def load_ignore(self, read: Callable[[str], str | None]) -> None:
        text = read(self.ignore_file)
        self.patterns = parse_dockerignore(text) if text else []

    def sees(self, path: str) -> bool:
        if path in (self.dockerfile, self.ignore_file):
            return True
        if not _inside(path, self.context) or path == self.context:
            return False
        return not ignored(_rel(path, self.context), self.patterns)

    def prunes(self, folder: str) -> bool:
        """Nothing under ``folder`` can reach this image's build (no ``!`` line can re-include it)."""
        if not _inside(folder, self.context):
            return not _inside(self.context, folder) and not _inside(self.dockerfile, folder)
        if folder == self.context or _inside(self.dockerfile, folder):
            return False
        if any(p.exclusion for p in self.patterns):
            return False
        return ignored(_rel(folder, self.context), self.patterns)


@dataclass(frozen=True)
class Change:
    path: str  # relative to the app root, for people
    images: frozenset[str]  # images whose build this path is part of
    manifest: bool  # a manifest file


@dataclass(frozen=True)
class Plan:
    """What one batch asks for: rebuild these images (and re-apply), or only re-apply manifests."""

    images: frozenset[str]
    manifests: bool

    @property
    def build(self) -> bool:
        return bool(self.images)

    @property
    def anything(self) -> bool:
        return self.build or self.manifests


@dataclass(frozen=True)
class Watch:
    path: str
    recursive: bool


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


class WatchFilter:
    """Classifies absolute paths for one app. ``watch_paths`` (app.watch.paths), when given, limit
    what is watched; otherwise each image's context and Dockerfile, and the manifest folders."""

    def __init__(self, root: Path, images: Sequence[tuple[str, Path, Path]], manifests: Sequence[Path],
                 ignore: Iterable[str] = (), watch_paths: Sequence[Path] = (),
                 read: Callable[[str], str | None] = _read) -> None:
        self.root = str(root)
        self.read = read
        self.images = [ImageScope(name, str(context), str(dockerfile)) for name, context, dockerfile in images]
        for scope in self.images:
            scope.load_ignore(read)
        self.manifests = [str(m) for m in manifests]
        self.kustomized = {m for m in self.manifests
                           if any(os.path.isfile(os.path.join(m, k)) for k in ("kustomization.yaml", "kustomization.yml"))}
        self.ignore = parse_dockerignore("\n".join(ignore))
        self.watch_paths = [str(p) for p in watch_paths]

    # -- classification ---------------------------------------------------------------------------

    def shown(self, path: str) -> str:
        return _rel(path, self.root) if _inside(path, self.root) else path

    def never(self, path: str) -> bool:
        """Always ignored: VCS/tool folders, .kit/, editor temp files, app.watch.ignore, outside watch paths (but
        never an image's Dockerfile or .dockerignore: they decide what its build reads)."""
        if any(path in (s.dockerfile, s.ignore_file) for s in self.images):
            return False
        rel = _rel(path, self.root) if _inside(path, self.root) else path
        parts = rel.split("/")
        if any(part in NEVER_WATCHED_DIRS for part in parts) or editor_temp(parts[-1]):
            return True
        if self.ignore and _inside(path, self.root) and ignored(rel, self.ignore):
            return True
        return bool(self.watch_paths) and not any(_inside(path, w) for w in self.watch_paths)

    def classify(self, path: str) -> Change | None:
        """What a change to ``path`` (absolute) asks for; None when it asks for nothing."""
        path = os.path.normpath(path)
        if self.never(path):
            return None
        for scope in self.images:
            if path == scope.ignore_file:
                scope.load_ignore(self.read)  # new rules apply from this event on
        images = frozenset(s.name for s in self.images if s.sees(path))
        manifest = any(_inside(path, m) and path != m and self._manifest_file(path, m) for m in self.manifests)
        if not images and not manifest:
            return None
        return Change(self.shown(path), images, manifest)

    def _manifest_file(self, path: str, folder: str) -> bool:
        rel = _rel(path, folder)
        if any(part.startswith(".") for part in rel.split("/")):
            return False
        return folder in self.kustomized or path.endswith(MANIFEST_SUFFIXES) or os.path.isdir(path)

    def plan(self, changes: Iterable[Change | None]) -> Plan:
        found = [c for c in changes if c is not None]
        return Plan(frozenset().union(*(c.images for c in found)) if found else frozenset(),
                    any(c.manifest for c in found))

    # -- what to watch ----------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """The files and folders to watch, outermost first, none inside another."""
        if self.watch_paths:
            wanted = self.watch_paths + [s.dockerfile for s in self.images] + \
                [s.ignore_file for s in self.images if os.path.isfile(s.ignore_file)]
        else:
            wanted = [s.context for s in self.images] + [s.dockerfile for s in self.images] + self.manifests
        unique: list[str] = []
        for path in sorted(set(wanted), key=lambda p: (p.count(os.sep), p)):
            if not any(_inside(path, u) and os.path.isdir(u) for u in unique):
                unique.append(path)
        return unique

    def prunable(self, folder: str) -> bool:
        """No change under ``folder`` can ask for anything: leave it unwatched."""
        if self.never(folder) and not any(_inside(w, folder) for w in self.watch_paths):
            return True
        if any(_inside(folder, m) or _inside(m, folder) for m in self.manifests):
            return False
        return all(scope.prunes(folder) for scope in self.images)


def plan_watches(targets: Sequence[str], prunable: Callable[[str], bool], max_watches: int = 64,
                 scandir: Callable[[str], Iterable[os.DirEntry[str]]] = os.scandir) -> list[Watch]:
    """Observer watches covering ``targets`` but not the prunable folders inside them.

    A folder with no prunable folder below it gets one recursive watch. A folder that has one is
    watched on its own (non-recursively) and its other subfolders are planned the same way. Past
    ``max_watches`` a target falls back to one recursive watch (its ignored trees are then walked
    too, which is correct, only slower).
    """
    watches: list[Watch] = []
    for target in targets:
        if not os.path.isdir(target):
            parent = os.path.dirname(target)
            if not any(w.path == parent or (w.recursive and _inside(parent, w.path)) for w in watches):
                watches.append(Watch(parent, False))
            continue
        planned = _plan_folder(target, prunable, scandir)
        if planned is None or len(planned) > max_watches:
            planned = [Watch(target, True)]
        watches = [w for w in watches if not (w.path == target and not w.recursive)] + planned
    return watches


def _plan_folder(folder: str, prunable: Callable[[str], bool],
                 scandir: Callable[[str], Iterable[os.DirEntry[str]]]) -> list[Watch] | None:
    """Watches for one folder; None when nothing under it is pruned (one recursive watch will do)."""
    try:
        entries = [e for e in scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return None
    children = [e.path for e in entries]
    kept = [c for c in children if not prunable(c)]
    sub = {c: _plan_folder(c, prunable, scandir) for c in kept}
    if len(kept) == len(children) and all(v is None for v in sub.values()):
        return None
    watches = [Watch(folder, False)]
    for child in kept:
        watches += sub[child] or [Watch(child, True)]
    return watches
