"""Live update in the cluster: copy synced files into every running container of an image, then run its command.

Per image it keeps what the containers carry on top of the image (the overlay) and which container
instances have it, so a container that starts later (a crash, a scale-up, a new replica) gets the same
files; a rebuild that deploys a new image starts from a clean slate.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from devloop import liveshell, rollout, shell
from devloop.core import config, liveupdate, render, supervise
from devloop.core.clusterstate import ClusterState
from devloop.core.errors import KitError
from devloop.kit import App

SHELL_AT_MOST = 8 << 20  # a bigger tar goes by a one-shot exec: the kept-open shell would read it as base64 text


def repository(app: App, image: config.Image) -> str:
    """The repository the pods run for ``image`` (the registry prefix with provider registry)."""
    registry = app.settings.cluster.registry
    return f"{registry}/{image.name}" if app.settings.cluster.provider == "registry" and registry else image.name


def selector(app: App) -> str:
    return f"{render.LABEL}={app.settings.name},{render.ENV_LABEL}={app.settings.env}"


def tar_stream(files: dict[str, str]) -> bytes:
    """A tar of local files (dest in the container -> local path) with paths relative to /."""
    import tarfile  # kept local for start-up time: only a sync needs it

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for dest, local in sorted(files.items()):
            tar.add(local, arcname=dest.lstrip("/"), recursive=False)
        end = tar.offset
    return buffer.getvalue()[:end + 2 * tarfile.BLOCKSIZE]  # its end marker, without the padding to 10 KiB


def exec_argv(app: App, target: liveupdate.Target, deleted: list[str], run: str) -> list[str]:
    """A one-shot ``kubectl exec`` into a container: the tar on its stdin, the deleted paths as its arguments."""
    script = liveupdate.exec_script(bool(deleted), run)
    return app.kubectl("exec", "-i", target.pod, "-c", target.container, "--", "sh", "-c", script, "sh", *deleted)


def failure_reason(target: liveupdate.Target, exited: int, stderr: str, run: str) -> str:
    where = f"pod/{target.pod} container {target.container}"
    said = [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith("command terminated")]
    detail = shell.mask(said[-1].strip()) if said else f"exit {exited}"
    if exited == liveupdate.COPY_FAILED:
        return f"cannot copy files into {where} ({detail}); does the image have tar?"
    if exited == liveupdate.DELETE_FAILED:
        return f"cannot delete files in {where} ({detail})"
    if exited == liveupdate.COMMAND_FAILED:
        return f"the command after sync ({run}) failed in {where} ({detail})"
    return f"cannot exec into {where} ({detail})"


class LiveSync:
    """The live-update state of one `inv watch`/`inv dev` session."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.overlays: dict[str, liveupdate.Overlay] = {}
        self.carried: dict[str, set[str]] = {}  # image -> container keys that carry its whole overlay
        self.stale = False  # a container could not be given the synced files: rebuild at the next change
        self.paused = False
        self.lock = threading.Lock()
        self.feed = Feed(app, self)
        self.listed: list[dict[str, Any]] = []  # the last listing of the app's pods (it names their namespace)
        self.shells: dict[str, liveshell.Shells] = {}  # per image: a shell kept open in each of its containers

    def sync_all(self, planned: list[tuple[config.Image, liveupdate.Decision]]) -> None:
        with self.app.phase("sync"):
            for image, decision in planned:
                self.sync(image, decision)
        self.feed.ensure(self.listed)  # from now on, containers that start get the synced files too

    def close(self) -> None:
        self.feed.close()
        for shells in self.shells.values():
            shells.close()

    def shells_of(self, image: config.Image) -> liveshell.Shells:
        if image.name not in self.shells:
            self.shells[image.name] = liveshell.Shells(self.shell_argv, self.app.c)
        return self.shells[image.name]

    def shell_argv(self, target: liveupdate.Target) -> list[str]:
        return self.app.kubectl("exec", "-i", target.pod, "-c", target.container, "--", "sh")

    def warm(self) -> None:
        """Open a shell in each running container of an image with sync rules (the next sync is written to it),
        and watch the app's pods from now on; nothing when there are none or under --dry."""
        images = [image for image in self.app.settings.images if image.live_update]
        with self.lock:
            if self.paused or not images or shell.is_dry(self.app.c):
                return
            try:
                for image in images:
                    self.shells_of(image).keep(self.targets(image, strict=False))
            except KitError as exc:
                self.app.say(f"live update: {exc.message}; the next sync opens its shells")
        self.feed.ensure(self.listed)

    def sync(self, image: config.Image, decision: liveupdate.Decision) -> None:
        """Copy ``decision``'s files into every running container of ``image``; KitError says why not."""
        with self.lock:
            overlay = self.overlays.setdefault(image.name, liveupdate.Overlay())
            for file in decision.files:
                local = image.context / file.path
                overlay.add(file.dest, str(local) if local.is_file() else None)
            started = time.monotonic()
            targets = self.targets(image)
            batch = {file.dest for file in decision.files}
            sent = self.push(image, targets, batch)
            caught_up = f" ({sent} new, given all {len(overlay.files)} synced files)" if sent and len(overlay.files) > len(batch) else ""
            deleted = sum(1 for f in decision.files if overlay.files.get(f.dest) is None)
            what = f"{len(decision.files)} file(s)" + (f" ({deleted} deleted)" if deleted else "")
            self.app.say(f"synced {what} of {image.name} to {len(targets)} container(s){caught_up} "
                         f"in {(time.monotonic() - started) * 1000:.0f} ms")
            self.record()
            self.shells_of(image).keep(targets)  # a container synced by a one-shot exec has a shell next time

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[None]:
        """While a rebuild rolls out, new containers run the new image: give them nothing."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def catch_up(self) -> None:
        """Give containers started since the last sync the overlay (a restart loses it); KitError says why not."""
        with self.lock:
            if self.paused:
                return
            for image in self.app.settings.images:
                if not self.overlays.get(image.name):
                    continue
                targets = [t for t in self.targets(image, strict=False) if t.key not in self.carried.get(image.name, set())]
                if targets:
                    self.push(image, targets, set())
                    self.app.say(f"live update: gave {len(targets)} new container(s) of {image.name} the synced files")
                    self.record()
        self.warm()  # new containers get a shell too

    def reset(self) -> None:
        """A new image was deployed: the containers run it as built."""
        with self.lock:
            self.overlays.clear()
            self.carried.clear()
            self.stale = False
            self.record()

    @property
    def active(self) -> bool:
        """Some containers run files the deployed image does not have: only a rebuild converges."""
        return any(self.overlays.values())

    def plan(self, images: Iterable[str], paths: Iterable[str]) -> tuple[list[tuple[config.Image, liveupdate.Decision]], str]:
        """The syncs that answer this batch instead of a rebuild, or ([], why it must rebuild; "" without rules)."""
        planned = decisions(self.app, images, paths)
        if not any(image.live_update for image, _ in planned):
            return [], ""
        if self.stale:
            return [], "a container could not be given the synced files"
        why = next((decision.rebuild for _, decision in planned if not decision.sync), "")
        if why:
            return [], why
        return planned, ""

    def targets(self, image: config.Image, strict: bool = True) -> list[liveupdate.Target]:
        pods = self.feed.pods()
        if pods is None:
            connected = self.feed.connected()
            pods = rollout.list_json(self.app, self.app.kubectl("get", "pods", "-l", selector(self.app), "-o", "json"),
                                     "pods")
            self.feed.seed(pods, connected)
            self.listed = pods
        targets, problems = liveupdate.running_containers(pods, repository(self.app, image))
        if strict and problems:
            raise KitError("; ".join(problems))
        if strict and not targets:
            raise KitError(f"no running container of {image.name} to sync into")
        return targets

    def push(self, image: config.Image, targets: Iterable[liveupdate.Target], batch: set[str]) -> int:
        """Send each container the batch, or the whole overlay if it is new; the count of new ones."""
        live = image.live_update
        run = live.run if live else ""
        overlay = self.overlays[image.name].files
        carried = self.carried.setdefault(image.name, set())
        jobs = [(t, batch if t.key in carried else set(overlay)) for t in targets]
        results = self._parallel(image, jobs, overlay, run)
        failures = [failure_reason(t, code, said, run) for (t, _), (code, said) in zip(jobs, results, strict=True) if code]
        if failures:
            more = f" (and {len(failures) - 1} more container(s))" if len(failures) > 1 else ""
            raise KitError(failures[0] + more)
        carried.update(t.key for t, _ in jobs)
        return sum(1 for t, dests in jobs if dests is not batch)

    def _parallel(self, image: config.Image, jobs: list[tuple[liveupdate.Target, set[str]]],
                  overlay: dict[str, str | None], run: str) -> list[liveshell.Answer]:
        """Each job through the shell kept open in its container, else a one-shot exec: (exit code, output)."""
        shells = self.shells_of(image)

        def one(target: liveupdate.Target, dests: set[str]) -> liveshell.Answer:
            present = {d: str(overlay[d]) for d in dests if overlay.get(d)}
            deleted = sorted(d for d in dests if not overlay.get(d))
            tar = tar_stream(present)
            answer = shells.ask(target, liveupdate.shell_request(tar, deleted, run)) if len(tar) <= SHELL_AT_MOST else None
            if answer is not None:
                return answer
            done = shell.feed(self.app.c, exec_argv(self.app, target, deleted, run), tar)
            return done.exited, done.stderr

        from concurrent.futures import ThreadPoolExecutor  # kept local for start-up time: only a sync needs it

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
            return list(pool.map(lambda job: one(*job), jobs))

    def record(self) -> None:
        """Which containers run live-updated files, for `inv k8s.status` (in .kit/, per environment)."""
        if shell.is_dry(self.app.c):
            return
        path = state_file(self.app)
        marks = {key.rsplit("/", 1)[0]: image for image, keys in self.carried.items() if self.overlays.get(image)
                 for key in keys}
        path.write_text(json.dumps(marks, indent=1) + "\n", encoding="utf-8")


def state_file(app: App, create: bool = True) -> Path:
    return app.state_path(f"live-{app.settings.env}.json", create)


def live_marks(app: App) -> dict[str, str]:
    """``pod-uid/container`` -> image, for containers running live-updated files (empty when none)."""
    try:
        return dict(json.loads(state_file(app, create=False).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def context_paths(app: App, image: config.Image, paths: Iterable[str]) -> list[str] | None:
    """``paths`` (absolute, or relative to the app folder) relative to the image's build context, posix;
    None when one lies outside the context."""
    found = []
    for path in paths:
        absolute = Path(path) if Path(path).is_absolute() else app.settings.root / path
        try:
            found.append(absolute.resolve().relative_to(image.context.resolve()).as_posix())
        except ValueError:
            return None
    return found


def decisions(app: App, images: Iterable[str], paths: Iterable[str]) -> list[tuple[config.Image, liveupdate.Decision]]:
    """Per image to be rebuilt: sync or rebuild, and why."""
    paths, found = list(paths), []
    for image in app.settings.images:
        if image.name not in images:
            continue
        inside = context_paths(app, image, paths)
        dockerfile = context_paths(app, image, [str(image.dockerfile)])
        if inside is None:
            found.append((image, liveupdate.Decision(image.name, rebuild="a changed file is outside its build context")))
            continue
        found.append((image, liveupdate.decide(image.name, image.live_update, inside, (dockerfile or [""])[0])))
    return found


class Feed:
    """While containers carry synced files, watch the app's pods: containers that start get the synced files, and
    the next sync finds its containers in what the watch holds instead of listing the pods again."""

    def __init__(self, app: App, live: LiveSync) -> None:
        self.app, self.live = app, live
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.feed: supervise.EventFeed | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.state = ClusterState()
        self.heard: int | None = None  # the feed's start count at its last event: that child is connected
        self.seeded: int | None = None  # the feed's start count when a listing taken after that seeded the state

    def ensure(self, listed: list[dict[str, Any]]) -> None:
        if self.thread is None and not shell.is_dry(self.app.c):
            feed = rollout.open_events(self.app, ["pods"], self.on_event, self.wake.set, listed, selector=selector(self.app))
            feed.open()
            self.feed = feed
            self.thread = threading.Thread(target=self._loop, daemon=True, name="live-update catch-up")
            self.thread.start()

    def on_event(self, event: Any) -> None:
        with self.lock:
            self.state.apply(event)
            self.heard = self.feed.starts if self.feed is not None else None
        self.wake.set()

    def pods(self) -> list[dict[str, Any]] | None:
        """The app's pods as the watch holds them; None until a listing taken once the watch was connected seeded
        them, and whenever its child ended since (it missed what happened meanwhile): then the caller lists them."""
        with self.lock:
            child = self._running_child()
            return self.state.items() if child is not None and self.seeded == child else None

    def connected(self) -> int | None:
        """The running watch child's number once it has spoken (it is connected), else None."""
        with self.lock:
            child = self._running_child()
            return child if child is not None and self.heard == child else None

    def seed(self, pods: list[dict[str, Any]], connected: int | None) -> None:
        """A listing taken while the watch child ``connected`` (from ``connected()`` just before) was connected: the
        state from now on, as every later change, deletions included, reaches it as an event."""
        with self.lock:
            if connected is not None and self._running_child() == connected:
                self.state.replace(pods)
                self.seeded = connected

    def _running_child(self) -> int | None:
        """The number of the watch child running now (the feed counts its starts), else None."""
        return self.feed.starts if self.feed is not None and self.feed.running() else None

    def _loop(self) -> None:
        while not self.stopped.is_set():
            if not self.wake.wait(1.0):
                if self.feed is not None:
                    self.feed.check()  # restart a dead kubectl child
                continue
            if self.stopped.wait(0.3):  # let a burst of pod events settle; close() ends the wait
                break
            self.wake.clear()
            try:
                self.live.catch_up()
            except KitError as exc:
                self.app.say(f"live update: {exc.message}; the next save rebuilds {', '.join(self.live.overlays)}")
                self.live.stale = True

    def close(self) -> None:
        self.stopped.set()
        self.wake.set()  # the loop sees it is stopped now, not at its next look
        if self.feed is not None:
            self.feed.close()
        if self.thread is not None:
            self.thread.join(timeout=2)


def converge(app: App) -> list[str]:
    """Workloads whose pods still run live-updated files (a watch session ended): restart them, rolling, so their
    pods run the image as built; a bare pod is deleted. Returns what was restarted or deleted."""
    marks = live_marks(app)
    if not marks:
        return []
    pods = rollout.list_json(app, app.kubectl("get", "pods", "-l", selector(app), "-o", "json"), "pods")
    uids = {key.split("/", 1)[0] for key in marks}
    marked = [p for p in pods if p["metadata"].get("uid") in uids and not p["metadata"].get("deletionTimestamp")]
    owners = sorted({o for o in map(liveupdate.pod_owner, marked) if o})
    bare = [f"pod/{p['metadata']['name']}" for p in marked if not liveupdate.pod_owner(p)]
    if owners or bare:
        app.say(f"live update: {', '.join(owners + bare)} still run synced files; restarting them on the image as built")
    if owners:
        app.run(app.kubectl("rollout", "restart", *owners))
    if bare:
        app.run(app.kubectl("delete", "--wait=false", *bare))
    if not shell.is_dry(app.c):
        state_file(app).unlink(missing_ok=True)
    return owners + bare
