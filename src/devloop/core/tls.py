"""Self-signed TLS for an Ingress host: where the files live, when a new certificate is due, the Secret object.

Pure: no process is started here. The certificate records the host it was made for in a small
metadata file next to it, so a changed host (a new minikube IP) is noticed and never served stale.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import KitError

CERT_DAYS = 365
RENEW_DAYS = 30  # a certificate this close to its end is made again
COMMON_NAME_MAX = 64  # X.509 upper bound for CN; longer hosts go in subjectAltName only
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SECRET_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class CertFiles:
    """One certificate's folder: ``.kit/tls/<env>/<secret>/``."""

    folder: Path

    @property
    def key(self) -> Path:
        return self.folder / "tls.key"

    @property
    def cert(self) -> Path:
        return self.folder / "tls.crt"

    @property
    def info(self) -> Path:
        return self.folder / "cert.json"

    @property
    def request_config(self) -> Path:
        return self.folder / "openssl.cnf"

    @property
    def secret(self) -> Path:
        return self.folder / "secret.yaml"

    def staged(self, path: Path) -> Path:
        """Where openssl writes first, so a failure leaves the previous certificate untouched."""
        return path.with_name(path.name + ".new")

    def present(self) -> bool:
        return self.key.is_file() and self.cert.is_file() and self.info.is_file()


@dataclass(frozen=True)
class CertInfo:
    """What ``cert.json`` records about a certificate the kit made."""

    host: str
    created: float
    not_after: float

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "created": self.created, "not_after": self.not_after}, indent=2) + "\n"


def cert_files(state_dir: Path, env: str, secret: str) -> CertFiles:
    return CertFiles(state_dir / "tls" / env / secret)


def new_info(host: str, now: float, days: int = CERT_DAYS) -> CertInfo:
    return CertInfo(host, now, now + days * 86400)


def read_info(text: str | None) -> CertInfo | None:
    """The recorded facts, or None when the file is missing or not the kit's (then a new certificate is made)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        return CertInfo(str(data["host"]), float(data["created"]), float(data["not_after"]))
    except (ValueError, KeyError, TypeError):
        return None


def renewal_reason(info: CertInfo | None, host: str, now: float, renew_days: int = RENEW_DAYS) -> str | None:
    """Why a new certificate is needed for ``host``, or None when the existing one still fits."""
    if info is None:
        return f"no certificate yet for {host}"
    if info.host != host:
        return f"the host changed: the certificate is for {info.host}, the Ingress host is now {host}"
    left = info.not_after - now
    if left <= 0:
        return f"the certificate for {host} expired on {day(info.not_after)}"
    if left < renew_days * 86400:
        return f"the certificate for {host} expires on {day(info.not_after)} (less than {renew_days} days left)"
    return None


def day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def check_host(host: str) -> None:
    """A DNS name (or an IP address) a certificate can be made for; anything else would break the request."""
    if is_ip(host):
        return
    labels = host.split(".")
    if not host or len(host) > 253 or not all(LABEL_RE.match(label) for label in labels):
        raise KitError(f"the Ingress host {host!r} is not a valid DNS name",
                       hint="use lowercase letters, digits, '-' and '.' (e.g. demoapp.192.168.49.2.nip.io); "
                            "fix app.tls.host in invoke.yaml", code=2)


def check_secret_name(name: str) -> None:
    if not SECRET_NAME_RE.match(name):
        raise KitError(f"the TLS secret name {name!r} is not a valid Kubernetes name",
                       hint="use lowercase letters, digits, '-' and '.'; fix app.tls.secret in invoke.yaml", code=2)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def request_config(host: str, fallback_name: str) -> str:
    """An openssl ``req`` config for a self-signed server certificate of ``host``.

    A config file (rather than ``-addext``) works with OpenSSL 1.1, 3.x and LibreSSL alike.
    """
    check_host(host)
    common_name = host if len(host) <= COMMON_NAME_MAX else fallback_name[:COMMON_NAME_MAX]
    alt = f"IP:{host}" if is_ip(host) else f"DNS:{host}"
    return "\n".join([
        "# Written by the kit for `inv tls.cert`: a self-signed certificate for one Ingress host.",
        "[req]",
        "prompt = no",
        "distinguished_name = dn",
        "x509_extensions = ext",
        "[dn]",
        f"CN = {common_name}",
        "O = devloop self-signed",
        "[ext]",
        f"subjectAltName = {alt}",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "extendedKeyUsage = serverAuth",
        "",
    ])


def openssl_argv(files: CertFiles, days: int = CERT_DAYS) -> list[str]:
    """Make a key and a self-signed certificate into the staged paths."""
    return ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", str(days),
            "-config", str(files.request_config), "-keyout", str(files.staged(files.key)),
            "-out", str(files.staged(files.cert))]


def secret_document(name: str, cert_pem: bytes, key_pem: bytes, namespace: str = "") -> dict[str, Any]:
    """The ``kubernetes.io/tls`` Secret holding a certificate and its key."""
    if b"-----BEGIN" not in cert_pem or b"-----BEGIN" not in key_pem:
        raise KitError(f"the certificate files for {name} are not PEM", hint="make them again: inv tls.cert --force")
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert_pem).decode("ascii"),
            "tls.key": base64.b64encode(key_pem).decode("ascii"),
        },
    }
