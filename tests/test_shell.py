"""The command funnel: echo with secrets masked, --dry, failures as KitError with evidence."""

from __future__ import annotations

import pytest
from strict import StrictContext, fail, ok

from devloop import shell
from devloop.core.errors import KitError


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell, "_SECRETS", set())


def test_echoes_the_exact_command_quoted(capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({"docker build --tag 'a b' .": ok()})
    shell.run(c, ["docker", "build", "--tag", "a b", "."])
    assert c.commands == ["docker build --tag 'a b' ."]
    assert "$ docker build --tag 'a b' ." in capsys.readouterr().err


def test_secrets_are_masked_in_echo_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    shell.register_secrets_from_env({"DB_PASSWORD": "hunter22", "PLAIN": "visible"})
    c = StrictContext({"tool --pw hunter22 visible": fail(3, stderr="auth hunter22 rejected")})
    with pytest.raises(KitError) as err:
        shell.run(c, ["tool", "--pw", "hunter22", "visible"])
    rendered = err.value.render()
    assert "hunter22" not in rendered and "hunter22" not in capsys.readouterr().err
    assert "****" in rendered and "visible" in rendered
    assert err.value.code == 3 and "auth **** rejected" in err.value.evidence


def test_dry_prints_changes_without_running_but_runs_queries(capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({"kubectl config current-context": ok("minikube\n")}, dry=True)
    result = shell.run(c, ["kubectl", "apply", "-f", "x.yaml"])
    assert result.exited == 0 and c.commands == []
    assert "$ kubectl apply -f x.yaml    # --dry: not run" in capsys.readouterr().err
    assert shell.run(c, ["kubectl", "config", "current-context"], query=True, capture=True).stdout == "minikube\n"
    assert c.commands == ["kubectl config current-context"]


def test_missing_tool_gets_an_install_hint() -> None:
    c = StrictContext({"kubectl get pods": fail(127, stderr="bash: kubectl: command not found")})
    with pytest.raises(KitError) as err:
        shell.run(c, ["kubectl", "get", "pods"])
    assert err.value.message == "kubectl not found"
    assert "install kubectl" in err.value.hint and err.value.code == 127


def test_unchecked_failure_returns_the_result() -> None:
    c = StrictContext({"docker image inspect x": fail(1, stderr="No such image")})
    assert shell.run(c, ["docker", "image", "inspect", "x"], check=False).exited == 1


def test_docker_env_is_shown_in_the_echo(capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext({"docker build .": ok()})
    shell.run(c, ["docker", "build", "."], env={"DOCKER_HOST": "tcp://192.168.49.2:2376", "OTHER": "x"})
    assert "$ DOCKER_HOST=tcp://192.168.49.2:2376 docker build ." in capsys.readouterr().err


def test_strict_context_refuses_unexpected_commands() -> None:
    c = StrictContext({})
    with pytest.raises(NotImplementedError):
        shell.run(c, ["rm", "-rf", "/"])


def test_strict_context_raises_on_failure_without_warn() -> None:
    from invoke.exceptions import UnexpectedExit

    c = StrictContext({"false": fail(1)})
    with pytest.raises(UnexpectedExit):
        c.run("false")
