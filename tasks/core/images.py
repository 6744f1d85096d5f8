"""Image identity: .dockerignore matching, the build context's content hash, the tag, name rules.

The tag is derived from everything that decides what `docker build` produces, so a change always
gives a new tag (no stale image can run) and no change gives the same tag (nothing to rebuild).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import KitError

TAG_LENGTH = 12
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
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
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
        line = os.path.normpath(line).lstrip("/") if line else line
        if line in ("", "."):
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


@dataclass(frozen=True)
class BuildInputs:
    files: tuple[str, ...]
    digest: str

    @property
    def tag(self) -> str:
        return self.digest[:TAG_LENGTH]


def build_inputs(context: Path, dockerfile: Path, build_args: Mapping[str, str], target: str = "",
                 extra: Iterable[str] = ()) -> BuildInputs:
    """Hash the Dockerfile, build args, target and every file the context sends (path, mode, content)."""
    if not context.is_dir():
        raise KitError(f"build context {context} does not exist or is not a folder",
                       hint="fix app.images.<name>.context in invoke.yaml (relative to the app's folder)", code=2)
    if not dockerfile.is_file():
        raise KitError(f"Dockerfile {dockerfile} not found",
                       hint="fix app.images.<name>.dockerfile in invoke.yaml (relative to the build context)", code=2)
    ignore_file = context / ".dockerignore"
    patterns = parse_dockerignore(ignore_file.read_text(encoding="utf-8")) if ignore_file.is_file() else []
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
        h.update(rel.encode() + b"\0")
        if stat.S_ISLNK(info.st_mode):
            h.update(b"link\0" + os.readlink(full).encode())
        else:
            h.update(b"x" if info.st_mode & 0o111 else b"-")
            h.update(_file_digest(full))
    return BuildInputs(tuple(files), h.hexdigest())
