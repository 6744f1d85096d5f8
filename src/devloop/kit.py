"""The task boundary and one run's state: settings, cluster facts computed lazily and once, kubectl argv.

Every task is declared with ``@kit_task``: a KitError becomes one clear message and an exit code,
never a traceback; its flags follow ``devloop.flags`` (one short-flag table, shared help, checked numbers).
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from invoke import Argument, Context, Exit, task
from invoke.config import merge_dicts
from invoke.tasks import Task

from devloop import flags, invoke_guard, shell
from devloop.core import config, kubeconfig
from devloop.core.errors import KitError
from devloop.core.schema import (
    DEFAULTS,
    check_yaml_file,
    env_override_problems,
    env_set_keys,
    project_problems,
    read_dotenv,
    with_env_overrides,
)

F = TypeVar("F", bound=Callable[..., Any])
STATE_DIR = ".kit"  # the kit's own output in the app folder (git-ignored, never watched)


def kit_task(*args: Any, **kwargs: Any) -> Any:
    """``@task`` whose body's KitErrors end the run with their message and code.

    Flags follow ``devloop.flags``: short flags only from its table (no automatic ones, never ``-h``),
    parameters annotated ``int | None`` are INT flags checked before the body runs, and a parameter without
    its own ``help=`` entry gets the shared one.
    """

    def decorate(body: F) -> Task[Any]:
        checked = int_params(body)

        @functools.wraps(body)
        def guarded(c: Context, *a: Any, **kw: Any) -> Any:
            try:
                bound = inspect.signature(body).bind_partial(c, *a, **kw)
                for name in checked & bound.arguments.keys():  # also when called from Python with text
                    bound.arguments[name] = flags.int_flag(bound.arguments[name], name)
                return body(*bound.args, **bound.kwargs)
            except KitError as exc:
                raise Exit(shell.mask(exc.render()), code=exc.code) from None
            except KeyboardInterrupt:
                raise Exit("interrupted", code=130) from None

        options = {"klass": KitTask, "auto_shortflags": False, **kwargs}
        return task(*args, **options)(guarded)

    if len(args) == 1 and callable(args[0]) and not kwargs:  # bare @kit_task: no options for task()
        body, args = args[0], ()
        return decorate(body)
    return decorate


def int_params(body: Callable[..., Any]) -> set[str]:
    """The parameters annotated ``int`` or ``int | None``: the task's whole-number flags.

    The usual spellings are read as written (text under ``from __future__ import annotations``) without
    evaluating them: evaluating every task's hints cost several milliseconds of each `inv` start-up. Only an
    unusual spelling that mentions ``int`` (``Union[int, None]``, ``Annotated[…]``, ``t.Optional[int]``) is evaluated.
    """
    function = inspect.unwrap(body)
    annotations = {k: v for k, v in getattr(function, "__annotations__", {}).items() if k != "return"}
    found = {name for name, hint in annotations.items() if _plain_int(hint)}
    unusual = [name for name, hint in annotations.items()
               if name not in found and _INT_WORD.search(hint if isinstance(hint, str) else repr(hint))]
    if unusual:
        try:
            hints = get_type_hints(function)
        except Exception:  # an annotation that cannot be evaluated here: not a number flag we can know of
            hints = {}
        found |= {name for name in unusual if flags.is_int(hints.get(name))}
    return found


INT_SPELLINGS = {"int", "int|None", "None|int", "Optional[int]", "typing.Optional[int]"}
_INT_WORD = re.compile(r"\bint\b")


def _plain_int(hint: Any) -> bool:
    return flags.is_int(hint) or (isinstance(hint, str) and hint.replace(" ", "") in INT_SPELLINGS)


class IntArgument(Argument):
    """A whole-number flag: a bad value ends the run with the kit's message while invoke parses the command
    line, before any task runs (invoke itself would stop with a traceback)."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        if cast and value is not None:
            try:
                value = flags.int_flag(value, str(self.name))
            except KitError as exc:
                raise Exit(shell.mask(exc.render()), code=exc.code) from None
        super().set_value(value, cast=False)


class KitTask(Task[Any]):
    """invoke's Task with the kit's flag rules (see ``kit_task``)."""

    def __init__(self, body: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(body, *args, **kwargs)
        self.int_flags = int_params(body)
        params = list(inspect.signature(body).parameters)[1:]
        shared = {p: flags.COMMON_HELP[p] for p in params
                  if p in flags.COMMON_HELP and p not in self.help and flags.flag_name(p) not in self.help}
        self.help = {name: flags.with_defaults(text) for name, text in {**shared, **self.help}.items()}

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = flags.short_flag(name)
        if short and short not in taken_names:
            opts["names"] = [*opts["names"], short]
        if name in self.int_flags:
            opts["kind"] = int
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        kept = dict(self.help)  # invoke consumes help entries while it builds arguments: keep them for next time
        try:
            arguments = super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept
        return [_int_argument(a) if a.kind is int else a for a in arguments]


def _int_argument(arg: Argument) -> Argument:
    return IntArgument(names=arg.names, kind=int, default=arg.default, help=arg.help, positional=arg.positional,
                       optional=arg.optional, incrementable=arg.incrementable, attr_name=arg.attr_name)


def shown_path(path: Path) -> str:
    """A path as the echo shows it: relative to the current folder when inside it (short, copy-pasteable)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)
    return str(path) if rel.startswith("..") else rel


def app_root(c: Context) -> Path:
    """The app folder: the one ``namespace()`` was built for (or ``app.root``), else the current folder."""
    configured = (c.config.get("devloop") or {}).get("root") or ""
    app = c.config.get("app")
    if not configured and isinstance(app, Mapping):
        configured = app.get("root") or ""
    return Path(configured or os.getcwd()).resolve()


FIX_CONFIG = "fix them in invoke.yaml (the kit's README, section Configuration, lists every key and its default)"


def _problem_list(problems: list[str]) -> str:
    return "\n".join(f"  - {p}" for p in problems)


def read_app_config(c: Context, root: Path) -> dict[str, Any]:
    """The merged ``app`` settings: defaults < invoke.yaml < .env < the shell's INVOKE_APP_* (checked first).

    Puts the app's ``.env`` into os.environ without overriding the shell (as direnv's dotenv does).
    """
    config_file = root / "invoke.yaml"
    if config_file.resolve() in invoke_guard.REPORTED:
        raise KitError(f"{config_file.name} has the problems listed above",
                       hint=FIX_CONFIG, code=2)
    if config_file.is_file():
        problems = project_problems(check_yaml_file(config_file), config_file)
        if problems:
            raise KitError("invoke.yaml has settings the kit cannot use:\n" + _problem_list(problems),
                           hint=FIX_CONFIG, code=2)
    dotenv = read_dotenv(root / ".env")
    if dotenv.errors:
        raise KitError("the .env file has lines that cannot be read:\n" + _problem_list(dotenv.errors),
                       hint="write each line as KEY=value; quote values with spaces or #", code=2)
    for key, value in dotenv.values.items():
        os.environ.setdefault(key, value)
    shell.register_secrets_from_env(os.environ)
    configured = c.config.get("app")
    app = merge_dicts(copy.deepcopy(DEFAULTS), dict(configured) if isinstance(configured, Mapping) else {})
    problems = env_override_problems(os.environ, app)
    if problems:
        raise KitError("environment variables the configuration cannot take:\n" + _problem_list(problems),
                       hint="fix or unset them (in the shell or in .env)", code=2)
    return with_env_overrides(os.environ, app)


def kubeconfig_context() -> str | None:
    """The current context the kubeconfig files set (core.kubeconfig), or None: then kubectl is asked."""
    texts = []
    home = os.environ.get("HOME") if os.name != "nt" else None  # kubectl's own rule for its home folder
    for path in kubeconfig.paths(os.environ.get("KUBECONFIG", ""), home):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # as kubectl: a listed file that does not exist is skipped
        except (OSError, UnicodeDecodeError):
            return None
    return kubeconfig.current_context(texts)


def no_context_error(stderr: str) -> KitError:
    """kubectl has no current context: a KUBECONFIG naming no file, a file kubectl cannot load, or no context set."""
    named = os.environ.get("KUBECONFIG", "")
    if named and not any(path.is_file() for path in kubeconfig.paths(named, None)):
        return KitError(f"KUBECONFIG={named} names no file that exists: kubectl has no cluster to talk to",
                        hint="point KUBECONFIG at the cluster's kubeconfig (minikube and kind write ~/.kube/config), "
                             "or unset it", code=1)
    if "error loading config file" in stderr:
        return KitError("kubectl cannot load the kubeconfig file it names below", evidence=stderr,
                        hint="fix the file or point KUBECONFIG at another one (`minikube update-context` rewrites "
                             "minikube's entry)", code=1)
    return KitError("no current kube context: kubectl has no cluster to talk to", evidence=stderr,
                    hint="start the cluster (inv minikube.start), set KUBECONFIG, or set app.cluster.context")


def state_dir_error(path: Path, exc: OSError) -> KitError:
    """The kit's own folder cannot be made or written: name it and the fix."""
    return KitError(f"cannot write the kit's folder {path}: {exc.strerror or exc}",
                    hint=f"make {path} a folder you can write (chmod u+rwx {path}); if it is a file or on a read-only "
                         "mount, move it out of the way: the kit makes it again", code=73)


class App:
    """Everything one `inv` run knows about the app and its cluster."""

    def __init__(self, c: Context, settings: config.Settings) -> None:
        self.c = c
        self.settings = settings
        self._facts: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.warnings = 0  # warning lines said so far (App.warn)
        self.undeclared: list[str] = []  # `file:line: ${NAME}` left as they are by the last render
        self.origins: dict[int, Path] = {}  # id(rendered object) -> its manifest file, for lint messages
        self.seen_ready: list[dict[str, Any]] | None = None  # the objects the last wait saw ready (up's table shows them)

    @classmethod
    def load(cls, c: Context, env: str | None = None, allow_context: bool = False) -> App:
        root = app_root(c)
        config_file = root / "invoke.yaml"
        merged = read_app_config(c, root)
        settings = config.settings_from(merged, root, config_file if config_file.exists() else None, env,
                                        env_set_keys(os.environ, merged))
        for pattern in settings.secrets.values():  # so logs, status and errors mask them too, not only render
            for value in read_dotenv(settings.root / pattern.replace("{env}", settings.env)).values.values():
                shell.register_secret(value)
        app = cls(c, settings)
        shell_namespace = os.environ.get("INVOKE_APP_NAMESPACE")
        if shell_namespace and shell_namespace != settings.namespace:  # the environment's own namespace won
            app.say(f"note: INVOKE_APP_NAMESPACE={shell_namespace} is not used: environment {settings.env} sets its "
                    f"namespace ({settings.namespace}) under app.environments")
        if allow_context:  # the user's --allow-context: act on a context outside the allow-list
            app.allow_context()
        return app

    # -- memoised cluster facts ------------------------------------------------------------------

    def fact(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._facts:
            self._facts[name] = compute()
        return self._facts[name]

    def forget(self, prefix: str) -> None:
        """Drop memoised facts whose name starts with ``prefix`` (a watch cycle re-plans images)."""
        for name in [n for n in self._facts if n.startswith(prefix)]:
            del self._facts[name]

    def run(self, argv: list[str], **kw: Any) -> Any:
        return shell.run(self.c, argv, **kw)

    @property
    def state_dir(self) -> Path:
        """The kit's own folder in the app (made on first use, git-ignored by its own .gitignore)."""
        path = self.settings.root / STATE_DIR
        if not (path / ".gitignore").is_file():
            try:
                path.mkdir(mode=0o700, exist_ok=True)
                (path / ".gitignore").write_text("*\n")
            except OSError as exc:  # a file named .kit, a read-only folder or mount
                raise state_dir_error(path, exc) from None
        return path

    def state_path(self, name: str, create: bool = False) -> Path:
        """A file in the kit's folder (``create``: the folder is made if missing, else it is only named)."""
        return (self.state_dir if create else self.settings.root / STATE_DIR) / name

    def context(self) -> str:
        """The kube context the kit acts on, checked against the allow-list."""

        def compute() -> str:
            ctx = self.settings.cluster.context or kubeconfig_context()
            if not ctx:
                result = self.run(["kubectl", "config", "current-context"], query=True, capture=True, check=False,
                                  quiet=True)
                ctx = result.stdout.strip()
                if result.exited != 0 or not ctx:
                    raise no_context_error(result.stderr or "")
            if not self.settings.cluster.context_allowed(ctx) and not self._facts.get("allow_context"):
                raise KitError(
                    f"kube context {ctx!r} is not in app.cluster.allowed_contexts "
                    f"({', '.join(self.settings.cluster.allowed_contexts)})",
                    hint="switch context (kubectl config use-context minikube), add it to app.cluster.allowed_contexts, "
                         "or pass --allow-context if you really mean this cluster",
                    code=2,
                )
            return ctx

        return str(self.fact("context", compute))

    def allow_context(self) -> None:
        self._facts["allow_context"] = True

    def kubectl(self, *args: str, namespaced: bool = True) -> list[str]:
        argv = ["kubectl", "--context", self.context()]
        if namespaced and self.settings.namespace:
            argv += ["--namespace", self.settings.namespace]
        return argv + list(args)

    def minikube(self, *args: str) -> list[str]:
        return ["minikube", "-p", self.settings.cluster.minikube.profile, *args]

    def minikube_ip(self) -> str:
        def compute() -> str:
            cluster = self.settings.cluster
            if os.environ.get("MINIKUBE_IP"):  # from .env or the shell: wins over asking the cluster
                return os.environ["MINIKUBE_IP"]
            if cluster.provider != "minikube":
                if not cluster.ip:
                    raise KitError(
                        f"MINIKUBE_IP is used by a manifest but the provider is {cluster.provider!r} and app.cluster.ip is not set",
                        hint="set app.cluster.ip in invoke.yaml (e.g. 127.0.0.1), or MINIKUBE_IP=... in .env / --set",
                        code=2)
                return cluster.ip
            result = self.run(self.minikube("ip"), query=True, capture=True, check=False)
            ip = result.stdout.strip().splitlines()[-1].strip() if result.stdout.strip() else ""
            if result.exited != 0 or not ip:
                raise KitError(f"`minikube ip` failed for profile {cluster.minikube.profile!r}",
                               evidence=result.stderr or result.stdout,
                               hint="start the cluster first: inv minikube.start")
            return ip

        return str(self.fact("minikube_ip", compute))

    def say(self, message: str) -> None:
        shell.say(message)

    def warn(self, message: str, once: bool = False) -> None:
        """A warning line, counted (lint's summary counts what this run warned of); ``once``: not again in this run
        (a watch session plans every cycle anew, and a file left in the build context is news only once)."""
        if once:
            if f"warned:{message}" in self._facts:
                return
            self._facts[f"warned:{message}"] = True
        self.warnings += 1
        shell.say(f"warning: {message}")

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)


class _Phase:
    def __init__(self, app: App, name: str) -> None:
        self.app, self.name = app, name

    def __enter__(self) -> None:
        self.start = App.clock()

    def __exit__(self, *exc: Any) -> None:
        self.app.timings[self.name] = App.clock() - self.start



def print_table(rows: list[list[str]], out: Any = None) -> None:
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip(), file=out)

