"""The cluster as the wait sees it: objects kept current from watch events (`kubectl get --raw …?watch=1`).

Pure: the task layer feeds it one full listing and then the watch events it reads; `assess` runs on ``items()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Key = tuple[str, str, str]  # (kind, namespace, name)


def key_of(obj: Mapping[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        return None
    return str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(name)


def version(obj: Mapping[str, Any]) -> int | None:
    """The object's resourceVersion as a number, when it is one (etcd's revision; opaque otherwise)."""
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else None


def older(new: Mapping[str, Any], old: Mapping[str, Any] | int | None) -> bool:
    """True only when both versions are numbers and ``new``'s is below ``old``'s: anything else is taken."""
    was = old if isinstance(old, int) or old is None else version(old)
    now = version(new)
    return was is not None and now is not None and now < was


class ClusterState:
    """(kind, namespace, name) → the latest object, from a listing and then one watch event at a time.

    A listing can be older than events already applied (it ran while they arrived): an object whose
    version is older than the one held, or than its deletion, is not taken back.
    """

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.deleted: dict[Key, int | None] = {}  # the version each object had when its deletion was seen

    def replace(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Start again from a full listing (the first read, a reconnect, the slow backstop)."""
        fresh: dict[Key, dict[str, Any]] = {}
        listed: set[Key] = set()
        for obj in items:
            key = key_of(obj)
            if key is None:
                continue
            listed.add(key)
            if older(obj, self.deleted.get(key)):
                continue
            held = self.objects.get(key)
            fresh[key] = held if held is not None and older(obj, held) else dict(obj)
        self.objects = fresh
        # a deletion matters only against a listing that still holds the object: the others are forgotten
        self.deleted = {key: seen for key, seen in self.deleted.items() if key in listed}

    def apply(self, event: Any) -> bool:
        """One watch event ({"type": ADDED|MODIFIED|DELETED, "object": {...}}); True when it changed anything."""
        if not isinstance(event, Mapping):
            return False  # any other JSON value on the stream
        obj = event.get("object")
        kind = event.get("type")
        key = key_of(obj) if isinstance(obj, Mapping) else None
        if key is None or kind not in ("ADDED", "MODIFIED", "DELETED"):
            return False  # BOOKMARK, ERROR (kubectl ends the watch and is restarted), or garbage
        assert isinstance(obj, Mapping)
        held = self.objects.get(key)
        if held is not None and older(obj, held):
            return False
        if kind == "DELETED":
            self.deleted[key] = version(obj)
            return self.objects.pop(key, None) is not None
        if older(obj, self.deleted.get(key)):
            return False
        self.deleted.pop(key, None)
        self.objects[key] = dict(obj)
        return held != obj

    def items(self) -> list[dict[str, Any]]:
        return list(self.objects.values())


class JsonStream:
    """Whole JSON values out of a stream of lines: kubectl prints watch events one per line, or indented
    over many lines (older kubectl). A value is tried only at a line starting in column 0, where an indented
    value ends, so a long object is not re-parsed at each of its lines."""

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.decoder = json.JSONDecoder()

    def feed(self, line: str) -> Iterator[Any]:
        if not line.strip():
            return
        if not self.buffer and not line.lstrip().startswith(("{", "[")):
            return  # not JSON (a stray message): nothing to build on
        self.buffer.append(line)
        if line[:1].isspace():
            return
        text = "\n".join(self.buffer)
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                self.buffer = []
                return
            try:
                value, position = self.decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                # Only an indented value's opening line may be incomplete here; anything else is broken: drop it.
                rest = text[position:]
                self.buffer = [rest] if rest.strip() in ("{", "[") else []
                return
            yield value
