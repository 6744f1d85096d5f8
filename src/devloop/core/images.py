"""Image identity and bookkeeping: .dockerignore matching, the content hash and tag, name rules, the
digest cache, and reading what Docker, minikube and the cluster say about images.

The tag is derived from everything that decides what `docker build` produces, so a change always
gives a new tag (no stale image can run) and no change gives the same tag (nothing to rebuild).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import KitError
from .render import containers, image_repository

TAG_LENGTH = 12
KIT_STATE = ".kit"  # the kit's own files in the app folder: never part of an image's identity
# The reference grammar of distribution/reference, written out.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
NAME_RE = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
ARG_RE = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(=.*)?\s*$", re.IGNORECASE | re.MULTILINE)


def check_name(name: str) -> None:
    if not NAME_RE.match(name) or len(name) > 255:
        raise KitError(
            f"invalid image name {name!r}",
            hint="image names are lowercase letters, digits and separators (. _ __ -), in '/'-separated parts, "
                 "optionally after a registry host[:port]/ — e.g. demoapp or registry.local:5000/team/demoapp",
            code=2,
        )


def check_tag(tag: str) -> None:
    if not TAG_RE.match(tag):
        raise KitError(f"invalid image tag {tag!r}",
                       hint="a tag is 1-128 characters of letters, digits, _ . and -, not starting with . or -", code=2)


# ---------------------------------------------------------------------------------------------
# .dockerignore


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` line: re-include what matches
    text: str


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                out.append("(?:.*/)?")  # zero or more folders
                i += 1
            else:
                out.append(".*")
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]  # as Go's regexp reads it: only ^ negates, a leading ! is a literal !
                out.append(f"[{body}]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def parse_dockerignore(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/") or "."  # "" (a lone !) and "/" name the context root too
        if line == ".":  # the context root itself: Docker never leaves it out, so the line selects nothing
            continue
        patterns.append(Pattern(re.compile("^" + _translate(line) + "$"), exclusion, raw.strip()))
    return patterns


def ignored(relpath: str, patterns: list[Pattern]) -> bool:
    """Whether Docker leaves ``relpath`` (``a/b/c``) out of the build context: the last match wins,
    and a pattern that matches a parent folder matches everything inside it."""
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        if any(pattern.regex.match(p) for p in prefixes):
            result = not pattern.exclusion
    return result


def read_dockerignore(context: Path) -> list[Pattern]:
    """Docker reads the file as bytes and matches names byte for byte: decoded like the names os.walk gives
    (any encoding, Latin-1 included, matches the same files)."""
    ignore_file = context / ".dockerignore"
    return parse_dockerignore(os.fsdecode(ignore_file.read_bytes())) if ignore_file.is_file() else []


def read_dockerfile(path: Path) -> str:
    """A Dockerfile's text for reading its ARGs, in any encoding Docker builds (bytes that are not UTF-8 are
    kept as they are; the tag hashes the bytes)."""
    return path.read_bytes().decode("utf-8", "surrogateescape")


def context_files(context: Path, patterns: list[Pattern]) -> list[str]:
    """Relative paths of the files (and symlinks) Docker would send, sorted."""
    has_exceptions = any(p.exclusion for p in patterns)
    found = []
    for folder, dirs, files in os.walk(context):
        rel_folder = os.path.relpath(folder, context)
        rel_folder = "" if rel_folder == "." else rel_folder + "/"
        if not has_exceptions:  # an excluded folder cannot hold anything re-included: skip it whole
            dirs[:] = [d for d in dirs if not ignored(rel_folder + d, patterns)]
        for name in files:
            rel = rel_folder + name
            if not ignored(rel, patterns):
                found.append(rel)
        for name in dirs:
            if os.path.islink(os.path.join(folder, name)) and not ignored(rel_folder + name, patterns):
                found.append(rel_folder + name)
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Build inputs and tag


def dockerfile_args(text: str) -> dict[str, str | None]:
    """ARG names declared in a Dockerfile, with their default (None when there is none)."""
    args: dict[str, str | None] = {}
    for match in ARG_RE.finditer(text):
        default = match.group(2)
        args[match.group(1)] = default[1:].strip().strip("\"'") if default else None
    return args


def resolve_build_args(dockerfile_text: str, configured: Mapping[str, str], environ: Mapping[str, str],
                       image: str) -> dict[str, str]:
    """Configured build args, empty ones taken from the environment (.env / shell) like `--build-arg NAME`.

    An ARG the Dockerfile uses with no default and no value anywhere is an error naming it.
    """
    declared = dockerfile_args(dockerfile_text)
    values: dict[str, str] = {}
    for name, value in configured.items():
        value = value or environ.get(name, "")
        if value:
            values[name] = value
    unset = [n for n, default in declared.items() if default is None and n not in values
             and re.search(r"\$\{?" + re.escape(n) + r"\b", dockerfile_text)]
    if unset:
        raise KitError(
            f"image {image}: build arg(s) {', '.join(unset)} used by the Dockerfile but not set",
            hint=f"set app.images.{image}.build_args.{unset[0]} in invoke.yaml, or {unset[0]}=... in .env",
            code=2,
        )
    return values


def _file_digest(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.digest()


class DigestCache:
    """File digests remembered by path, size, mtime, ctime and inode, so a no-change build reads no file.

    Like git's racy-clean rule, a file changed within ``RACY_NS`` of being hashed is not remembered:
    a second write in the same timestamp tick could otherwise keep its old digest.
    """

    RACY_NS = 2_000_000_000

    def __init__(self, path: Path | None = None, now_ns: Callable[[], int] = time.time_ns, write: bool = True) -> None:
        self.path = path
        self.write = write
        self.now_ns = now_ns
        self.entries: dict[str, list[Any]] = {}
        self.seen: set[str] = set()
        self.hits = 0
        self.dirty = False
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.entries = loaded
            except (OSError, ValueError):
                pass

    def digest(self, full: str, info: os.stat_result) -> bytes:
        key = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]
        self.seen.add(full)
        entry = self.entries.get(full)
        if entry is not None and entry[:4] == key:
            self.hits += 1
            return bytes.fromhex(entry[4])
        value = _file_digest(full)
        if max(info.st_mtime_ns, info.st_ctime_ns) < self.now_ns() - self.RACY_NS:
            self.entries[full] = [*key, value.hex()]
            self.dirty = True
        elif entry is not None:
            del self.entries[full]
            self.dirty = True
        return value

    def save(self) -> None:
        """Write the cache when it changed, dropping files this run did not see (atomic replace)."""
        if self.path is None or not self.write:
            return
        gone = set(self.entries) - self.seen
        for name in gone:
            del self.entries[name]
        if not (self.dirty or gone):
            return
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.entries, separators=(",", ":")), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


@dataclass(frozen=True)
class BuildInputs:
    files: tuple[str, ...]
    digest: str

    @property
    def tag(self) -> str:
        return self.digest[:TAG_LENGTH]


def build_inputs(context: Path, dockerfile: Path, build_args: Mapping[str, str], target: str = "",
                 extra: Iterable[str] = (), cache: DigestCache | None = None,
                 skip: Sequence[str] = (KIT_STATE,)) -> BuildInputs:
    """Hash the Dockerfile, build args, target and every file the context sends (path, mode, content).

    ``skip`` names folders (relative to the context) that never count, such as the kit's own ``.kit/``.
    """
    if not context.is_dir():
        raise KitError(f"build context {context} does not exist or is not a folder",
                       hint="fix app.images.<name>.context in invoke.yaml (relative to the app's folder)", code=2)
    if not dockerfile.is_file():
        raise KitError(f"Dockerfile {dockerfile} not found",
                       hint="fix app.images.<name>.dockerfile in invoke.yaml (relative to the build context)", code=2)
    patterns = read_dockerignore(context)
    patterns += [Pattern(re.compile("^" + re.escape(folder.strip("/")) + "$"), False, folder) for folder in skip]
    files = context_files(context, patterns)
    h = hashlib.sha256()
    h.update(b"dockerfile\0" + dockerfile.read_bytes() + b"\0")
    for key in sorted(build_args):
        h.update(f"arg\0{key}={build_args[key]}\0".encode())
    h.update(f"target\0{target}\0".encode())
    for item in extra:
        h.update(f"extra\0{item}\0".encode())
    for rel in files:
        full = os.path.join(context, rel)
        info = os.lstat(full)
        h.update(os.fsencode(rel) + b"\0")  # a name that is not UTF-8 is hashed as the bytes Docker sends
        if stat.S_ISLNK(info.st_mode):
            h.update(b"link\0" + os.fsencode(os.readlink(full)))
        else:
            h.update(b"mode\0%o\0" % stat.S_IMODE(info.st_mode))  # COPY keeps every permission bit
            h.update(cache.digest(full, info) if cache is not None else _file_digest(full))
    if cache is not None:
        cache.save()
    return BuildInputs(tuple(files), h.hexdigest())


# ---------------------------------------------------------------------------------------------
# A failed `docker build`


_STEP_RE = re.compile(r"^(Step \d+/\d+ :.*|#\d+ \[.*)$")
_NOISE_RE = re.compile(r"^(DEPRECATED: The legacy builder|\s+Install the buildx component|\s+(BuildKit|https://docs\.docker\.com/go/buildx))")


_MARKER_RE = re.compile(r"^\s*---> ")  # the legacy builder's own lines between steps (layer IDs, "Running in")


def build_failure(output: str, lines: int = 12) -> tuple[str, str]:
    """(the last step the build started, what that step said: the tail of its own output, without the legacy
    builder's markers or the CLI's notice). Before any step, the output's tail."""
    kept = [line for line in output.splitlines() if line.strip() and not _NOISE_RE.match(line)]
    last = max((i for i, line in enumerate(kept) if _STEP_RE.match(line)), default=None)
    if last is None:
        return "", "\n".join(kept[-lines:])
    said = [line for line in kept[last + 1:] if not _MARKER_RE.match(line)]
    return kept[last].strip(), "\n".join(said[-lines:])


# ---------------------------------------------------------------------------------------------
# What Docker has: `docker image ls --format '{{json .}}'`


@dataclass(frozen=True)
class LocalImage:
    repository: str
    tag: str
    id: str
    created: datetime
    since: str = ""
    size: str = ""

    @property
    def ref(self) -> str:
        """What `docker image rm` takes: name:tag, or the ID of an untagged image."""
        return self.id if self.dangling else f"{self.repository}:{self.tag}"

    @property
    def dangling(self) -> bool:
        return self.tag == "<none>" or self.repository == "<none>"


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_created(text: str) -> datetime:
    """Docker's ``2024-11-27 15:24:00 +0000 UTC`` (the zone name after the offset is dropped)."""
    try:
        return datetime.strptime(" ".join(text.split()[:3]), "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return EPOCH


def parse_image_list(text: str) -> list[LocalImage]:
    """One JSON object a line, as `docker image ls --format '{{json .}}'` prints; other lines are skipped."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        found.append(LocalImage(str(row.get("Repository", "<none>")), str(row.get("Tag", "<none>")),
                                str(row.get("ID", "")), parse_created(str(row.get("CreatedAt", ""))),
                                str(row.get("CreatedSince", "")), str(row.get("Size", ""))))
    return found


def parse_built(text: str) -> dict[str, str]:
    """The kit's notes of its builds (``.kit/built-images``: ``<image ID> <app name>`` a line): ID → app, oldest
    first, once each."""
    notes: dict[str, str] = {}
    for line in text.splitlines():
        image_id, _, app = line.strip().partition(" ")
        if image_id.startswith("sha256:") and app:
            notes[image_id] = app
    return notes


def format_built(notes: dict[str, str]) -> str:
    return "".join(f"{image_id} {app}\n" for image_id, app in notes.items())


def _short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]  # as `docker image ls` shows it


def built_here(images: Iterable[LocalImage], built: Iterable[str], repositories: Iterable[str]) -> list[LocalImage]:
    """The listed images the kit made: an ID it noted building, left untagged or under a tag the kit gives (a
    content hash of one of ``repositories``). Identical content has one ID: a stage that only names a base
    image, or a tag given by hand to the kit's build, shares it, and is not the kit's."""
    short, names = {_short_id(full) for full in built}, set(repositories)
    tagged = re.compile(rf"^[0-9a-f]{{{TAG_LENGTH}}}$")
    return [i for i in images if _short_id(i.id) in short and (i.dangling or i.repository in names and tagged.match(i.tag))]


def still_there(built: Iterable[str], images: Iterable[LocalImage]) -> list[str]:
    """The noted IDs of images among ``images`` (what is left after a prune); the notes of the rest go."""
    left = {_short_id(i.id) for i in images}
    return [full for full in built if _short_id(full) in left]


def newest_first(images: Iterable[LocalImage]) -> list[LocalImage]:
    """Distinct refs, newest first (ties: by name and tag, so the order is stable)."""
    unique = {i.ref: i for i in images}
    return sorted(unique.values(), key=lambda i: (-i.created.timestamp(), i.repository, i.tag))


@dataclass
class PrunePlan:
    keep: list[tuple[LocalImage, str]] = field(default_factory=list)  # (image, why it stays)
    remove: list[tuple[LocalImage, str]] = field(default_factory=list)  # (image, why it goes)


def prune_plan(images: Iterable[LocalImage], keep: int, current: Iterable[str], deployed: Iterable[str] = ()) -> PrunePlan:
    """Per repository keep the newest ``keep`` tags and always the current and the ``deployed`` ones; the rest go.

    ``images`` must already be only the project's (the caller lists by the kit's label), so other
    images are never candidates. Untagged leftovers of a ``--no-cache`` rebuild go too.
    """
    if keep < 0:
        raise KitError(f"--keep {keep} must be 0 or more", hint="write e.g. --keep 3", code=2)
    current, deployed = set(current), set(deployed)
    plan = PrunePlan()
    kept_per_repo: dict[str, int] = {}
    for image in newest_first(images):
        if image.dangling:
            plan.remove.append((image, "untagged leftover of a rebuild"))
        elif image.ref in current:
            plan.keep.append((image, "current: the tag the inputs give now"))
        elif image.ref in deployed:  # the same image as the current tag, kept running: a new pod needs it
            plan.keep.append((image, "deployed: the reference the cluster runs"))
        elif kept_per_repo.get(image.repository, 0) < keep:
            kept_per_repo[image.repository] = kept_per_repo.get(image.repository, 0) + 1
            plan.keep.append((image, f"one of the {keep} newest"))
        else:
            plan.remove.append((image, f"older than the {keep} newest"))
    return plan


def removal_conflicts(stderr: str) -> list[str]:
    """Refs `docker image rm` refused because a container uses them (kept, not an error)."""
    return re.findall(r'conflict: unable to (?:remove repository reference|delete) "?([^" ]+)"? ', stderr)


# ---------------------------------------------------------------------------------------------
# What the node has: `minikube image ls --format json`


def qualified_ref(ref: str) -> str:
    """``hello:1`` → ``docker.io/library/hello:1``, the way containerd names images."""
    last = ref.split("/")[-1]
    name, tag = (ref.rsplit(":", 1) if ":" in last else (ref, "latest"))
    first = name.split("/")[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


def parse_node_images(text: str) -> dict[str, str]:
    """`minikube image ls --format json` → qualified ref → image ID (hex, no ``sha256:``)."""
    try:
        rows = json.loads(text or "[]")
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        image_id = str(row.get("id", "")).split(":")[-1]
        for ref in row.get("repoTags") or []:
            found[qualified_ref(str(ref))] = image_id
    return found


def node_state(listing: Mapping[str, str], ref: str, image_id: str) -> str:
    """``same`` (the node has this ref with this image ID), ``different`` (same ref, other content) or ``missing``."""
    on_node = listing.get(qualified_ref(ref))
    if on_node is None:
        return "missing"
    ours = image_id.split(":")[-1]
    width = min(len(on_node), len(ours))
    return "same" if width >= 12 and on_node[:width] == ours[:width] else "different"


# ---------------------------------------------------------------------------------------------
# `kubectl set image`: which live workloads run our images


ROLLABLE_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass
class SetImage:
    workload: str  # kind/name, lower-case kind
    changes: dict[str, str] = field(default_factory=dict)  # container -> the reference to run
    current: list[str] = field(default_factory=list)  # containers already on it
    pull_always: list[str] = field(default_factory=list)  # containers whose node would try a registry

    def argv(self) -> list[str]:
        return ["set", "image", self.workload, *(f"{c}={ref}" for c, ref in self.changes.items())]


def set_image_plan(objects: Iterable[Mapping[str, Any]], built: Mapping[str, str],
                   wanted: Sequence[str] = ()) -> tuple[list[SetImage], list[str]]:
    """For each live Deployment/StatefulSet/DaemonSet whose containers use one of our images, the
    ``kubectl set image`` changes that point them at the built reference.

    ``built`` maps the image name used in manifests (``demoapp``) to the reference to run
    (``demoapp:3f2a…``, or registry-qualified). ``wanted`` (``deployment/web`` …) limits the
    workloads; those not found live come back as the second value.
    """
    repositories = {name: ref for name, ref in built.items()}
    repositories.update({image_repository(ref): ref for ref in built.values()})
    plans: list[SetImage] = []
    found: set[str] = set()
    for obj in objects:
        kind = str(obj.get("kind", ""))
        if kind not in ROLLABLE_KINDS:
            continue
        key = f"{kind.lower()}/{(obj.get('metadata') or {}).get('name', '')}"
        if wanted and key not in wanted:
            continue
        found.add(key)
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        plan = SetImage(key)
        for section in ("initContainers", "containers"):
            for container in pod.get(section) or []:
                image = str(container.get("image") or "")
                target = repositories.get(image_repository(image))
                if target is None:
                    continue
                name = str(container.get("name"))
                if image == target:
                    plan.current.append(name)
                else:
                    plan.changes[name] = target
                if container.get("imagePullPolicy") == "Always":
                    plan.pull_always.append(name)
        if plan.changes or plan.current:
            plans.append(plan)
    return plans, [w for w in wanted if w not in found]


# ---------------------------------------------------------------------------------------------
# What the cluster was last given: the kit's rendered set (.kit/rendered-<env>.yaml)


def deployed_refs(documents: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """repository -> the reference the rendered ``documents`` run for it (the first container that names it)."""
    found: dict[str, str] = {}
    for doc in documents:
        for container in containers(doc):
            reference = str(container.get("image") or "")
            if reference:
                found.setdefault(image_repository(reference), reference)
    return found
