"""A strict mock context: unexpected commands fail the test, a failing result raises like invoke's runner, and
expected commands that never ran fail it too when the test asks (``assert_all_used`` or ``with``)."""

from __future__ import annotations

import copy
import re
from typing import Any

from invoke import Config, MockContext, Result
from invoke.exceptions import UnexpectedExit

from devloop.core.config import DEFAULTS


class StrictContext(MockContext):
    """MockContext that records every command and raises ``UnexpectedExit`` for a failing result
    unless the caller passed ``warn=True`` (invoke's MockContext never raises).

    Unexpected commands always fail (NotImplementedError). Expected ones that never ran fail the test
    at ``c.assert_all_used()``, or when a ``with StrictContext(...) as c:`` block ends: use either where
    the test's point is that those commands run (a task body that does nothing would pass otherwise)."""

    def __init__(self, results: dict[Any, Any] | None = None, app: dict[str, Any] | None = None,
                 dry: bool = False, repeat: bool = True) -> None:
        settings = copy.deepcopy(DEFAULTS)
        for key, value in (app or {}).items():
            settings[key] = value
        config = Config(overrides={"app": settings, "run": {"dry": dry}})
        super().__init__(config=config, run=results or {}, repeat=repeat)
        self.commands: list[str] = []
        self.expected: list[Any] = list((results or {}).keys())  # strings and compiled patterns
        self.used: list[Any] = []

    def run(self, command: str, *args: Any, **kwargs: Any) -> Result:
        self.commands.append(command)
        result = super().run(command, *args, **kwargs)
        self.used.append(self.matched(command))
        if result is not None and result.exited != 0 and not kwargs.get("warn"):
            raise UnexpectedExit(result)
        return result

    def matched(self, command: str) -> Any:
        """The results key that answered ``command`` (invoke tries the exact string, then each pattern)."""
        if command in self.expected:
            return command
        return next((key for key in self.expected if hasattr(key, "match") and key.match(command)), None)

    def unused(self, *optional: Any) -> list[Any]:
        return [key for key in self.expected if key not in self.used and key not in optional]

    def assert_all_used(self, *optional: Any) -> None:
        """Every expected command ran at least once (``optional`` keys may not have)."""
        missing = self.unused(*optional)
        assert not missing, "expected commands that never ran:\n" + "\n".join(
            f"  {getattr(key, 'pattern', key)}" for key in missing) + "\nran:\n" + "\n".join(f"  {c}" for c in self.commands)

    def __enter__(self) -> StrictContext:
        return self

    def __exit__(self, kind: Any, *rest: Any) -> None:
        if kind is None:
            self.assert_all_used()


def ok(stdout: str = "", stderr: str = "") -> Result:
    return Result(stdout=stdout, stderr=stderr, exited=0)


def fail(code: int = 1, stderr: str = "", stdout: str = "") -> Result:
    return Result(stdout=stdout, stderr=stderr, exited=code)


def rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
