"""Docker Compose: the dev compose (middleware only) and the preview compose (the whole app), with the
published ports checked before `up` and `up --wait` waiting for health. Works with `docker compose`
(v2) or `docker-compose` (v1), whichever is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

from invoke import Collection, Context

from devloop.core import compose as core
from devloop.core import ports
from devloop.core.errors import KitError, tail
from devloop.core.schema import check_yaml_file, read_dotenv
from devloop.kit import App, kit_task, shown_path
from devloop.shell import INSTALL_HINTS, is_dry

POLL_SECONDS = 0.5


class Target(NamedTuple):
    file: Path
    project: str
    mode: str  # dev | preview

    @property
    def preview(self) -> bool:
        return self.mode == "preview"


def compose_command(app: App) -> list[str]:
    """`docker compose` when the v2 plugin answers, else `docker-compose` (v1); found once per run."""
    def compute() -> list[str]:
        if shutil.which("docker"):
            probe = app.run(["docker", "compose", "version", "--short"], query=True, capture=True, check=False, quiet=True)
            if probe.exited == 0 and probe.stdout.strip():
                return ["docker", "compose"]
        if shutil.which("docker-compose"):
            return ["docker-compose"]
        raise KitError("Docker Compose is not installed: neither `docker compose` (v2) nor `docker-compose` (v1) answers",
                       hint=INSTALL_HINTS["docker-compose"], code=127)

    return list(app.fact("compose_command", compute))


def target(app: App, preview: bool) -> Target:
    mode = "preview" if preview else "dev"
    settings = app.settings
    path = core.compose_file(settings.root, str(settings.compose.get(mode) or ""), mode)
    base = str(settings.compose.get("project") or settings.name)
    return Target(path, core.project_name(base, preview), mode)


def base_argv(app: App, t: Target) -> list[str]:
    return [*compose_command(app), "-f", shown_path(t.file), "-p", t.project]


def read_file(t: Target) -> dict[str, Any]:
    """The compose file as Compose sees it: YAML (errors with line numbers), then ${VAR} interpolation."""
    data = check_yaml_file(t.file)
    env = dict(read_dotenv(t.file.parent / ".env").values)
    env.update(os.environ)
    return dict(core.interpolate_tree(data, env, str(t.file)))


def container_on(app: App, port: int) -> tuple[str, str] | None:
    """(container name, compose project) of a container publishing ``port``, if Docker has one."""
    result = app.run(["docker", "ps", "--filter", f"publish={port}", "--format",
                      '{{.Names}}\t{{.Label "com.docker.compose.project"}}'], query=True, capture=True, check=False)
    for line in (result.stdout or "").splitlines():
        name, _, project = line.partition("\t")
        if name.strip():
            return name.strip(), project.strip()
    return None


def check_ports(app: App, t: Target, published: list[core.Published]) -> None:
    """Before `up`: every published host port must be free (or already ours), else name who holds it."""
    problems: list[str] = []
    fixes: list[str] = []
    for port in published:
        if port.protocol != "tcp" or ":" in port.bind_host or ports.port_free(port.port, port.bind_host):
            continue
        owner = container_on(app, port.port)
        if owner and owner[1] == t.project:
            continue  # our own container from an earlier `up`: compose keeps or recreates it
        what = f"service {port.service}, {port.spec!r}"
        if owner:
            of = f" of compose project {owner[1]}" if owner[1] else ""
            problems.append(f"local port {port.port} ({what}) is already published by container {owner[0]}{of}")
            fixes.append(f"stop it (docker stop {owner[0]}"
                         + (f", or docker compose -p {owner[1]} down" if owner[1] else "") + ")")
        else:
            who = ports.holder(port.port)
            problems.append(ports.taken_message(port.port, who, what))
            fixes.append(ports.stop_hint(who, port.port))
    if problems:
        raise KitError(f"{len(problems)} port(s) that {t.file.name} publishes are already in use — "
                       "Docker would fail with \"port is already allocated\":\n" + "\n".join(f"  - {p}" for p in problems),
                       hint="; ".join(dict.fromkeys(fixes)) + f"; or change the host port in {t.file.name}",
                       code=1)


def explain_up_failure(app: App, t: Target, output: str, code: int) -> KitError:
    conflict = core.port_conflict(output)
    if conflict:
        host, port = conflict
        owner = container_on(app, port)
        who = f"container {owner[0]}" if owner else ports.holder(port)
        fix = f"docker stop {owner[0]}" if owner else ports.stop_hint(who, port)
        return KitError(ports.taken_message(port, who, f"{host or '0.0.0.0'}:{port} for {t.file.name}"),
                        evidence=tail(output, 6), hint=f"{fix}; then inv compose.up again", code=1)
    return KitError(f"compose up failed for {t.file.name} (exit {code})", evidence=tail(output, 12),
                    hint=f"fix what Compose says above; `inv compose.logs{' --preview' if t.preview else ''}` "
                         "shows the services' output", code=code if 0 < code < 126 else 1)


def wait_healthy(app: App, t: Target, timeout: int | None) -> None:
    """Poll the project's containers until each is running and healthy (or exited 0)."""
    seconds = timeout or app.settings.timeout
    if is_dry(app.c):
        app.say(f"would wait up to {seconds}s for the {t.project} services to be healthy (--dry)")
        return
    deadline = time.monotonic() + seconds
    ps = [*base_argv(app, t), "ps", "-q"]
    app.say(f"$ {' '.join(ps)} | xargs docker inspect    # polled every {POLL_SECONDS}s until healthy")
    shown: set[str] = set()
    while True:
        ids = app.run(ps, query=True, capture=True, check=False, quiet=True).stdout.split()
        containers: list[dict[str, Any]] = []
        if ids:
            inspected = app.run(["docker", "inspect", *ids], query=True, capture=True, check=False, quiet=True)
            if inspected.exited == 0:
                containers = json.loads(inspected.stdout or "[]")
        verdict = core.assess(containers) if containers else core.Verdict(waiting={t.project: "no containers yet"})
        for service, why in verdict.waiting.items():
            if f"{service}: {why}" not in shown:
                shown.add(f"{service}: {why}")
                app.say(f"  waiting: {service}: {why}")
        if verdict.failed:
            ids_by_service = {core.service_of(c): str(c.get("Id", "")) for c in containers}
            lines = []
            for service, why in verdict.failed.items():
                lines.append(f"  {service} {why}")
                log = app.run(["docker", "logs", "--tail", "10", ids_by_service.get(service, service)],
                              query=True, capture=True, check=False, quiet=True)
                lines += [f"    | {x}" for x in ((log.stdout or "") + (log.stderr or "")).rstrip().splitlines()[-10:]]
            raise KitError("compose services failed:\n" + "\n".join(lines),
                           hint=f"fix the service; inv compose.logs{' --preview' if t.preview else ''} shows all output")
        if verdict.done:
            app.say("ready: " + ", ".join(f"{name} ({verdict.how.get(name, 'ready')})" for name in verdict.ready))
            return
        if time.monotonic() >= deadline:
            waiting = "\n".join(f"  - {s}: {w}" for s, w in verdict.waiting.items())
            raise KitError(f"the {t.project} services are not healthy after {seconds}s:\n{waiting}",
                           hint="see inv compose.logs; raise --timeout (or app.timeout) if they are just slow")
        time.sleep(POLL_SECONDS)


def print_endpoints(app: App, t: Target, published: list[core.Published]) -> None:
    for port in published:
        print(f"{port.service}: {port.local_url_host}:{port.port} -> {port.target}/{port.protocol}")
    for url in core.urls(published, str(app.settings.compose.get("url") or ""), t.preview):
        print(f"open: {url}")


# -- tasks --------------------------------------------------------------------------------------

PREVIEW_HELP = "the preview compose (the whole app, app.compose.preview) instead of the dev one (app.compose.dev)"


@kit_task(help={"preview": PREVIEW_HELP, "detach": "run in the background (-d)",
                "wait": "run in the background and wait until every service is healthy, then print the URL",
                "build": "rebuild images that have a build: section",
                "timeout": "seconds --wait waits (default app.timeout)"})
def up(c: Context, preview: bool = False, detach: bool = False, wait: bool = False, build: bool = False,
       timeout: int | None = None) -> None:
    """Start the compose services, ports checked first."""
    app = App.load(c)
    t = target(app, preview)
    published = core.published_ports(read_file(t), str(t.file))
    check_ports(app, t, published)
    argv = [*base_argv(app, t), "up", *(["-d"] if detach or wait else []), *(["--build"] if build else [])]
    result = app.run(argv, check=False)
    if result.exited != 0:
        raise explain_up_failure(app, t, (result.stdout or "") + (result.stderr or ""), result.exited)
    if wait:
        wait_healthy(app, t, timeout)
    if detach or wait:
        print_endpoints(app, t, published)


@kit_task(help={"preview": PREVIEW_HELP, "volumes": "also remove the services' volumes (their data is lost)"})
def down(c: Context, preview: bool = False, volumes: bool = False) -> None:
    """Stop and remove the compose services."""
    app = App.load(c)
    t = target(app, preview)
    app.run([*base_argv(app, t), "down", *(["--volumes"] if volumes else [])])


@kit_task(help={"preview": PREVIEW_HELP, "follow": "keep following new output (Ctrl-C ends)",
                "service": "only this service", "tail": "only the last N lines of each service"})
def logs(c: Context, preview: bool = False, follow: bool = False, service: str | None = None,
         tail: int | None = None) -> None:
    """Show the compose services' output."""
    app = App.load(c)
    t = target(app, preview)
    argv = [*base_argv(app, t), "logs", *(["--follow"] if follow else []), *(["--tail", str(tail)] if tail else [])]
    app.run(argv + ([service] if service else []))


@kit_task(help={"preview": PREVIEW_HELP})
def ps(c: Context, preview: bool = False) -> None:
    """List the compose services and their state."""
    app = App.load(c)
    t = target(app, preview)
    app.run([*base_argv(app, t), "ps"])


ns = Collection("compose")
for _t in (up, down, logs, ps):
    ns.add_task(_t)
