"""Following the logs of every pod a selector matches, across restarts and rollouts, without losing lines.

One ``kubectl logs -f --timestamps`` child per container instance (injected ``start``). ``reconcile`` is
called with each fresh pod listing: it attaches to containers that run (pods that appear later included),
re-attaches with ``--since-time`` after a dropped stream and drops the lines already printed, follows a
restarted container's new instance from its first line, and says when a pod goes away.
"""

from __future__ import annotations

import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .supervise import Backoff, Proc, stop

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?(.*)$", re.DOTALL)
COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95", "94", "91")
RESET = "\x1b[0m"

Key = tuple[str, str]  # (pod, container)


def split_timestamp(raw: str) -> tuple[str, str, str]:
    """``kubectl logs --timestamps`` line → (sortable key, the timestamp as printed, text)."""
    match = TIMESTAMP.match(raw)
    if not match:
        return "", "", raw
    seconds, fraction, zone, text = match.groups()
    key = f"{seconds}.{(fraction or '').ljust(9, '0')}{zone}"
    printed = f"{seconds}{'.' + fraction if fraction else ''}{zone}"
    return key, printed, text


def colour_of(pod: str) -> str:
    """A colour per pod that stays the same across runs (crc32 of the name)."""
    return COLOURS[zlib.crc32(pod.encode()) % len(COLOURS)]


@dataclass
class Stream:
    """One container of one pod, and the instance (containerID) being followed."""

    pod: str
    container: str
    proc: Proc | None = None
    instance: str = ""  # containerID the current/last child follows
    attached_to_terminated: bool = False
    done: str = ""  # containerID followed to its end
    last_key: str = ""  # sortable timestamp of the last printed line (this instance)
    last_printed: str = ""  # that timestamp as kubectl prints it (for --since-time)
    at_last: Counter[str] = field(default_factory=Counter)  # texts printed with that timestamp (a multiset)
    replay_key: str = ""  # after a re-attach: lines up to this timestamp were printed already
    replay: Counter[str] = field(default_factory=Counter)  # which of them, at exactly that timestamp
    retry_at: float = 0.0
    attached_at: float = 0.0
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 8.0, 10.0))
    said_error: str = ""
    noise: str = ""  # the last line that was not a log line (an error from kubectl or the kubelet)


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


class LogMux:
    def __init__(self, start: Callable[[list[str], Key], Proc | None], logs_argv: Callable[..., list[str]],
                 out: Callable[[str], None], *, since: str = "", container: str | None = None, colour: bool = False,
                 timestamps: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.start, self.logs_argv, self.out = start, logs_argv, out
        self.since, self.container, self.colour, self.timestamps = since, container, colour, timestamps
        self.clock = clock
        self.streams: dict[Key, Stream] = {}
        self.initial: set[str] | None = None  # pods of the first listing: followed from --since, not from the start
        self.known: set[str] = set()
        self.terminating: set[str] = set()
        self.gone: set[str] = set()

    # -- output -----------------------------------------------------------------------------------

    def prefix(self, pod: str, container: str) -> str:
        text = f"{pod}/{container}"
        return f"\x1b[{colour_of(pod)}m{text}{RESET}" if self.colour else text

    def note(self, pod: str, container: str, text: str) -> None:
        who = self.prefix(pod, container) if container else (f"\x1b[{colour_of(pod)}m{pod}{RESET}" if self.colour else pod)
        self.out(f"{text[0]} {who}{text[1:]}")

    # -- the listing ------------------------------------------------------------------------------

    def reconcile(self, pods: Iterable[Mapping[str, Any]]) -> None:
        now = self.clock()
        listed = {p["metadata"]["name"]: p for p in pods if (p.get("metadata") or {}).get("name")}
        if self.initial is None:
            self.initial = set(listed)
        for name, pod in listed.items():
            self.known.add(name)
            if (pod.get("metadata") or {}).get("deletionTimestamp") and name not in self.terminating:
                self.terminating.add(name)
                self.note(name, "", "- is terminating")
            for cs in _statuses(pod):
                if self.container and cs.get("name") != self.container:
                    continue
                self._consider(name, cs, now)
        for name in sorted(self.known - set(listed) - self.gone):
            alive = [s for s in self.streams.values() if s.pod == name and s.proc is not None and s.proc.poll() is None]
            if not alive:
                self.gone.add(name)
                self.note(name, "", "- is gone")
                for key in [k for k in self.streams if k[0] == name]:
                    del self.streams[key]

    def _consider(self, pod: str, cs: Mapping[str, Any], now: float) -> None:
        container = str(cs.get("name") or "")
        state = cs.get("state") or {}
        instance = str(cs.get("containerID") or "")
        if not instance or not (state.get("running") or state.get("terminated")):
            return
        key = (pod, container)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(pod, container)
        if stream.proc is not None:
            return  # one child per container at a time: a new one starts only after `ended` for the last
        if stream.done == instance or now < stream.retry_at:
            return
        args = ["--timestamps"]
        if stream.instance == instance and stream.last_printed:
            args.append(f"--since-time={stream.last_printed}")  # same instance, dropped stream: catch up
            stream.replay_key, stream.replay = stream.last_key, Counter(stream.at_last)
        elif stream.instance and stream.instance != instance:
            self.note(pod, container, f"+ restarted (restart {cs.get('restartCount', '?')}), following its new instance")
            stream.last_key, stream.last_printed, stream.at_last = "", "", Counter()
            stream.replay_key, stream.replay = "", Counter()
        elif self.initial is not None and pod in self.initial and self.since and not stream.instance:
            args.append(f"--since={self.since}")
        if not stream.instance:
            self.note(pod, container, "+ following")
        stream.instance = instance
        stream.attached_to_terminated = bool(state.get("terminated"))
        stream.attached_at = now
        stream.proc = self.start(self.logs_argv(pod, container, *args), key)
        if stream.proc is None:  # --dry
            stream.done = instance

    # -- the children -----------------------------------------------------------------------------

    def line(self, key: Key, raw: str) -> None:
        stream = self.streams.get(key)
        sort_key, printed, text = split_timestamp(raw)
        if not sort_key:
            # With --timestamps every line the container wrote has one; the rest is kubectl or the
            # kubelet talking ("unable to retrieve container logs for …" once a container is removed).
            if stream is not None:
                stream.noise = raw.strip()
            return
        if stream is not None:
            if stream.replay_key:  # the re-attached stream repeats what was printed before the drop
                if sort_key < stream.replay_key:
                    return
                if sort_key == stream.replay_key and stream.replay[text] > 0:
                    stream.replay[text] -= 1
                    return
                stream.replay_key, stream.replay = "", Counter()
            if sort_key != stream.last_key:
                stream.last_key, stream.last_printed, stream.at_last = sort_key, printed, Counter()
            stream.at_last[text] += 1
        shown = f"{printed} {text}" if self.timestamps and printed else text
        self.out(f"{self.prefix(*key)} {shown}")

    def ended(self, key: Key, error: str = "") -> None:
        """A child stopped: the container ended (done) or the stream dropped (retry with backoff)."""
        stream = self.streams.get(key)
        if stream is None:
            return
        now = self.clock()
        stream.proc = None
        error, stream.noise = error or stream.noise, ""
        if stream.attached_to_terminated:
            stream.done = stream.instance
            return
        stream.retry_at = now + stream.backoff.next(now - stream.attached_at)
        quiet = key[0] in self.terminating or key[0] in self.gone or not error
        if not quiet and error != stream.said_error and "waiting to start" not in error:
            stream.said_error = error
            self.note(key[0], key[1], f"! kubectl logs: {error}")

    def close(self) -> None:
        for stream in self.streams.values():
            stop(stream.proc)
            stream.proc = None
