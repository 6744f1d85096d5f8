"""Live update: which saved files can be copied into running containers instead of rebuilding the image.

Per image, ``live_update`` in invoke.yaml gives sync rules (a path or glob in the build context → a
path in the container), an optional command to run in the container after a sync, and rebuild
triggers (paths that always need a new image; the Dockerfile always does). A batch whose files all
fall under sync rules is synced; anything else rebuilds, with the reason.
"""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .render import image_repository

GLOB_CHARS = re.compile(r"[*?\[]")
COPY_FAILED, DELETE_FAILED, COMMAND_FAILED, NO_BASE64 = 90, 91, 92, 93  # a sync's exit codes in the container
TAR_END = "DEVLOOP_TAR_END"  # ends the here-document of a request; never a line of base64


@dataclass(frozen=True)
class SyncRule:
    src: str  # relative to the image's build context, posix; a path or a glob
    dest: str  # absolute path in the container

    def target(self, path: str) -> str | None:
        """Where ``path`` (relative to the context) goes in the container, or None if the rule does not cover it."""
        if GLOB_CHARS.search(self.src):
            if not glob_regex(self.src).fullmatch(path):
                return None
            prefix = literal_prefix(self.src)
            rest = path[len(prefix) + 1:] if prefix else path
            return posixpath.join(self.dest, rest)
        if not self.src:  # the whole context
            return posixpath.join(self.dest, path)
        if path == self.src:
            return self.dest
        if path.startswith(self.src.rstrip("/") + "/"):
            return posixpath.join(self.dest, path[len(self.src.rstrip("/")) + 1:])
        return None


@dataclass(frozen=True)
class LiveUpdate:
    sync: tuple[SyncRule, ...]
    run: str = ""  # shell command run in each container after a sync ("" = none)
    rebuild: tuple[str, ...] = ()  # paths or globs (context-relative) that always rebuild


@dataclass(frozen=True)
class FileSync:
    path: str  # relative to the build context
    dest: str  # absolute path in the container


@dataclass(frozen=True)
class Decision:
    """For one image and one batch: the files to sync, or why it must be rebuilt."""

    image: str
    files: tuple[FileSync, ...] = ()
    rebuild: str = ""  # the reason; "" = sync

    @property
    def sync(self) -> bool:
        return not self.rebuild


@dataclass
class Overlay:
    """What the running containers of one image carry on top of the image: dest -> local path (None = deleted)."""

    files: dict[str, str | None] = field(default_factory=dict)

    def add(self, dest: str, local: str | None) -> None:
        self.files[dest] = local

    def clear(self) -> None:
        self.files.clear()

    def __bool__(self) -> bool:
        return bool(self.files)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A context-relative glob as a regex: ``**`` spans folders, ``*`` and ``?`` stay inside one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def literal_prefix(pattern: str) -> str:
    """The folders of a glob before its first wildcard: ``app/**/*.rb`` → ``app``."""
    parts = []
    for part in pattern.split("/"):
        if GLOB_CHARS.search(part):
            break
        parts.append(part)
    return "/".join(parts)


def matches(pattern: str, path: str) -> bool:
    """``path`` is ``pattern``, lies under it (a folder), or matches it (a glob)."""
    if GLOB_CHARS.search(pattern):
        return bool(glob_regex(pattern).fullmatch(path))
    pattern = pattern.rstrip("/")
    return path == pattern or path.startswith(pattern + "/")


def decide(image: str, live: LiveUpdate | None, paths: Iterable[str], dockerfile: str) -> Decision:
    """Sync ``paths`` (context-relative, posix) into the containers, or rebuild: the first reason wins."""
    paths = list(paths)
    if live is None or not live.sync:
        return Decision(image, rebuild="no live_update rules")
    files = []
    for path in paths:
        if path == dockerfile:
            return Decision(image, rebuild=f"{path} is the Dockerfile")
        trigger = next((t for t in live.rebuild if matches(t, path)), None)
        if trigger:
            return Decision(image, rebuild=f"{path} is a rebuild trigger ({trigger})")
        dest = next((d for d in (rule.target(path) for rule in live.sync) if d), None)
        if dest is None:
            return Decision(image, rebuild=f"{path} is outside every sync rule")
        files.append(FileSync(path, dest))
    return Decision(image, tuple(files))


# -- reading the settings ----------------------------------------------------------------------------


def parse(spec: Any, key: str, problems: list[str]) -> LiveUpdate | None:
    """``app.images.<name>.live_update`` → LiveUpdate; problems named with their key."""
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, Mapping):
        problems.append(f"{key} must be a mapping with sync, run, rebuild; got {spec!r}")
        return None
    rules = _rules(spec.get("sync") or [], f"{key}.sync", problems)
    rebuild = spec.get("rebuild") or []
    if isinstance(rebuild, str) or not isinstance(rebuild, list):
        problems.append(f"{key}.rebuild must be a list of paths or globs, got {rebuild!r}")
        rebuild = []
    run = spec.get("run") or ""
    if not isinstance(run, str):
        problems.append(f"{key}.run must be one shell command (a string), got {run!r}")
        run = ""
    return LiveUpdate(tuple(rules), run, tuple(str(r).strip("/") for r in rebuild))


def _rules(items: Any, key: str, problems: list[str]) -> list[SyncRule]:
    if not isinstance(items, list):
        problems.append(f"{key} must be a list of {{src: PATH, dest: /PATH/IN/CONTAINER}}, got {items!r}")
        return []
    rules = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} must be {{src: PATH, dest: /PATH/IN/CONTAINER}}, got {item!r}")
            continue
        missing = [k for k in ("src", "dest") if k not in item]  # other keys: schema.unknown_keys names them
        if missing:
            problems.append(f"{where} has no {' and no '.join(missing)}: write {{src: PATH, dest: /PATH/IN/CONTAINER}}")
            continue
        src, dest = str(item["src"]).strip(), str(item["dest"]).strip()
        if not dest.startswith("/"):
            problems.append(f"{where}.dest must be an absolute path in the container, got {dest!r}")
        elif not src or src.startswith("/") or ".." in src.split("/"):
            problems.append(f"{where}.src must be a path inside the build context, got {src!r}")
        else:
            rules.append(SyncRule(src.strip("/") if src not in (".", "./") else "", dest))
    return rules


# -- the containers a sync goes to ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    pod: str
    container: str
    uid: str
    restarts: int

    @property
    def key(self) -> str:
        """One container instance: a restart (fresh filesystem) or a new pod is a new key."""
        return f"{self.uid}/{self.container}/{self.restarts}"


def running_containers(pods: Iterable[Mapping[str, Any]], repository: str) -> tuple[list[Target], list[str]]:
    """The running containers whose image is ``repository`` (any tag), and why others cannot take a sync.

    Pods being deleted are left out: a rollout's old replicas are on their way out.
    """
    targets, problems = [], []
    for pod in pods:
        meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            continue
        states: dict[str, Mapping[str, Any]] = {str(s.get("name")): s for s in status.get("containerStatuses") or []}
        for container in spec.get("containers") or []:
            if image_repository(str(container.get("image") or "")) != repository:
                continue
            name = str(container.get("name"))
            state = states.get(name) or {}
            now: Mapping[str, Any] = state.get("state") or {}
            if "running" not in now:
                why = next((str(d.get("reason")) for d in now.values() if isinstance(d, Mapping) and d.get("reason")),
                           "not started")
                problems.append(f"pod/{meta.get('name')} container {name} is not running ({why})")
                continue
            targets.append(Target(str(meta.get("name")), name, str(meta.get("uid")), int(state.get("restartCount") or 0)))
    return targets, problems


def pod_owner(pod: Mapping[str, Any]) -> str:
    """The workload a pod belongs to (``deployment/web``, ``statefulset/db``…); "" for a bare pod."""
    meta = pod.get("metadata") or {}
    owner = next(iter(meta.get("ownerReferences") or []), None)
    if not owner:
        return ""
    kind, name = str(owner.get("kind")), str(owner.get("name"))
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return f"deployment/{name[:-len(template_hash) - 1]}"
    return f"{kind.lower()}/{name}" if kind in ("StatefulSet", "DaemonSet", "ReplicaSet") else ""


# -- what a shell kept open in a container runs for one sync --------------------------------------------


def shell_request(tar: bytes, deleted: Sequence[str], run: str, root: str = "/") -> str:
    """The lines a kept-open ``sh`` in a container runs for one sync: unpack, delete, then the command.

    The tar travels as base64 in a here-document, which the shell itself reads: no command in the request can read
    past its end (each one's stdin is /dev/null). It all runs in a subshell, so an ``exit`` ends the request, not
    the shell; each step's failure has its own exit code (as in a one-shot exec), and its output goes to stdout.
    ``root`` is "/" in a container (another folder in the kit's tests).
    """
    lines = ["(", f"command -v base64 >/dev/null 2>&1 || exit {NO_BASE64}"]
    if tar:
        lines += [f"base64 -d <<'{TAR_END}' | tar -xf - -C {shlex.quote(root)} || exit {COPY_FAILED}",
                  *base64.encodebytes(tar).decode("ascii").splitlines(), TAR_END]
    if deleted:
        paths = " ".join(shlex.quote(root.rstrip("/") + path) for path in deleted)
        lines.append(f"rm -rf -- {paths} || exit {DELETE_FAILED}")
    if run:
        lines.append(command_line(run))
    lines.append(") </dev/null 2>&1")
    return "\n".join(lines) + "\n"


def exec_script(deletes: bool, run: str) -> str:
    """The ``sh -c`` script of a one-shot exec: the tar on its stdin, the paths to delete as its arguments."""
    script = f"tar -xf - -C / || exit {COPY_FAILED}; "
    if deletes:
        script += f'rm -rf -- "$@" || exit {DELETE_FAILED}; '
    return script + (command_line(run) if run else "")


def command_line(run: str) -> str:
    """The command after a sync, in a subshell of its own (an ``exit`` in it ends only it); a failure says its status,
    then exits COMMAND_FAILED."""
    return f'( {run}\n); code=$?; [ "$code" = 0 ] || {{ echo "exit $code" >&2; exit {COMMAND_FAILED}; }}'
