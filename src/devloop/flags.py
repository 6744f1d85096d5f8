"""Task flags, the same in every task: one short-flag table, shared help texts, one whole-number parser.

Plain data and functions (no invoke here): ``kit.kit_task`` applies them to every task it declares.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from devloop.core.errors import KitError
from devloop.core.schema import DEFAULTS

# A letter means one flag in every task. `-h` is help, so it is never here; nor is any flag that reveals
# secrets (--show-secrets): a slip of one key must not print them.
SHORT_FLAGS: dict[str, str] = {
    "e": "env",
    "s": "set",
    "t": "timeout",
    "a": "allow-context",
    "n": "name",
    "p": "profile",
    "l": "selector",  # as kubectl -l
    "c": "container",  # as kubectl -c
    "f": "follow",  # as docker compose logs -f
    "w": "watch",  # as kubectl -w
    "d": "detach",  # as docker compose up -d
    "v": "volumes",  # as docker compose down -v
    "k": "keep",
    "r": "release",
    "b": "build",
}
NEVER_SHORT = frozenset({"h", "show-secrets"})
SHORT_OF = {long: short for short, long in SHORT_FLAGS.items() if not {short, long} & NEVER_SHORT}

# Help for flags many tasks share; a task's own help= entry wins. "(default app.KEY)" is shown with the value.
COMMON_HELP: dict[str, str] = {
    "env": "environment: dev, staging, qa… (default app.env)",
    "set": "NAME=VALUE for a ${NAME} placeholder (repeatable); wins over .env and config",
    "timeout": "seconds to wait for readiness in all (default app.timeout)",
    "allow_context": "act even if the kube context is not in app.cluster.allowed_contexts",
    "profile": "minikube profile (default app.cluster.minikube.profile)",
}

# Whole-number flags: the unit a value may carry (--timeout 120s) and the examples hints give.
UNITS = {"timeout": "s", "debounce_ms": "ms", "max_delay_ms": "ms"}
CONFIG_UNITS = {"app.timeout": "s", "app.watch.debounce_ms": "ms", "app.watch.max_delay_ms": "ms"}
MINIMUMS = {"keep": 0}  # --keep 0 keeps only the current tag; every other count starts at 1
EXAMPLES = {"timeout": "120", "keep": "3", "cycles": "2", "debounce_ms": "300", "max_delay_ms": "2000", "tail": "50",
            "cpus": "3"}

_DEFAULT_KEY = re.compile(r"\bdefault (app(?:\.\w+)+)")


def flag_name(param: str) -> str:
    """The long flag of a parameter, as invoke spells it: ``allow_context`` -> ``allow-context``."""
    return param.strip("_").replace("_", "-")


def short_flag(param: str) -> str | None:
    """The one letter for this flag (the same in every task), or None."""
    return SHORT_OF.get(flag_name(param))


def int_flag(value: Any, flag: str) -> int | None:
    """A whole-number flag's value, checked: at least 1 (``MINIMUMS`` names the exceptions); None if not given.

    Takes what invoke parsed (an int) as well as text (a task called from Python, or with a unit: 120s).
    """
    if value is None or value == "":
        return None
    param = flag.lstrip("-").replace("-", "_")
    shown = f"--{flag_name(param)}"
    hint = f"write e.g. {shown} {EXAMPLES.get(param, '2')}"
    if isinstance(value, bool):
        raise KitError(f"{shown} {value!r} is not a whole number", hint=hint, code=2)
    text = str(value).strip()
    unit = UNITS.get(param, "")
    if unit and text.endswith(unit):
        text = text[: -len(unit)].strip()
    try:
        number = int(text)
    except ValueError:
        raise KitError(f"{shown} {value!r} is not a whole number", hint=hint, code=2) from None
    minimum = MINIMUMS.get(param, 1)
    if number < minimum:
        limit = "greater than 0" if minimum == 1 else f"{minimum} or more"
        raise KitError(f"{shown} {value!r} must be {limit}", hint=hint, code=2)
    return number


def is_int(annotation: Any) -> bool:
    """True for ``int`` and ``int | None`` (not bool): the annotations of whole-number flags."""
    if annotation is int:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = set(typing.get_args(annotation)) - {type(None)}
        return members == {int}
    return False


def config_default(key: str, defaults: Mapping[str, Any] = DEFAULTS) -> str | None:
    """The kit's default for a dotted ``app.*`` key as shown in help ("180s"), or None if it has no plain value."""
    value: Any = {"app": defaults}
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        return None
    unit = CONFIG_UNITS.get(key, "")
    return f"{value}{unit}"


def with_defaults(text: str) -> str:
    """Help text with each "default app.KEY" showing the kit's value too: "default app.timeout, 180s unless set".

    (Help is printed before any configuration is read: the app's own value is not known here.)
    """

    def shown(match: re.Match[str]) -> str:
        value = config_default(match.group(1))
        return f"default {match.group(1)}, {value} unless set" if value is not None else match.group(0)

    return _DEFAULT_KEY.sub(shown, text)
