"""Typed settings: the merged ``app`` configuration checked and resolved against the app's folder.

The keys, their defaults and the file checks live in ``schema`` (loaded when `inv` starts); this
module is loaded only by tasks that run.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KitError
from .schema import (  # noqa: F401  (re-exported: the configuration's public names live here too)
    DEFAULTS,
    DRIVERS,
    ENVIRONMENT_KEYS,
    IMAGE_KEYS,
    OPEN_MAPPINGS,
    PROVIDERS,
    DotenvFile,
    _suggest,
    check_yaml_file,
    env_override_problems,
    key_line,
    read_dotenv,
    unknown_keys,
    yaml_error,
)


@dataclass(frozen=True)
class Image:
    name: str
    context: Path
    dockerfile: Path
    build_args: dict[str, str]
    target: str = ""


@dataclass(frozen=True)
class Minikube:
    profile: str
    cpus: int
    memory: str
    driver: str
    disk_size: str
    kubernetes_version: str
    addons: tuple[str, ...]


@dataclass(frozen=True)
class Cluster:
    provider: str
    context: str
    allowed_contexts: tuple[str, ...]
    ip: str
    registry: str
    kind_name: str
    minikube: Minikube

    def context_allowed(self, context: str) -> bool:
        return any(fnmatch.fnmatchcase(context, pattern) for pattern in self.allowed_contexts)


@dataclass(frozen=True)
class Settings:
    root: Path
    name: str
    env: str
    namespace: str
    images: tuple[Image, ...]
    manifests: tuple[Path, ...]
    vars: dict[str, Any]
    workloads: tuple[str, ...]
    timeout: int
    selector: str
    since: str
    forwards: tuple[str, ...]
    watch_paths: tuple[Path, ...]
    watch_ignore: tuple[str, ...]
    debounce_ms: int
    max_delay_ms: int
    cluster: Cluster
    environments: tuple[str, ...] = field(default=())
    secrets: dict[str, str] = field(default_factory=dict)
    compose: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, Any] = field(default_factory=dict)
    helm: dict[str, Any] = field(default_factory=dict)

    def image(self, name: str) -> Image:
        for image in self.images:
            if image.name == name:
                return image
        known = ", ".join(i.name for i in self.images) or "none configured"
        raise KitError(f"no image named {name!r} in app.images (known: {known})",
                       hint="pick one of the configured images, or add it under app.images in invoke.yaml")


def _int(value: Any, key: str, problems: list[str]) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        problems.append(f"{key} must be a whole number, got {value!r}")
        return 0
    if number <= 0:
        problems.append(f"{key} must be greater than 0, got {value!r}")
    return number


def _mapping(value: Any, key: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    problems.append(f"{key} must be a mapping (key: value lines indented under it), got {value!r}")
    return {}


def _list(value: Any, key: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):  # "a, b" from the environment; a single item otherwise
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    problems.append(f"{key} must be a list, got {value!r}")
    return []


MEMORY_RE = re.compile(r"^\d+([bkmg]b?)?$", re.IGNORECASE)


def settings_from(app: Mapping[str, Any], root: Path, config_file: Path | None = None, env: str | None = None) -> Settings:
    """Check the merged ``app`` config and type it. Every problem is reported in one error."""
    problems: list[str] = []
    for dotted, suggestion in unknown_keys(app):
        line = key_line(config_file, dotted) if config_file else None
        where = f"{config_file}:{line}: " if line else ""
        problems.append(f"{where}unknown config key {dotted}{suggestion}")

    def get(key: str) -> Any:
        value = app.get(key, DEFAULTS[key])
        return DEFAULTS[key] if value is None else value

    configured_root = str(get("root") or "")
    root = (root / configured_root).resolve() if configured_root else root  # relative to the tasks.py folder

    def mapping(key: str) -> dict[str, Any]:
        return _mapping(get(key), f"app.{key}", problems)

    environments = mapping("environments")
    environments.setdefault("dev", {})
    env_name = env or str(get("env"))
    if env_name not in environments:
        problems.append(
            f"unknown environment {env_name!r}{_suggest(env_name, list(environments))} "
            f"(configured: {', '.join(sorted(environments))}); add it under app.environments in invoke.yaml"
        )
        env_conf: Mapping[str, Any] = {}
    else:
        env_conf = _mapping(environments[env_name], f"app.environments.{env_name}", problems)

    images: list[Image] = []
    for name, spec in mapping("images").items():
        spec = dict(IMAGE_KEYS, **_mapping(spec, f"app.images.{name}", problems))
        context = (root / str(spec["context"])).resolve()
        dockerfile = Path(str(spec["dockerfile"]))
        dockerfile = dockerfile if dockerfile.is_absolute() else context / dockerfile
        args = spec["build_args"] or {}
        if not isinstance(args, Mapping):
            problems.append(f"app.images.{name}.build_args must be a mapping NAME: value, got {args!r}")
            args = {}
        images.append(Image(str(name), context, dockerfile, {str(k): "" if v is None else str(v) for k, v in args.items()},
                            str(spec["target"] or "")))

    manifests = _list(env_conf.get("manifests") or get("manifests"), "app.manifests", problems)
    variables = mapping("vars")
    variables.update(_mapping(env_conf.get("vars"), f"app.environments.{env_name}.vars", problems))

    cluster = dict(DEFAULTS["cluster"], **mapping("cluster"))
    mk = dict(DEFAULTS["cluster"]["minikube"], **_mapping(cluster.get("minikube"), "app.cluster.minikube", problems))
    provider = str(cluster["provider"])
    if provider not in PROVIDERS:
        problems.append(f"app.cluster.provider is {provider!r}{_suggest(provider, list(PROVIDERS))}; use one of {', '.join(PROVIDERS)}")
    driver = str(mk["driver"] or "")
    if driver and driver not in DRIVERS:
        problems.append(f"app.cluster.minikube.driver {driver!r} is not a minikube driver{_suggest(driver, list(DRIVERS))} "
                        f"(known: {', '.join(DRIVERS)})")
    memory = str(mk["memory"]).strip()
    if not MEMORY_RE.match(memory):
        problems.append(f"app.cluster.minikube.memory must be a size like 2048 or 4g, got {mk['memory']!r}")

    watch = dict(DEFAULTS["watch"], **mapping("watch"))
    logs = dict(DEFAULTS["logs"], **mapping("logs"))
    name = str(get("name")) or root.name
    selector = str(logs["selector"]) or f"app={name}"

    settings = Settings(
        root=root,
        name=name,
        env=env_name,
        namespace=str(env_conf.get("namespace") or get("namespace") or ""),
        images=tuple(images),
        manifests=tuple(root / m for m in manifests),
        vars=variables,
        workloads=tuple(_list(get("workloads"), "app.workloads", problems)),
        timeout=_int(get("timeout"), "app.timeout", problems),
        selector=selector,
        since=str(logs["since"]),
        forwards=tuple(_list(get("forwards"), "app.forwards", problems)),
        watch_paths=tuple(root / p for p in _list(watch["paths"], "app.watch.paths", problems)),
        watch_ignore=tuple(_list(watch["ignore"], "app.watch.ignore", problems)),
        debounce_ms=_int(watch["debounce_ms"], "app.watch.debounce_ms", problems),
        max_delay_ms=_int(watch["max_delay_ms"], "app.watch.max_delay_ms", problems),
        cluster=Cluster(
            provider=provider,
            context=str(cluster["context"] or ""),
            allowed_contexts=tuple(_list(cluster["allowed_contexts"], "app.cluster.allowed_contexts", problems)),
            ip=str(cluster["ip"] or ""),
            registry=str(cluster["registry"] or "").rstrip("/"),
            kind_name=str(cluster["kind_name"] or "kind"),
            minikube=Minikube(
                profile=str(mk["profile"] or "minikube"),
                cpus=_int(mk["cpus"], "app.cluster.minikube.cpus", problems),
                memory=memory,
                driver=driver,
                disk_size=str(mk["disk_size"] or ""),
                kubernetes_version=str(mk["kubernetes_version"] or ""),
                addons=tuple(_list(mk["addons"], "app.cluster.minikube.addons", problems)),
            ),
        ),
        environments=tuple(sorted(environments)),
        secrets={str(k): str(v) for k, v in mapping("secrets").items()},
        compose=dict(DEFAULTS["compose"], **mapping("compose")),
        tls=dict(DEFAULTS["tls"], **mapping("tls")),
        helm=dict(DEFAULTS["helm"], **mapping("helm")),
    )
    if problems:
        where = f" ({config_file})" if config_file else ""
        raise KitError(
            f"the configuration has {len(problems)} problem(s){where}:\n" + "\n".join(f"  - {p}" for p in problems),
            hint="edit invoke.yaml (or the INVOKE_APP_* variable / .env line that sets it); `.env.example` lists every key",
            code=2,
        )
    return settings
