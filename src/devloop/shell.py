"""The one funnel for every subprocess: echo with secrets masked, honour --dry, failures as KitError.

Nothing else in the kit calls ``c.run`` or ``subprocess``. Commands are argv lists; the echoed line
is the exact command, quoted for a POSIX shell, so it can be copied and run by hand.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from invoke import Context
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result

from devloop.core.errors import KitError, tail

_SECRETS: set[str] = set()
# Set on Ctrl-C by a long-running task (inv watch/dev): no new command starts while it unwinds.
STOPPING = threading.Event()
SECRET_NAME_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE", "CREDENTIAL", "MASTER_KEY",
                     "_KEY", "_PAT")

INSTALL_HINTS = {
    "docker": "install Docker (Debian: apt-get install docker.io) and start the daemon",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/) or put it on PATH",
    "minikube": "install minikube (https://minikube.sigs.k8s.io/docs/start/) or set app.cluster.provider to kind/docker/registry",
    "kind": "install kind (https://kind.sigs.k8s.io/) or set app.cluster.provider",
    "helm": "install Helm 3 (https://helm.sh/docs/intro/install/)",
    "openssl": "install openssl (Debian: apt-get install openssl)",
    "docker-compose": "install Docker Compose (Debian: apt-get install docker-compose) or the docker compose plugin",
}


NOT_SECRET = {"true", "false", "none", "null", "yes", "no"}


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever the kit prints a command, an error or a log line.

    Values under 3 characters are not masked: hiding every "ab" in all output would garble it and
    protect nothing (so short values are no secrets; the README says so).
    """
    if value and len(value) >= 3 and value.lower() not in NOT_SECRET:
        _SECRETS.add(value)


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_NAME_WORDS)


def register_secrets_from_env(environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if looks_secret(name):
            register_secret(value)


def mask(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def say(message: str) -> None:
    """A progress line from the kit (stderr, so stdout stays clean for rendered YAML)."""
    print(mask(message), file=sys.stderr, flush=True)


class Masking:
    """A text stream that writes to ``target`` with every registered secret replaced by ****."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(mask(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.target, "isatty", lambda: False)())


def is_dry(c: Context) -> bool:
    try:
        return bool(c.config.run.dry)
    except AttributeError:
        return False


def announce(c: Context, shown: str, *, changes: bool = True, quiet: bool = False) -> bool:
    """Echo a command before it runs (``shown`` already masked); True when ``--dry`` means it must not run."""
    if STOPPING.is_set():
        stopping()
    if is_dry(c) and changes:
        say(f"$ {shown}    # --dry: not run")
        return True
    if not quiet:
        say(f"$ {shown}")
    return False


def run(
    c: Context,
    argv: Sequence[str],
    *,
    query: bool = False,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    interactive: bool = False,
    hint: str = "",
    quiet: bool = False,
    timeout: float | None = None,
) -> Result:
    """Run ``argv`` through invoke, echoing it first.

    ``query`` marks a read-only command: it runs even under ``--dry`` so plans are real.
    Anything else only prints under ``--dry``. ``capture`` hides the output (still returned).
    ``timeout``: the command is killed (and reaped) after that many seconds; the result has exit 124.
    """
    command = shlex.join(argv)
    # Show the environment that changes what a command talks to (minikube docker-env).
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items() if k.startswith("DOCKER_"))
    shown = mask(f"{prefix} {command}".strip())
    if announce(c, shown, changes=not query, quiet=quiet):
        return Result(command=command, exited=0, stdout="", stderr="")
    streams: dict[str, Any] = {}
    if _SECRETS and not capture and not interactive:  # output shown live is masked too
        streams = {"out_stream": Masking(sys.stdout), "err_stream": Masking(sys.stderr)}
    try:
        result = c.run(
            command,
            warn=True,
            hide=capture,
            echo=False,
            env=dict(env or {}),
            pty=interactive,
            in_stream=None if interactive else False,
            dry=False,
            timeout=timeout,
            **streams,
        )
    except CommandTimedOut as exc:  # invoke killed it; the result says so like any failure
        result = Result(command=command, exited=124, stdout=exc.result.stdout,
                        stderr=f"{exc.result.stderr}no answer within {timeout:.0f}s\n")
    if result is None:  # pragma: no cover - only with asynchronous/disown, which the kit never uses
        raise KitError(f"no result from {shown}")
    missing_tool = result.exited == 127 and "not found" in (result.stderr or "")
    if result.exited != 0 and (check or missing_tool):  # a missing tool is never an expected outcome
        raise failure(argv, result.exited, result.stderr or result.stdout, hint)
    return result


def stopping() -> None:
    """The main thread unwinds as on Ctrl-C; a helper thread gets an error it already handles."""
    if threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt
    raise KitError("stopping: no new command starts", code=130)


def failure(argv: Sequence[str], code: int, output: str, hint: str = "") -> KitError:
    tool = os.path.basename(argv[0])
    if code == 127 and ("not found" in output or not output.strip()):
        return KitError(f"{tool} not found", hint=INSTALL_HINTS.get(tool, f"install {tool} or put it on PATH"), code=127)
    return KitError(
        f"command failed (exit {code}): {mask(shlex.join(argv))}",
        evidence=mask(tail(output)),
        hint=hint,
        code=code if 0 < code < 126 else 1,
    )


def spawn(c: Context, argv: Sequence[str], *, env: Mapping[str, str] | None = None, quiet: bool = False,
          **popen: Any) -> subprocess.Popen[str] | None:
    """Start a long-running child (log follower, port-forward) the caller supervises.

    Returns None under ``--dry``. The child gets its own process group so Ctrl-C handling stays
    with the kit, which stops it explicitly.
    """
    if STOPPING.is_set():
        return None  # stopping: start nothing new (supervisors treat it like --dry)
    shown = mask(shlex.join(argv))
    if is_dry(c):
        say(f"$ {shown}    # --dry: not run")
        return None
    if not quiet:
        say(f"$ {shown} &")
    full_env = dict(os.environ, **(env or {}))
    try:
        return subprocess.Popen(list(argv), env=full_env, text=True, start_new_session=True, **popen)
    except FileNotFoundError:
        tool = os.path.basename(argv[0])
        raise KitError(f"{tool} not found", hint=INSTALL_HINTS.get(tool, f"install {tool}"), code=127) from None


def feed(c: Context, argv: Sequence[str], data: bytes, *, quiet: bool = False, timeout: float = 60) -> Result:
    """Run ``argv`` with ``data`` on its stdin (a tar stream into ``kubectl exec``), its output captured.

    Echoed and ``--dry``-aware like ``run``; a non-zero exit is returned, not raised: the caller names it.
    """
    command = shlex.join(argv)
    if announce(c, mask(command) + " < (tar stream)", quiet=quiet):
        return Result(command=command, exited=0, stdout="", stderr="")
    try:
        done = subprocess.run(list(argv), input=data, capture_output=True, timeout=timeout, start_new_session=True)
    except FileNotFoundError:
        tool = os.path.basename(argv[0])
        raise KitError(f"{tool} not found", hint=INSTALL_HINTS.get(tool, f"install {tool}"), code=127) from None
    except subprocess.TimeoutExpired:
        return Result(command=command, exited=124, stdout="", stderr=f"no answer within {timeout:.0f}s")
    return Result(command=command, exited=done.returncode, stdout=done.stdout.decode("utf-8", "replace"),
                  stderr=done.stderr.decode("utf-8", "replace"))
