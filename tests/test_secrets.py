"""Secrets from .env-style files: generated objects, values never printed, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import make_app
from invoke import Exit
from strict import StrictContext
from test_tasks_up import hello_config

from devloop import k8s, shell
from devloop.kit import App


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    app = make_app(tmp_path)
    (app / "secrets").mkdir()
    (app / "secrets" / "dev.env.example").write_text("DB_PASSWORD=change-me\n")
    return app


def config(app_dir: Path) -> dict:  # type: ignore[type-arg]
    return hello_config(app_dir, cluster={"provider": "docker", "ip": "127.0.0.1"},
                        secrets={"hello-secrets": "secrets/{env}.env"})


def test_secret_generated_from_the_env_file_and_masked_when_printed(app_dir: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "secrets" / "dev.env").write_text("DB_PASSWORD=s3cr3t-value\nAPI_TOKEN='tok en'\n")
    c = StrictContext({}, app=config(app_dir))
    k8s.render_(c)
    out = capsys.readouterr()
    secret = next(d for d in yaml.safe_load_all(out.out) if d["kind"] == "Secret")
    assert secret["metadata"]["name"] == "hello-secrets"
    assert secret["stringData"] == {"DB_PASSWORD": "****", "API_TOKEN": "****"}
    assert "s3cr3t-value" not in out.out + out.err
    k8s.render_(c, show_secrets=True)
    assert "s3cr3t-value" in capsys.readouterr().out
    assert shell.mask("password is s3cr3t-value") == "password is ****"


def test_rendered_file_holds_values_with_owner_only_permissions(app_dir: Path) -> None:
    (app_dir / "secrets" / "dev.env").write_text("DB_PASSWORD=s3cr3t-value\n")
    c = StrictContext({}, app=config(app_dir))
    app = App.load(c)
    target = k8s.write_rendered(app, k8s.rendered(app))
    assert "s3cr3t-value" in target.read_text()
    assert target.stat().st_mode & 0o077 == 0
    assert (app_dir / ".kit" / ".gitignore").read_text() == "*\n"


def test_missing_secret_file_says_which_example_to_copy(app_dir: Path) -> None:
    c = StrictContext({}, app=config(app_dir))
    with pytest.raises(Exit) as err:
        k8s.render_(c)
    message = str(err.value.message)
    assert "secret hello-secrets: file" in message and "secrets/dev.env not found" in message
    assert "cp secrets/dev.env.example secrets/dev.env" in message


def test_malformed_secret_file_names_the_line_without_the_value(app_dir: Path) -> None:
    (app_dir / "secrets" / "dev.env").write_text("OK=1\nDB_PASSWORD s3cr3t-value\nTOKEN=\"unterminated\n")
    c = StrictContext({}, app=config(app_dir))
    with pytest.raises(Exit) as err:
        k8s.render_(c)
    message = str(err.value.message)
    assert "dev.env:2: cannot parse the line starting 'DB_PASSWORD'" in message
    assert "s3cr3t-value" not in message


def test_secret_values_are_masked_by_every_task_not_only_render(app_dir: Path) -> None:
    (app_dir / "secrets" / "dev.env").write_text("DB_PASSWORD=Sup3rS3cretValue43\n")
    App.load(StrictContext({}, app=config(app_dir)))  # what k8s.logs, status and forward start with
    assert shell.mask("worker pw=Sup3rS3cretValue43") == "worker pw=****"


def test_a_secret_file_in_the_build_context_is_warned_of_until_dockerignore_excludes_it(
        app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "secrets" / "dev.env").write_text("DB_PASSWORD=s3cr3t-value\n")
    (app_dir / "secrets" / "qa.env").write_text("DB_PASSWORD=other\n")
    c = StrictContext({}, app=config(app_dir))
    k8s.render_(c)
    err = capsys.readouterr().err
    for name in ("secrets/dev.env", "secrets/qa.env"):  # every environment's file
        assert f"warning: image hello: add {name} to {app_dir / '.dockerignore'} — a Secret's file (app.secrets) is in " \
               "the build context" in err
    assert "s3cr3t-value" not in err
    app = App.load(StrictContext({}, app=config(app_dir)))
    for _ in range(2):  # two watch cycles: each plans the image again
        app.forget("plan:")
        k8s.rendered(app)
    assert capsys.readouterr().err.count("secrets/dev.env to") == 1  # said once a run
    with (app_dir / ".dockerignore").open("a") as ignore:
        ignore.write("secrets/\n")
    k8s.render_(StrictContext({}, app=config(app_dir)))
    assert "a Secret's file" not in capsys.readouterr().err
