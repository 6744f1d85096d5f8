"""A strict mock context: unexpected commands fail the test, and a failing result raises like invoke's runner."""

from __future__ import annotations

import re
from typing import Any

from invoke import Config, MockContext, Result
from invoke.exceptions import UnexpectedExit

from devloop.core.config import DEFAULTS


class StrictContext(MockContext):
    """MockContext that records every command and raises ``UnexpectedExit`` for a failing result
    unless the caller passed ``warn=True`` (invoke's MockContext never raises)."""

    def __init__(self, results: dict[str, Any] | None = None, app: dict[str, Any] | None = None,
                 dry: bool = False, repeat: bool = True) -> None:
        import copy

        settings = copy.deepcopy(DEFAULTS)
        for key, value in (app or {}).items():
            settings[key] = value
        config = Config(overrides={"app": settings, "run": {"dry": dry}})
        super().__init__(config=config, run=results or {}, repeat=repeat)
        self.commands: list[str] = []

    def run(self, command: str, *args: Any, **kwargs: Any) -> Result:
        self.commands.append(command)
        result = super().run(command, *args, **kwargs)
        if result is not None and result.exited != 0 and not kwargs.get("warn"):
            raise UnexpectedExit(result)
        return result


def ok(stdout: str = "", stderr: str = "") -> Result:
    return Result(stdout=stdout, stderr=stderr, exited=0)


def fail(code: int = 1, stderr: str = "", stdout: str = "") -> Result:
    return Result(stdout=stdout, stderr=stderr, exited=code)


def rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
