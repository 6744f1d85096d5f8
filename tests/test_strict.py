"""The strict mock context itself: failing results raise, unexpected commands fail, expected ones must run."""

from __future__ import annotations

import pytest
from invoke.exceptions import UnexpectedExit
from strict import StrictContext, fail, ok, rx


def test_a_failing_result_raises_unless_warn() -> None:
    c = StrictContext({"false": fail(1, stderr="no")})
    with pytest.raises(UnexpectedExit):
        c.run("false")
    assert c.run("false", warn=True).exited == 1


def test_an_unexpected_command_fails() -> None:
    with pytest.raises(NotImplementedError):
        StrictContext({"a": ok()}).run("b")


def test_expected_commands_that_never_ran_fail_the_test() -> None:
    c = StrictContext({"kubectl apply": ok(), rx(r"^docker image inspect "): ok("sha256:1"), "helm list": ok()})
    c.run("kubectl apply")
    c.run("docker image inspect hello:1")
    assert c.unused() == ["helm list"]
    with pytest.raises(AssertionError, match="(?s)never ran:\n  helm list\nran:\n  kubectl apply"):
        c.assert_all_used()
    c.assert_all_used("helm list")  # optional ones may stay unused
    c.run("helm list")
    c.assert_all_used()


def test_a_with_block_checks_on_exit() -> None:
    with pytest.raises(AssertionError, match="never ran"), StrictContext({"a": ok(), "b": ok()}) as c:
        c.run("a")
    with StrictContext({"a": ok()}) as c:
        c.run("a")
