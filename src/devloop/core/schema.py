"""Every configuration key with its default, and the checks that run before invoke reads the files.

Layering (lowest first): these defaults, ``invoke.yaml``, ``.env``, the shell's ``INVOKE_APP_*``,
then task flags. This module is imported when `inv` starts, so it holds data and cheap checks only;
the typed settings are built in ``config``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import io
import re
from collections.abc import Mapping
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
    "job_keep": 3,  # up keeps this many newest finished Jobs the manifests no longer have (earlier versions)
    "rerun_jobs": True,  # up/watch delete and create again a Job whose pod template changed; false: apply refuses
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

IMAGE_KEYS = {"context": ".", "dockerfile": "Dockerfile", "build_args": {}, "target": "",
              "live_update": {}}  # {sync: [{src, dest}], run, rebuild}: see core/liveupdate.py
LIVE_UPDATE_KEYS = {"sync": [], "run": "", "rebuild": []}
SYNC_RULE_KEYS = {"src": "", "dest": ""}
ENVIRONMENT_KEYS: dict[str, Any] = {"namespace": "", "manifests": [], "vars": {}, "rerun_jobs": None}  # None: app.rerun_jobs
# Keys whose values are free-form mappings: their children are user names, not config keys.
OPEN_MAPPINGS = {"images", "environments", "vars", "build_args", "secrets", "set", "live_update"}


# ---------------------------------------------------------------------------------------------
# Files


def check_yaml_file(path: Path) -> dict[str, Any]:
    """Parse a YAML config file; a syntax error names the file, line and column."""
    from invoke.util import yaml  # kept local for start-up time (the copy invoke loads anyway, only when parsing)

    try:
        text = utf8_text(path, path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise KitError(f"{path}: cannot be read: {exc}", hint="check the file's permissions") from None
    try:
        data = yaml.load(text, Loader=strict_loader(yaml.SafeLoader))
    except (yaml.YAMLError, RefusedYaml) as exc:
        raise yaml_error(path, exc, text) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KitError(f"{path}:1: expected a mapping of settings at the top level, found {type(data).__name__}",
                       hint="start the file with `app:` and indent the kit's settings under it")
    return data


def utf8_text(path: Path, data: bytes) -> str:
    """``data`` (the bytes of ``path``) as UTF-8 text; anything else is an error naming line, column and byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, data, exc.start) from None


def not_utf8(path: Path, data: bytes, offset: int) -> KitError:
    """Only the byte is shown, never the line: a .env line may hold a secret."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return KitError(f"{path}:{line}:{column}: byte 0x{data[offset]:02x} is not UTF-8 (the kit reads this file as UTF-8)",
                    hint=f"save it as UTF-8; from Latin-1: iconv -f latin1 -t utf-8 {path.name} > {path.name}.new "
                         f"&& mv {path.name}.new {path.name}", code=2)


# Values that aliases may add by repeating an anchored one: far above what real files do, far below an alias
# bomb ("billion laughs"), which would take gigabytes once the objects are printed or sent.
MAX_ALIAS_NODES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *base`: keys merged in may be overridden, that is no duplicate


class RefusedYaml(Exception):
    """Valid YAML the kit will not build: a duplicate key, a recursive alias, aliases that expand too far."""

    def __init__(self, problem: str, mark: Any, hint: str) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark, self.hint = problem, mark, hint


@functools.cache
def strict_loader(base: type) -> type:
    """``base`` (a PyYAML safe loader class) refusing duplicate keys and alias bombs before building a document."""

    class StrictLoader(base):
        def construct_document(self, node: Any) -> Any:
            check_document(node)
            return super().construct_document(node)

    return StrictLoader


def _children(node: Any) -> list[Any]:
    if node.id == "mapping":
        return [part for pair in node.value for part in pair]
    return list(node.value) if node.id == "sequence" else []


def check_document(root: Any) -> None:
    """Walk a composed document once (each anchored value once): duplicate keys, recursive aliases, and how many
    values the aliases would add when the document is built and printed."""
    sizes: dict[int, int] = {}  # id(collection node) -> values in it, aliases expanded
    open_nodes: set[int] = set()
    written = 0  # values as written (an aliased scalar counts as written: it adds one value only)
    stack: list[tuple[Any, list[Any] | None]] = [(root, None)]
    while stack:
        node, children = stack.pop()
        if children is not None:  # every child is measured: measure the node
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(1 if child.id == "scalar" else sizes[id(child)] for child in children)
        elif id(node) in open_nodes:
            raise RefusedYaml("an alias refers to a value that contains it (a recursive structure)",
                              node.start_mark, "write the value out instead of the alias")
        elif id(node) not in sizes:
            open_nodes.add(id(node))
            if node.id == "mapping":
                check_duplicate_keys(node)
            children = _children(node)
            written += 1 + sum(child.id == "scalar" for child in children)
            stack.append((node, children))
            stack.extend((child, None) for child in children if child.id != "scalar" and id(child) not in sizes)
    added = sizes.get(id(root), 1) - max(written, 1)
    if added > MAX_ALIAS_NODES:
        raise RefusedYaml(f"its aliases expand it by {added:,} values, more than the {MAX_ALIAS_NODES:,} allowed "
                          "(an alias bomb?)", root.start_mark, "write the values out, or use fewer nested aliases")


def check_duplicate_keys(node: Any) -> None:
    """A key written twice in one mapping: YAML loaders silently keep the last one."""
    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if key.id != "scalar" or key.tag == MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in seen:
            raise RefusedYaml(f"duplicate key {key.value!r}: at line {seen[key.tag, key.value]} and again at line {line}",
                              key.start_mark, "keep one of them: only the last one would count, silently")
        seen[key.tag, key.value] = line


def yaml_error(path: Path, exc: Exception, text: str = "") -> KitError:
    """A YAML parse error as file:line:column, the parser's words, and a fix.

    When the parser names where the construct it could not finish began (an unclosed bracket or quote), that is the
    place given: the line it stopped at is often the next one."""
    problem_mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    mark = problem_mark or context_mark
    unfinished = str(getattr(exc, "context", "") or "").startswith(("while parsing a flow", "while scanning a quoted"))
    start = context_mark if unfinished and problem_mark and context_mark and context_mark.line < problem_mark.line \
        else None  # a block mapping's start is only where the enclosing mapping began
    shown = start or mark
    where = f"{path}:{shown.line + 1}:{shown.column + 1}" if shown else str(path)
    if isinstance(exc, RefusedYaml):
        return KitError(f"{where}: {exc.problem}", hint=exc.hint, code=2)
    words = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p) or str(exc)
    if start and mark:
        words = (f"{getattr(exc, 'context', '')} that starts here: {getattr(exc, 'problem', '')} "
                 f"(line {mark.line + 1}, column {mark.column + 1})")
    lines = text.splitlines()
    at_tab = mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]
    if at_tab or "'\\t'" in words:
        return KitError(f"{where}: invalid YAML: a tab character in the indentation ({words})",
                        hint="indent with spaces: YAML does not allow tabs", code=2)
    return KitError(f"{where}: invalid YAML: {words}", hint="fix the YAML at that line", code=2)


def key_line(path: Path, dotted: str) -> int | None:
    """The line of a dotted key (``app.images.web.dockerfil``, ``app.images.web.live_update.sync[0]``) in a YAML
    file, if it is there."""
    import yaml  # kept local for start-up time: only a problem report asks for a line

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        if step.startswith("["):
            index = int(step[1:-1])
            if not isinstance(node, yaml.SequenceNode) or index >= len(node.value):
                return None
            node = node.value[index]
            line = node.start_mark.line + 1
            continue
        if not isinstance(node, yaml.MappingNode):
            return None
        for key, value in node.value:
            if key.value == step:
                line = key.start_mark.line + 1
                node = value
                break
        else:
            return None
    return line


class DotenvFile:
    """A .env file's values, and its unreadable lines as `file:line: ...` messages."""

    def __init__(self, values: dict[str, str], errors: list[str]) -> None:
        self.values = values
        self.errors = errors


def read_dotenv(path: Path) -> DotenvFile:
    """Read a ``.env`` file; lines python-dotenv cannot parse are reported with their number."""
    from dotenv.parser import parse_stream  # kept local for start-up time: `inv --list` reads no .env

    result = DotenvFile({}, [])
    try:
        text = utf8_text(path, path.read_bytes())
    except FileNotFoundError:
        return result
    except OSError as exc:
        raise KitError(f"{path}: cannot be read: {exc.strerror or exc}", hint="check the file's permissions",
                       code=2) from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:  # name the key only: the rest of the line may be a secret value
            raw = binding.original.string.strip()
            shown = re.split(r"[\s=]", raw, maxsplit=1)[0][:40]
            why = "an unterminated quote" if raw.count('"') % 2 or raw.count("'") % 2 else "expected KEY=value"
            result.errors.append(
                f"{path}:{binding.original.line}: cannot parse the line starting {shown!r}: {why} "
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
        elif key == "live_update" and schema is IMAGE_KEYS and isinstance(value, Mapping):
            found += unknown_keys(value, LIVE_UPDATE_KEYS, dotted)
            rules = value.get("sync")
            for index, rule in enumerate(rules if isinstance(rules, list) else []):
                if isinstance(rule, Mapping):
                    found += unknown_keys(rule, SYNC_RULE_KEYS, f"{dotted}.sync[{index}]")
        elif key == "environments" and isinstance(value, Mapping):
            for name, spec in value.items():
                if isinstance(spec, Mapping):
                    found += unknown_keys(spec, ENVIRONMENT_KEYS, f"{dotted}.{name}")
        elif key not in OPEN_MAPPINGS and isinstance(schema[key], Mapping) and isinstance(value, Mapping):
            found += unknown_keys(value, schema[key], dotted)
    return found


def _env_names(data: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, tuple[str, Any]]:
    names: dict[str, tuple[str, Any]] = {}
    for key, value in data.items():
        here = (*path, str(key))
        if isinstance(value, Mapping) and value:
            names.update(_env_names(value, here))
        names["INVOKE_" + "_".join(here).upper()] = (".".join(here), value)
    return names


INVOKE_KEYS = ("run", "runners", "sudo", "tasks", "timeouts")  # invoke's own top-level settings


def shape_problems(data: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS, prefix: str = "app") -> list[str]:
    """Keys whose value is a mapping where the default is not, or the other way round: invoke cannot merge
    them with the defaults and would stop with a traceback."""
    problems = []
    for key, value in data.items():
        if key not in defaults or value is None:
            continue
        default, dotted = defaults[key], f"{prefix}.{key}"
        if isinstance(default, Mapping) != isinstance(value, Mapping):
            want = "a mapping (key: value lines indented under it)" if isinstance(default, Mapping) else \
                f"a {type(default).__name__}, like {default!r}"
            problems.append(f"{dotted} must be {want}, got {value!r}")
        elif isinstance(default, Mapping) and key not in OPEN_MAPPINGS:
            problems += shape_problems(value, default, dotted)
    return problems


def project_problems(project: Mapping[str, Any], path: Path) -> list[str]:
    """Top-level keys of invoke.yaml that neither the kit nor invoke reads, and settings of the wrong shape."""
    problems = []
    for key in project:
        if key != "app" and key not in INVOKE_KEYS:
            line = key_line(path, str(key))
            problems.append(f"{path}:{line or 1}: unknown top-level key {key!r}{_suggest(str(key), ['app', *INVOKE_KEYS])}"
                            " (the kit's settings go under `app:`)")
    app = project.get("app")
    if app is not None and not isinstance(app, Mapping):
        return problems + [f"{path}: `app:` must be a mapping of settings, got {type(app).__name__}"]
    for problem in shape_problems(app or {}):
        line = key_line(path, problem.split(" ", 1)[0])
        problems.append(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")
    return problems


def _known_env_names(app: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """INVOKE_APP_* name -> (dotted key, a value of the type it takes): the default's type where there is one
    (invoke may already have put the raw text of a variable into ``app``)."""
    known = _env_names({"app": app}, ())
    for name, default in _env_names({"app": DEFAULTS}, ()).items():
        if name in known and type(known[name][1]) is not type(default[1]):
            known[name] = default
    return known


def env_override_problems(environ: Mapping[str, str], app: Mapping[str, Any]) -> list[str]:
    """INVOKE_APP_* values invoke could not use (it would stop with a traceback), and names it does not know."""
    known = _known_env_names(app)
    problems = []
    for name, raw in sorted(environ.items()):
        if not name.startswith("INVOKE_APP_"):
            continue
        if name not in known:
            problems.append(f"{name} is not a setting, so it has no effect{_suggest(name, list(known))}")
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


def env_set_keys(environ: Mapping[str, str], app: Mapping[str, Any]) -> dict[str, str]:
    """Dotted key -> the ``INVOKE_APP_*`` variable that sets it: a problem with that key is the variable's, not the
    line of invoke.yaml that the variable overrides."""
    return {dotted: name for name, (dotted, _) in _known_env_names(app).items() if name in environ}


def with_env_overrides(environ: Mapping[str, str], app: Mapping[str, Any]) -> dict[str, Any]:
    """``app`` with every known ``INVOKE_APP_*`` value set in it, cast like the value it replaces.

    Call after ``env_override_problems`` found nothing: names that are unknown or values that cannot be cast
    are skipped here.
    """
    merged = copy.deepcopy(dict(app))
    known = _known_env_names(merged)
    for name, raw in environ.items():
        if name not in known:
            continue
        dotted, current = known[name]
        if isinstance(current, (list, tuple, dict)):
            continue
        if isinstance(current, bool):
            value: Any = raw.strip().lower() not in ("0", "", "false", "no", "off")
        elif isinstance(current, str) or current is None:
            value = raw
        else:
            try:
                value = type(current)(raw)
            except (TypeError, ValueError):
                continue
        *parents, leaf = dotted.split(".")[1:]
        target = merged
        for key in parents:
            target = target[key]
        target[leaf] = value
    return merged
