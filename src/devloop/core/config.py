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

from . import liveupdate
from .errors import KitError
from .liveupdate import LiveUpdate
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
    live_update: LiveUpdate | None = None  # sync rules for inv watch/dev (core/liveupdate.py)


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
    job_keep: int = 3  # finished Jobs no longer rendered that up keeps, newest first
    rerun_jobs: bool = True  # a changed Job is deleted and created again (this environment's choice)

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


@dataclass
class _Reader:
    """The merged ``app`` mapping with its defaults; every problem found while reading is kept in ``problems``."""

    app: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def get(self, key: str) -> Any:
        value = self.app.get(key, DEFAULTS[key])
        return DEFAULTS[key] if value is None else value

    def mapping(self, key: str) -> dict[str, Any]:
        return _mapping(self.get(key), f"app.{key}", self.problems)

    def section(self, key: str) -> dict[str, Any]:
        """A section's keys over their defaults (app.cluster, app.watch, app.logs…)."""
        return dict(DEFAULTS[key], **self.mapping(key))

    def number(self, value: Any, key: str) -> int:
        return _int(value, key, self.problems)

    def items(self, value: Any, key: str) -> list[str]:
        return _list(value, key, self.problems)


def _unknown_key_problems(app: Mapping[str, Any], config_file: Path | None) -> list[str]:
    problems = []
    for dotted, suggestion in unknown_keys(app):
        line = key_line(config_file, dotted) if config_file else None
        where = f"{config_file}:{line}: " if line else ""
        problems.append(f"{where}unknown config key {dotted}{suggestion}")
    return problems


def _environment(r: _Reader, env: str | None) -> tuple[str, Mapping[str, Any], tuple[str, ...]]:
    """The chosen environment's name and its own keys, and every configured environment (dev always)."""
    environments = r.mapping("environments")
    environments.setdefault("dev", {})
    name = env or str(r.get("env"))
    if name not in environments:
        said = f"unknown environment {name!r}" if env else f"app.env is {name!r}, an unknown environment"  # --env, or not
        r.problems.append(
            f"{said}{_suggest(name, list(environments))} "
            f"(configured: {', '.join(sorted(environments))}); add it under app.environments in invoke.yaml"
        )
        return name, {}, tuple(sorted(environments))
    return name, _mapping(environments[name], f"app.environments.{name}", r.problems), tuple(sorted(environments))


def _image(name: str, given: Any, root: Path, problems: list[str]) -> Image:
    spec = dict(IMAGE_KEYS, **_mapping(given, f"app.images.{name}", problems))
    context = (root / str(spec["context"])).resolve()
    dockerfile = Path(str(spec["dockerfile"]))
    dockerfile = dockerfile if dockerfile.is_absolute() else context / dockerfile
    args = spec["build_args"] or {}
    if not isinstance(args, Mapping):
        problems.append(f"app.images.{name}.build_args must be a mapping NAME: value, got {args!r}")
        args = {}
    return Image(name, context, dockerfile, {str(k): "" if v is None else str(v) for k, v in args.items()},
                 str(spec["target"] or ""), liveupdate.parse(spec["live_update"], f"app.images.{name}.live_update", problems))


def _images(r: _Reader, root: Path) -> tuple[Image, ...]:
    return tuple(_image(str(name), spec, root, r.problems) for name, spec in r.mapping("images").items())


def _manifests_and_vars(r: _Reader, root: Path, env_name: str, env_conf: Mapping[str, Any]) -> dict[str, Any]:
    """The environment's manifests (or app.manifests) and app.vars with the environment's vars over them."""
    manifests = r.items(env_conf.get("manifests") or r.get("manifests"), "app.manifests")
    variables = r.mapping("vars")
    variables.update(_mapping(env_conf.get("vars"), f"app.environments.{env_name}.vars", r.problems))
    return {"manifests": tuple(root / m for m in manifests), "vars": variables}


def _minikube(r: _Reader, given: Any) -> Minikube:
    mk = dict(DEFAULTS["cluster"]["minikube"], **_mapping(given, "app.cluster.minikube", r.problems))
    driver = str(mk["driver"] or "")
    if driver and driver not in DRIVERS:
        r.problems.append(f"app.cluster.minikube.driver {driver!r} is not a minikube driver"
                          f"{_suggest(driver, list(DRIVERS))} (known: {', '.join(DRIVERS)})")
    memory = str(mk["memory"]).strip()
    if not MEMORY_RE.match(memory):
        r.problems.append(f"app.cluster.minikube.memory must be a size like 2048 or 4g, got {mk['memory']!r}")
    return Minikube(
        profile=str(mk["profile"] or "minikube"),
        cpus=r.number(mk["cpus"], "app.cluster.minikube.cpus"),
        memory=memory,
        driver=driver,
        disk_size=str(mk["disk_size"] or ""),
        kubernetes_version=str(mk["kubernetes_version"] or ""),
        addons=tuple(r.items(mk["addons"], "app.cluster.minikube.addons")),
    )


def _cluster(r: _Reader) -> Cluster:
    cluster = r.section("cluster")
    provider = str(cluster["provider"])
    if provider not in PROVIDERS:
        r.problems.append(f"app.cluster.provider is {provider!r}{_suggest(provider, list(PROVIDERS))}; "
                          f"use one of {', '.join(PROVIDERS)}")
    return Cluster(
        provider=provider,
        context=str(cluster["context"] or ""),
        allowed_contexts=tuple(r.items(cluster["allowed_contexts"], "app.cluster.allowed_contexts")),
        ip=str(cluster["ip"] or ""),
        registry=str(cluster["registry"] or "").rstrip("/"),
        kind_name=str(cluster["kind_name"] or "kind"),
        minikube=_minikube(r, cluster.get("minikube")),
    )


def _watch(r: _Reader, root: Path) -> dict[str, Any]:
    watch = r.section("watch")
    return {"watch_paths": tuple(root / p for p in r.items(watch["paths"], "app.watch.paths")),
            "watch_ignore": tuple(r.items(watch["ignore"], "app.watch.ignore")),
            "debounce_ms": r.number(watch["debounce_ms"], "app.watch.debounce_ms"),
            "max_delay_ms": r.number(watch["max_delay_ms"], "app.watch.max_delay_ms")}


def _logs(r: _Reader, name: str) -> dict[str, Any]:
    logs = r.section("logs")
    return {"selector": str(logs["selector"]) or f"app={name}", "since": str(logs["since"])}


def _rollout(r: _Reader) -> dict[str, Any]:
    """What `up` waits for and how long, and the ports it forwards."""
    return {"workloads": tuple(r.items(r.get("workloads"), "app.workloads")),
            "timeout": r.number(r.get("timeout"), "app.timeout"),
            "forwards": tuple(r.items(r.get("forwards"), "app.forwards"))}


def _converge(r: _Reader, env_name: str, env_conf: Mapping[str, Any]) -> dict[str, Any]:
    """What up does with what the manifests dropped or changed: finished Jobs kept, changed Jobs rerun."""
    keep = r.get("job_keep")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        r.problems.append(f"app.job_keep must be a whole number, 0 or more, got {keep!r}")
        keep = 0
    given = env_conf.get("rerun_jobs")
    key = f"app.environments.{env_name}.rerun_jobs" if given is not None else "app.rerun_jobs"
    rerun = r.get("rerun_jobs") if given is None else given
    if not isinstance(rerun, bool):
        r.problems.append(f"{key} must be true or false, got {rerun!r}")
        rerun = True
    return {"job_keep": keep, "rerun_jobs": rerun}


def _extras(r: _Reader) -> dict[str, Any]:
    """The sections read by their own task modules: secrets, compose, tls, helm."""
    return {"secrets": {str(k): str(v) for k, v in r.mapping("secrets").items()},
            "compose": r.section("compose"), "tls": r.section("tls"), "helm": r.section("helm")}


def _located(problem: str, config_file: Path | None, from_env: Mapping[str, str]) -> str:
    """The problem with the variable that sets the key it names, or the file and line when invoke.yaml sets it."""
    key = problem.split(" ", 1)[0]
    if key in from_env:
        return f"{from_env[key]} (in the shell or .env): {problem}"
    line = key_line(config_file, key) if config_file and key.startswith("app.") else None
    return f"{config_file}:{line}: {problem}" if line else problem


def _check(problems: list[str], config_file: Path | None, from_env: Mapping[str, str]) -> None:
    if problems:
        in_file = config_file and any(p.split(" ", 1)[0] not in from_env for p in problems)
        where = f" ({config_file})" if in_file else ""
        located = [_located(p, config_file, from_env) for p in problems]
        raise KitError(
            f"the configuration has {len(problems)} problem(s){where}:\n" + "\n".join(f"  - {p}" for p in located),
            hint="edit invoke.yaml (or the INVOKE_APP_* variable / .env line that sets it); "
                 "the kit's README, section Configuration, lists every key",
            code=2,
        )


def settings_from(app: Mapping[str, Any], root: Path, config_file: Path | None = None, env: str | None = None,
                  from_env: Mapping[str, str] | None = None) -> Settings:
    """Check the merged ``app`` config and type it. Every problem is reported in one error.

    ``from_env``: dotted key -> the INVOKE_APP_* variable that set it (a problem with it names the variable)."""
    r = _Reader(app, _unknown_key_problems(app, config_file))
    configured_root = str(r.get("root") or "")
    root = (root / configured_root).resolve() if configured_root else root  # relative to the tasks.py folder
    env_name, env_conf, environments = _environment(r, env)
    name = str(r.get("name")) or root.name
    settings = Settings(
        root=root,
        name=name,
        env=env_name,
        environments=environments,
        namespace=str(env_conf.get("namespace") or r.get("namespace") or ""),
        images=_images(r, root),
        **_manifests_and_vars(r, root, env_name, env_conf),
        cluster=_cluster(r),
        **_watch(r, root),
        **_logs(r, name),
        **_rollout(r),
        **_converge(r, env_name, env_conf),
        **_extras(r),
    )
    _check(r.problems, config_file, from_env or {})
    return settings
