"""Docker access: the one place that asks the Docker daemon's API (through the docker SDK), with the docker CLI
through the funnel when the API cannot answer, and what the daemon's failures mean."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from devloop import shell as funnel
from devloop.core.errors import KitError, tail
from devloop.kit import App

DAEMON_DOWN = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")
# The CLI's last words when the daemon went away in the middle of a call (killed, restarted, out of memory).
# Matched on its last line only: a build step's own network error (curl: Connection reset by peer) comes
# before the CLI's "returned a non-zero code" line, so it is never taken for a lost daemon.
DAEMON_LOST = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    r"^unexpected EOF$",  # the legacy builder's progress stream cut off (what a SIGKILLed dockerd leaves)
    r"error reading from server: EOF|code = Unavailable desc",  # BuildKit's session with the daemon cut off
    r"^(read|write) (unix|tcp) .*(EOF|connection reset by peer|broken pipe)$",  # the daemon's socket closed
))
DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 10  # seconds for one API call; a daemon slower than that is asked through the CLI instead
T = TypeVar("T")


def where(env: dict[str, str]) -> str:
    """The daemon ``env`` (a build env: minikube's docker-env, or empty) points at, in words."""
    return "minikube's Docker daemon" if env else "the local Docker daemon"


def short(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def check_daemon_result(result: Any, during: str = "") -> None:
    """Raise the kit's error when a docker CLI result says the daemon is not there."""
    text = (result.stderr or "") + (result.stdout or "")
    if any(word in text for word in DAEMON_DOWN):
        message = f"the Docker daemon stopped answering during {during}" if during else "the Docker daemon is not reachable"
        raise KitError(message, evidence=tail(text, 3),
                       hint="start Docker (sudo systemctl start docker, or Docker Desktop), or check DOCKER_HOST")


def daemon_lost(result: Any) -> bool:
    """Whether a failed docker CLI call ended because the daemon went away under it."""
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    return bool(lines) and any(pattern.search(lines[-1]) for pattern in DAEMON_LOST)


def check_daemon_lost(result: Any, during: str, env: dict[str, str]) -> None:
    """Raise the kit's error when a docker CLI result says the daemon went away during the call."""
    if daemon_lost(result):
        raise KitError(f"the connection to {where(env)} was lost during {during}",
                       evidence=tail(result.stderr or "", 3),
                       hint="the daemon stopped or restarted in the middle (killed, out of memory, updated): check that "
                            "it answers (docker info; sudo systemctl status docker, or Docker Desktop), then run again")


def daemon_url(env: dict[str, str]) -> str | None:
    """The unix socket URL the docker CLI would talk to, when that is certain (else None: ask the CLI).

    Docker contexts, ssh:// and tcp:// (with TLS) are left to the CLI, which knows them all. Tests whose
    mock context scripts the CLI replace this with one that returns None.
    """
    host = env.get("DOCKER_HOST") or os.environ.get("DOCKER_HOST", "")
    if not host:
        if os.environ.get("DOCKER_CONTEXT") or _named_context():
            return None
        host = DEFAULT_HOST
    return host if host.startswith("unix://") else None


def _named_context() -> bool:
    """Whether the docker CLI's config selects a context other than the default one."""
    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("currentContext", "default") not in ("", "default")
    except (OSError, ValueError, AttributeError):
        return False


_clients: dict[str, Any] = {}  # daemon URL -> its SDK client, kept for the run
_clients_lock = threading.Lock()


def _ask(url: str, call: Callable[[Any], T]) -> tuple[bool, T | None]:
    """``call(client)`` with the SDK client of the daemon at ``url``: (answered, what it returned).

    The client is made once and kept (making one costs ~7 ms, a call on it ~1 ms); calls take turns, as a watch
    cycle's build thread asks too. Any failure is "not answered" and drops the client: the next call makes a new one.
    """
    # Local for start-up time: importing the SDK costs ~100 ms, and `inv --list` must stay fast.
    import docker.errors

    with _clients_lock:
        try:
            client = _clients.get(url) or _clients.setdefault(url, docker.DockerClient(base_url=url, timeout=TIMEOUT))
            return True, call(client)
        except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors: the socket went away
            dropped = _clients.pop(url, None)
            if dropped is not None:
                dropped.close()
            return False, None


def ask_image_id(url: str, ref: str) -> tuple[bool, str | None]:
    """Ask the daemon's API for ``ref``: (answered, image ID or None when it has no such image).

    The same question as `docker image inspect`, without starting the CLI.
    """
    import docker.errors  # local for start-up time (see _ask)

    def inspect(client: Any) -> str | None:
        try:
            return str(client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    return _ask(url, inspect)


def image_id(app: App, ref: str, env: dict[str, str] | None = None) -> str | None:
    """The image ID of ``ref`` in the daemon ``env`` points at, or None when it has no such image."""
    url = daemon_url(env or {})
    if url:
        answered, found = ask_image_id(url, ref)
        if answered:
            app.say(f"· docker API: image inspect {ref} ({url}): {found or 'no such image'}")
            return found
    result = app.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], query=True, capture=True,
                     check=False, env=env)
    if result.exited != 0:
        check_daemon_result(result)
        return None
    return str(result.stdout.strip()) or None


def ask_tag(url: str, image: str, ref: str) -> bool:
    """Tag ``image`` (an ID) as ``ref`` through the daemon's API; False when the API did not do it."""
    repository, _, tag = ref.rpartition(":")
    answered, done = _ask(url, lambda client: bool(client.api.tag(image, repository, tag, force=True)))
    return answered and bool(done)


def tag_image(app: App, image: str, ref: str, env: dict[str, str] | None = None) -> None:
    """Tag the image ``image`` (an ID) as ``ref`` in the daemon ``env`` points at."""
    url = daemon_url(env or {})
    if url and ask_tag(url, image, ref):
        app.say(f"· docker API: tag {short(image)} {ref} ({url})")
        return
    result = app.run(["docker", "tag", image, ref], capture=True, check=False, env=env)
    if result.exited != 0:
        check_daemon_result(result)
        raise KitError(f"could not tag image {short(image)} as {ref}", evidence=tail(result.stderr or "", 3),
                       hint="check that the Docker daemon answers (docker info), then save again or run inv up", code=1)


def server_version() -> str:
    """The daemon's version through the API (a ping, no process; DOCKER_HOST is honoured), or ""."""
    # Local for start-up time: importing the SDK costs ~100 ms, and `inv --list` must stay fast.
    import docker

    funnel.say(f"· docker API: version ({os.environ.get('DOCKER_HOST') or DEFAULT_HOST})")
    try:
        client = docker.from_env(timeout=5)
        try:
            return str(client.version().get("Version") or "")
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure to reach the daemon is the answer "not reachable"
        return ""
