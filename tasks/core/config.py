"""Configuration: every key with its default, file checks with line numbers, and typed settings.

Layering (lowest first): these defaults, ``invoke.yaml``, ``.env``, the shell's ``INVOKE_APP_*``,
then task flags. Invoke merges the first four into ``c.config.app``; this module checks and types it.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KitError

PROVIDERS = ("minikube", "kind", "docker", "registry")
DRIVERS = (
    "docker", "podman", "hyperkit", "virtualbox", "vmware", "kvm2", "qemu2", "qemu",
    "hyperv", "parallels", "vfkit", "krunkit", "none", "ssh",
)

# Every key the kit reads, with its default. `invoke.yaml` may set any of them under `app:`.
DEFAULTS: dict[str, Any] = {
    "root": "",  # the app's folder; "" = the folder holding tasks.py
    "name": "",  # app name: object label, lock name, default log selector app=<name>
    "namespace": "",  # "" = the namespace of the kube context
    "env": "dev",  # the environment used when --env is not given
    "environments": {"dev": {}},  # name -> {namespace, manifests, vars}: each its own namespace
    "images": {},  # image name used in manifests -> {context, dockerfile, build_args, target}
    "image_keep": 3,  # inv image.prune keeps this many newest tags of each image (and always the current one)
    "manifests": ["k8s"],  # folders of YAML, relative to root
    "vars": {},  # declared ${NAME} placeholders -> default value (null = must be given)
    "workloads": [],  # kind/name to wait for; [] = every Deployment/StatefulSet/Job rendered
    "timeout": 180,  # seconds: one deadline for everything to become ready
    "logs": {"selector": "", "since": "10s"},
    "forwards": [],  # e.g. "deploy/web 3000:3000"
    "watch": {"paths": [], "ignore": [], "debounce_ms": 300, "max_delay_ms": 2000},
    "secrets": {},  # Secret name -> .env-style file, e.g. "secrets/{env}.env"; values are never printed
    "compose": {"dev": "docker-compose.yml", "preview": "docker-compose-preview.yml", "project": "", "url": ""},
    "tls": {"host": "", "secret": ""},  # "" = <name>.${MINIKUBE_IP}.nip.io and <name>-tls (env-scoped)
    "helm": {
        "chart": "", "release": "", "values": [],  # chart folder or repo/chart; release "" = <name>[-<env>]; values files ({env} allowed)
        "image": "",  # which app.images entry the chart runs; "" = the only one
        # chart value -> template of ${IMAGE_REPOSITORY} ${IMAGE_TAG} ${INGRESS_HOST} ${TLS_SECRET} ${RELEASE}
        # ${NAMESPACE} ${ENV} ${MINIKUBE_IP}, passed as --set-string; "" drops a key
        "set": {"image.repository": "${IMAGE_REPOSITORY}", "image.tag": "${IMAGE_TAG}",
                "ingress.host": "${INGRESS_HOST}", "ingress.tlsSecret": "${TLS_SECRET}"},
    },
    "cluster": {
        "provider": "minikube",  # minikube | kind | docker | registry
        "context": "",  # kube context to use; "" = the current one
        "allowed_contexts": ["minikube", "kind-*", "docker-desktop", "k8s-local"],
        "ip": "",  # MINIKUBE_IP when the provider is not minikube
        "registry": "",  # push target for provider=registry, e.g. registry.example.com/team
        "kind_name": "kind",
        "minikube": {
            "profile": "minikube",
            "cpus": 2,
            "memory": "2048",
            "driver": "",
            "disk_size": "",
            "kubernetes_version": "",
            "addons": ["ingress"],
        },
    },
}

IMAGE_KEYS = {"context": ".", "dockerfile": "Dockerfile", "build_args": {}, "target": ""}
ENVIRONMENT_KEYS = {"namespace": "", "manifests": [], "vars": {}}
# Keys whose values are free-form mappings: their children are user names, not config keys.
OPEN_MAPPINGS = {"images", "environments", "vars", "build_args", "secrets", "set"}


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


# ---------------------------------------------------------------------------------------------
# Files


def check_yaml_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file; a syntax error names the file, line and column."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError(f"{path}: cannot be read: {exc}", hint="check the file's permissions and encoding") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(path, exc) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KitError(f"{path}:1: expected a mapping of settings at the top level, found {type(data).__name__}",
                       hint="start the file with `app:` and indent the kit's settings under it")
    return data


def yaml_error(path: Path, exc: Exception) -> KitError:
    """A YAML parse error as file:line:column, the parser's words, and a fix."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    words = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p) or str(exc)
    tabs = "'\\t'" in words or "tab" in words
    hint = "indent with spaces: YAML does not allow tabs" if tabs else "fix the YAML at that line"
    return KitError(f"{where}: invalid YAML: {words}", hint=hint, code=2)


def key_line(path: Path, dotted: str) -> int | None:
    """The line of a dotted key (``app.images.web.dockerfil``) in a YAML file, if it is there."""
    import yaml

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None
        for key, value in node.value:
            if key.value == part:
                line = key.start_mark.line + 1
                node = value
                break
        else:
            return None
    return line


@dataclass
class DotenvFile:
    values: dict[str, str]
    errors: list[str]


def read_dotenv(path: Path) -> DotenvFile:
    """Read a ``.env`` file; lines python-dotenv cannot parse are reported with their number."""
    from dotenv.parser import parse_stream

    result = DotenvFile({}, [])
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return result
    import io

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            shown = binding.original.string.strip().split("=", 1)[0][:40]
            result.errors.append(
                f"{path}:{binding.original.line}: cannot parse {shown!r}: expected KEY=value "
                "(quote values that contain spaces or #)"
            )
        elif binding.key is not None and binding.value is not None:
            result.values[binding.key] = binding.value
    return result


# ---------------------------------------------------------------------------------------------
# Validation


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_keys(data: Mapping[str, Any], schema: Mapping[str, Any] = DEFAULTS, prefix: str = "app") -> list[tuple[str, str]]:
    """(dotted key, suggestion) for every key of ``data`` the schema does not declare."""
    found: list[tuple[str, str]] = []
    for key, value in data.items():
        dotted = f"{prefix}.{key}"
        if key not in schema:
            found.append((dotted, _suggest(str(key), list(schema))))
            continue
        if key == "images" and isinstance(value, Mapping):
            for name, spec in value.items():
                if isinstance(spec, Mapping):
                    found += unknown_keys(spec, IMAGE_KEYS, f"{dotted}.{name}")
        elif key == "environments" and isinstance(value, Mapping):
            for name, spec in value.items():
                if isinstance(spec, Mapping):
                    found += unknown_keys(spec, ENVIRONMENT_KEYS, f"{dotted}.{name}")
        elif key not in OPEN_MAPPINGS and isinstance(schema[key], Mapping) and isinstance(value, Mapping):
            found += unknown_keys(value, schema[key], dotted)
    return found


def _int(value: Any, key: str, problems: list[str]) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        problems.append(f"{key} must be a whole number, got {value!r}")
        return 0
    if number <= 0:
        problems.append(f"{key} must be greater than 0, got {value!r}")
    return number


def _list(value: Any, key: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[,\s]+", value) if v] if "," in value else [value]
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

    root = Path(str(get("root")) or root)

    environments = dict(get("environments") or {})
    environments.setdefault("dev", {})
    env_name = env or str(get("env"))
    if env_name not in environments:
        problems.append(
            f"unknown environment {env_name!r}{_suggest(env_name, list(environments))} "
            f"(configured: {', '.join(sorted(environments))}); add it under app.environments in invoke.yaml"
        )
        env_conf: Mapping[str, Any] = {}
    else:
        env_conf = environments[env_name] or {}

    images: list[Image] = []
    image_specs = get("images")
    if not isinstance(image_specs, Mapping):
        problems.append(f"app.images must be a mapping of image name -> settings, got {image_specs!r}")
        image_specs = {}
    for name, spec in image_specs.items():
        spec = dict(IMAGE_KEYS, **(spec or {}))
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
    variables = dict(get("vars") or {})
    variables.update(env_conf.get("vars") or {})

    cluster = dict(DEFAULTS["cluster"], **(get("cluster") or {}))
    mk = dict(DEFAULTS["cluster"]["minikube"], **(cluster.get("minikube") or {}))
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

    watch = dict(DEFAULTS["watch"], **(get("watch") or {}))
    logs = dict(DEFAULTS["logs"], **(get("logs") or {}))
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
        secrets={str(k): str(v) for k, v in (get("secrets") or {}).items()},
        compose=dict(DEFAULTS["compose"], **(get("compose") or {})),
        tls=dict(DEFAULTS["tls"], **(get("tls") or {})),
        helm=dict(DEFAULTS["helm"], **(get("helm") or {})),
    )
    if problems:
        where = f" ({config_file})" if config_file else ""
        raise KitError(
            f"the configuration has {len(problems)} problem(s){where}:\n" + "\n".join(f"  - {p}" for p in problems),
            hint="edit invoke.yaml (or the INVOKE_APP_* variable / .env line that sets it); `.env.example` lists every key",
            code=2,
        )
    return settings


def _env_names(data: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
    names: dict[str, tuple[str, Any]] = {}
    for key, value in data.items():
        here = (*path, str(key))
        if isinstance(value, Mapping) and value:
            names.update(_env_names(value, here))
        names["INVOKE_" + "_".join(here).upper()] = (".".join(here), value)
    return names


def env_override_problems(environ: Mapping[str, str], app: Mapping[str, Any]) -> list[str]:
    """INVOKE_APP_* values invoke could not use (it would stop with a traceback): name each and the fix."""
    known = _env_names({"app": app}, ())
    problems = []
    for name, raw in sorted(environ.items()):
        if not name.startswith("INVOKE_APP_") or name not in known:
            continue
        dotted, current = known[name]
        if isinstance(current, (bool, str)) or current is None:
            continue
        if isinstance(current, (list, tuple, dict)):
            problems.append(f"{name} sets {dotted}, which is a {type(current).__name__}: the environment can only "
                            "set single values; set it in invoke.yaml instead")
            continue
        try:
            type(current)(raw)
        except (TypeError, ValueError):
            kind = {int: "whole number", float: "number"}.get(type(current), type(current).__name__)
            problems.append(f"{name}={raw!r} sets {dotted}, which must be a {kind} (like {current!r})")
    return problems


def environ_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``INVOKE_APP_*`` variables in effect (for `inv doctor`)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k.startswith("INVOKE_APP_")}
