"""Docker Compose files read the way Compose reads them: ${VAR} interpolation, published ports, project
names, container readiness. Nothing here starts a process; tasks/compose.py runs compose and docker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KitError

VAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Published:
    """One host port a compose service publishes."""

    service: str
    host_ip: str  # "" = every interface (Docker binds 0.0.0.0)
    port: int
    target: str
    protocol: str = "tcp"
    spec: str = ""  # as written in the file, for messages

    @property
    def bind_host(self) -> str:
        return self.host_ip if self.host_ip and self.host_ip not in ("0.0.0.0", "::", "[::]") else "0.0.0.0"

    @property
    def shown(self) -> str:
        return f"{self.host_ip or '0.0.0.0'}:{self.port}"

    @property
    def local_url_host(self) -> str:
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "127.0.0.1") else self.bind_host


def interpolate(value: str, env: Mapping[str, str], where: str = "") -> str:
    """Compose's interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err},
    ${VAR:+alt}, ${VAR+alt}; `$$` is a literal `$`. An unset variable without default becomes ""."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        if match.group(3):
            return env.get(match.group(3), "")
        body = match.group(2)
        parsed = BRACED.match(body)
        if not parsed:
            raise KitError(f"{where}: invalid interpolation ${{{body}}}", hint="write ${NAME}, ${NAME:-default} or ${NAME:?message}",
                           code=2)
        name, op, arg = parsed.group(1), parsed.group(2) or "", parsed.group(3) or ""
        value = env.get(name)
        empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return interpolate(arg, env, where) if empty else str(value)
        if op.endswith("?"):
            if empty:
                raise KitError(f"{where}: {name} is required: {arg or 'it is not set'}",
                               hint=f"set {name} in .env or the shell (e.g. {name}=... inv compose.up)", code=2)
            return str(value)
        if op.endswith("+"):
            return "" if empty else interpolate(arg, env, where)
        return "" if value is None else value

    return VAR.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [interpolate_tree(item, env, where) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, f"{where}.{key}") for key, value in node.items()}
    return node


def _range(text: str, what: str) -> list[int]:
    start, sep, end = text.partition("-")
    try:
        first = int(start)
        last = int(end) if sep else first
    except ValueError:
        raise KitError(f"{what}: {text!r} is not a port or a port range", hint="write e.g. 3000 or 3000-3005", code=2) from None
    if not (0 < first <= last < 65536):
        raise KitError(f"{what}: {text!r} is outside 1-65535", hint="use a valid port", code=2)
    return list(range(first, last + 1))


def parse_port(service: str, spec: Any, where: str = "") -> list[Published]:
    """One entry of a service's `ports:` (short or long syntax) -> the host ports it publishes.

    A port with no host side ("3000", "127.0.0.1::3000") gets a random host port: nothing to check.
    """
    what = f"{where}service {service} port {spec!r}"
    if isinstance(spec, Mapping):
        published = spec.get("published")
        if published in (None, ""):
            return []
        protocol = str(spec.get("protocol") or "tcp")
        target = str(spec.get("target", ""))
        host_ip = str(spec.get("host_ip") or "")
        return [Published(service, host_ip, port, target, protocol, f"{published}:{target}")
                for port in _range(str(published), what)]
    text = str(spec).strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    host_ip = ""
    if text.startswith("["):  # [::1]:8080:80
        end = text.index("]")
        host_ip, text = text[1:end], text[end + 2:]
        parts = text.split(":")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise KitError(f"{what}: cannot read it", hint="write HOST_IP:HOST_PORT:CONTAINER_PORT", code=2)
    if len(parts) == 1 or not parts[0]:
        return []
    host_ports = _range(parts[0], what)
    targets = parts[1]
    return [Published(service, host_ip, port, targets, protocol, str(spec)) for port in host_ports]


def published_ports(data: Mapping[str, Any], where: str = "") -> list[Published]:
    """Every host port the file's services publish, in file order."""
    found: list[Published] = []
    services = data.get("services")
    if not isinstance(services, Mapping):
        raise KitError(f"{where}: no `services:` mapping", hint="a compose file lists its containers under services:", code=2)
    for name, service in services.items():
        for spec in (service or {}).get("ports") or []:
            found += parse_port(str(name), spec, f"{where}: " if where else "")
    return found


def project_name(base: str, preview: bool) -> str:
    """Compose project name: the dev and preview files get their own, so `down` of one never touches the other."""
    name = re.sub(r"[^a-z0-9_-]", "", base.lower()).lstrip("-_") or "app"
    return f"{name}-preview" if preview else name


ALLOCATED = re.compile(r"Bind for (\[?[0-9a-fA-F.:]*\]?):(\d+) failed: port is already allocated")
IN_USE = re.compile(r"listen tcp[46]? (\[?[0-9a-fA-F.:]*\]?):(\d+): bind: address already in use")


def port_conflict(output: str) -> tuple[str, int] | None:
    """Docker's "port is already allocated" / "address already in use" -> (host ip, port)."""
    for pattern in (ALLOCATED, IN_USE):
        match = pattern.search(output)
        if match:
            return match.group(1).strip("[]"), int(match.group(2))
    return None


# ---------------------------------------------------------------------------------------------
# Readiness


@dataclass
class Verdict:
    ready: list[str] = field(default_factory=list)
    how: dict[str, str] = field(default_factory=dict)  # ready service -> healthy / running, no healthcheck / exited 0
    waiting: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.waiting and not self.failed and bool(self.ready)


def service_of(container: Mapping[str, Any]) -> str:
    labels = (container.get("Config") or {}).get("Labels") or {}
    return str(labels.get("com.docker.compose.service") or str(container.get("Name", "?")).lstrip("/"))


def assess(containers: Sequence[Mapping[str, Any]]) -> Verdict:
    """`docker inspect` of the project's containers -> ready / waiting (why) / failed (why).

    Ready: running and healthy (or no healthcheck), or a one-shot container that exited 0.
    Failed: exited non-zero, unhealthy, or restarting (a crash loop).
    """
    verdict = Verdict()
    for container in containers:
        name = service_of(container)
        state = container.get("State") or {}
        status = str(state.get("Status", ""))
        health = (state.get("Health") or {}).get("Status")
        code = state.get("ExitCode", 0)
        if status == "running" and state.get("Restarting"):
            status = "restarting"
        if status == "exited":
            if code == 0:
                verdict.ready.append(name)
                verdict.how[name] = "exited 0"
            else:
                verdict.failed[name] = f"exited with code {code}"
        elif status == "restarting":
            verdict.failed[name] = f"keeps restarting (last exit code {code})"
        elif status == "dead":
            verdict.failed[name] = "is dead: " + str(state.get("Error") or "see docker logs")
        elif status == "running":
            if health in (None, "", "healthy"):
                verdict.ready.append(name)
                verdict.how[name] = "healthy" if health == "healthy" else "running, no healthcheck"
            elif health == "unhealthy":
                log = (state.get("Health") or {}).get("Log") or []
                last = str(log[-1].get("Output", "")).strip().splitlines() if log else []
                verdict.failed[name] = "is unhealthy" + (f": {last[-1]}" if last else "")
            else:
                verdict.waiting[name] = f"health {health}"
        else:
            verdict.waiting[name] = status or "unknown state"
    return verdict


def urls(published: list[Published], configured: str = "", preview: bool = False) -> list[str]:
    """The URL to print after `up --wait`: app.compose.url, else the preview's first published TCP port."""
    if configured:
        return [configured]
    if not preview:
        return []
    for port in published:
        if port.protocol == "tcp":
            return [f"http://{port.local_url_host}:{port.port}/"]
    return []


def compose_file(root: Path, configured: str, mode: str) -> Path:
    path = Path(configured)
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise KitError(f"compose file {path} not found (app.compose.{mode} is {configured!r})",
                       hint=f"create it, or point app.compose.{mode} at your compose file in invoke.yaml", code=2)
    return path
