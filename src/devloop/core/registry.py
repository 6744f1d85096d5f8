"""A push registry seen from here: the URL that says whether it answers, and what the answer means.

Pure: the doctor asks the URL and passes the HTTP status (or the connection error) back in.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

OK_STATUSES = {200: "", 401: "login needed to push"}


def registry_host(registry: str) -> str:
    """``127.0.0.1:5000/team`` → ``127.0.0.1:5000``: the part Docker connects to."""
    return registry.split("/", 1)[0]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (with an optional port) is this machine: Docker talks plain HTTP to it by default."""
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def probe_url(registry: str) -> str:
    """The registry API's base (``/v2/``), over HTTP on loopback as Docker does (127.0.0.0/8 is insecure by
    default), over HTTPS elsewhere."""
    host = registry_host(registry)
    return f"{'http' if is_loopback(host) else 'https'}://{host}/v2/"


def verdict(registry: str, url: str, status: int | None, error: str = "") -> tuple[bool, str]:
    """(ok, detail-or-fix) for the doctor's row, from what ``GET url`` gave: an HTTP status, or None and why."""
    host = registry_host(registry)
    seen = "" if is_loopback(host) else " (asked from here; the Docker daemon's own view and push rights are not checked)"
    if status in OK_STATUSES:
        note = OK_STATUSES[status]
        extra = f"; {note}: docker login {host}" if note else ""
        return True, f"{url} answers (HTTP {status}){extra}{seen}"
    if status is not None:
        return False, (f"{url} answered HTTP {status}, not a registry's API: "
                       f"check app.cluster.registry ({registry})")
    return False, (f"{url} does not answer ({error or 'no response'}): start the registry at {host}, "
                   f"or point app.cluster.registry at one that runs")
