"""Task flags: a short flag means one thing in every task, nothing takes -h, numbers are INT flags checked
before any command runs, and help shows defaults with their values."""

from __future__ import annotations

import typing as t
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import pytest
from conftest import inv, make_app
from invoke import Exit
from invoke.tasks import Task
from strict import StrictContext

from devloop import flags, k8s, namespace, watch, workflow
from devloop.core.errors import KitError
from devloop.kit import int_params

NUMERIC = {"timeout", "cycles", "debounce-ms", "max-delay-ms", "keep", "tail", "cpus"}


def every_task(root: Path) -> list[tuple[str, Task[Any]]]:
    ns = namespace(root)
    return [(name, ns[name]) for name in sorted(ns.task_names)]


def test_no_task_binds_h_and_each_letter_means_one_flag(tmp_path: Path) -> None:
    meaning: dict[str, set[str]] = {}
    for name, task in every_task(tmp_path):
        for arg in task.get_arguments():
            assert "h" not in arg.names, f"{name}: -h is help"
            for short in (n for n in arg.names if len(n) == 1):
                meaning.setdefault(short, set()).add(arg.names[0])
    assert meaning, "no task has a short flag at all"
    for short, longs in meaning.items():
        assert longs == {flags.SHORT_FLAGS[short]}, f"-{short} means {sorted(longs)}"
    assert {"e", "s", "t", "a", "n"} <= meaning.keys()


def test_the_table_never_gives_h_or_a_secret_revealing_flag_a_short_form() -> None:
    assert "h" not in flags.SHORT_FLAGS and "show-secrets" not in flags.SHORT_OF
    assert len(set(flags.SHORT_FLAGS.values())) == len(flags.SHORT_FLAGS)


def test_show_secrets_has_no_short_form(tmp_path: Path) -> None:
    arguments = {a.names[0]: a for a in namespace(tmp_path)["k8s.render"].get_arguments()}
    assert arguments["show-secrets"].names == ("show-secrets",)


def test_numeric_flags_are_int_flags_everywhere(tmp_path: Path) -> None:
    seen = set()
    for name, task in every_task(tmp_path):
        ints = int_params(task.body)
        for arg in task.get_arguments():
            if arg.names[0] in NUMERIC or arg.name in ints:
                assert arg.kind is int, f"{name} --{arg.names[0]} is {arg.kind}"
                seen.add(arg.names[0])
    assert seen == NUMERIC


def _app_task(c: Any, a: Union[int, None] = None, b: t.Optional[int] = None,  # noqa: UP007, UP045 (as apps write them)
              d: Annotated[int | None, "x"] = None, e: Optional[int] = None,  # noqa: UP045
              f: int = 3, g: list[int] | None = None, h: str = "int", i: bool = False) -> None:
    """An app's own task, its flags spelled in every way Python allows."""


def test_an_apps_own_task_gets_int_flags_however_it_spells_them() -> None:
    assert int_params(_app_task) == {"a", "b", "d", "e", "f"}  # never a list of ints, a text, or a bool


def test_help_is_kept_for_the_next_reader_and_shared_texts_fill_the_gaps(tmp_path: Path) -> None:
    task = namespace(tmp_path)["k8s.wait"]
    first = {a.name: a.help for a in task.get_arguments()}
    assert first == {a.name: a.help for a in task.get_arguments()}  # invoke used to consume help= as it read it
    assert first["allow_context"] == flags.COMMON_HELP["allow_context"]
    assert first["env"] == "environment: dev, staging, qa… (default app.env, dev unless set)"
    assert first["timeout"] == "seconds to wait in all (default app.timeout, 180s unless set)"


@pytest.mark.parametrize(("text", "shown"), [
    ("seconds (default app.timeout)", "seconds (default app.timeout, 180s unless set)"),
    ("(default app.watch.debounce_ms)", "(default app.watch.debounce_ms, 300ms unless set)"),
    ("(default app.cluster.minikube.profile)", "(default app.cluster.minikube.profile, minikube unless set)"),
    ("(default app.logs.selector, else app=<name>)", "(default app.logs.selector, else app=<name>)"),  # "" is no value
    ("(default app.nothing.here)", "(default app.nothing.here)"),
    ("(default: every image in app.images)", "(default: every image in app.images)"),
])
def test_defaults_are_shown_with_their_values(text: str, shown: str) -> None:
    assert flags.with_defaults(text) == shown


@pytest.mark.parametrize(("value", "flag", "expected"), [
    (None, "timeout", None), ("", "timeout", None), (120, "timeout", 120), ("120", "--timeout", 120),
    ("120s", "timeout", 120), (" 7 ", "cycles", 7), ("250ms", "debounce_ms", 250), (0, "keep", 0), ("3", "keep", 3),
])
def test_int_flag_accepts(value: Any, flag: str, expected: int | None) -> None:
    assert flags.int_flag(value, flag) == expected


@pytest.mark.parametrize(("value", "flag", "words"), [
    ("abc", "timeout", "--timeout 'abc' is not a whole number"),
    (0, "timeout", "--timeout 0 must be greater than 0"),
    ("-5", "timeout", "--timeout '-5' must be greater than 0"),
    ("1.5", "cycles", "--cycles '1.5' is not a whole number"),
    ("5s", "cycles", "--cycles '5s' is not a whole number"),  # only durations take a unit
    (-1, "keep", "--keep -1 must be 0 or more"),
    (True, "tail", "--tail True is not a whole number"),
    ("x", "max_delay_ms", "--max-delay-ms 'x' is not a whole number"),
])
def test_int_flag_rejects_with_the_flag_and_an_example(value: Any, flag: str, words: str) -> None:
    with pytest.raises(KitError) as raised:
        flags.int_flag(value, flag)
    assert raised.value.message == words and raised.value.code == 2
    assert raised.value.hint.startswith(f"write e.g. {words.split()[0]} ")


@pytest.mark.parametrize("task", [workflow.up, watch.watch, watch.dev, k8s.wait])
@pytest.mark.parametrize("value", ["0", "-5", "abc"])
def test_numeric_flags_are_checked_before_any_command(tmp_path: Path, task: Task[Any], value: str) -> None:
    c = StrictContext(app={"root": str(make_app(tmp_path))})
    with pytest.raises(Exit) as raised:
        task(c, timeout=value)
    assert raised.value.code == 2 and f"error: --timeout {value!r} " in str(raised.value.message)
    assert c.commands == []


# -- through `inv`, as a user types it --------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_app(tmp_path_factory.mktemp("flags"))


def test_render_h_prints_help_not_yaml(app: Path) -> None:
    (app / ".env").write_text("BASE_IMAGE=busybox:1\n")
    result = inv(app, "k8s.render", "-h")
    assert result.returncode == 0, result.stderr
    assert "Usage: inv[oke] [--core-opts] k8s.render [--options]" in result.stdout
    assert "--show-secrets" in result.stdout and "apiVersion" not in result.stdout and "kind:" not in result.stdout


def test_help_shows_int_flags_short_flags_and_default_values(app: Path) -> None:
    result = inv(app, "up", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # help wraps long lines
    assert "-t INT, --timeout=INT seconds to wait for readiness in all (default app.timeout, 180s unless set)" in text
    assert "-e STRING, --env=STRING environment: dev, staging, qa… (default app.env, dev unless set)" in text
    assert "-a, --allow-context" in text


@pytest.mark.parametrize(("args", "words"), [
    (["up", "--timeout", "abc"], "error: --timeout 'abc' is not a whole number"),
    (["up", "--timeout", "0"], "error: --timeout '0' must be greater than 0"),
    (["up", "--timeout", "-5"], "error: --timeout '-5' must be greater than 0"),
    (["up", "--timeout=-5"], "error: --timeout '-5' must be greater than 0"),
    (["k8s.wait", "-t", "0"], "error: --timeout '0' must be greater than 0"),
    (["dev", "--debounce-ms", "0"], "error: --debounce-ms '0' must be greater than 0"),
    (["watch", "--cycles", "x"], "error: --cycles 'x' is not a whole number"),
])
def test_bad_numbers_stop_inv_before_any_task_runs(app: Path, args: list[str], words: str) -> None:
    # PATH without kubectl or docker: had a task started, it would fail with 127 ("kubectl not found")
    result = inv(app, *args, env={"PATH": "/nonexistent"})
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "fix: write e.g. --" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
