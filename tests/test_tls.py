"""TLS: when a certificate is made again (pure core), and `inv tls.cert`'s exact commands, files and Secret."""

from __future__ import annotations

import base64
import shlex
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Exit
from strict import StrictContext, fail, ok

from devloop import shell, tls
from devloop.core import tls as core
from devloop.core.errors import KitError
from devloop.kit import App

DAY = 86400.0
NOW = 1_800_000_000.0


# -- core ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("info", "host", "now", "expected"), [
    (None, "demoapp.10.0.0.1.nip.io", NOW, "no certificate yet for demoapp.10.0.0.1.nip.io"),
    (core.CertInfo("demoapp.10.0.0.1.nip.io", NOW, NOW + 365 * DAY), "demoapp.10.0.0.1.nip.io", NOW, None),
    (core.CertInfo("demoapp.10.0.0.1.nip.io", NOW, NOW + 365 * DAY), "demoapp.10.0.0.2.nip.io", NOW,
     "the host changed: the certificate is for demoapp.10.0.0.1.nip.io, the Ingress host is now demoapp.10.0.0.2.nip.io"),
    (core.CertInfo("h.nip.io", NOW, NOW + 10 * DAY), "h.nip.io", NOW, "less than 30 days left"),
    (core.CertInfo("h.nip.io", NOW - 400 * DAY, NOW - DAY), "h.nip.io", NOW, "expired on"),
])
def test_renewal_reason(info: core.CertInfo | None, host: str, now: float, expected: str | None) -> None:
    reason = core.renewal_reason(info, host, now)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


@pytest.mark.parametrize("text", [None, "", "not json", "{}", '{"host": "h"}', "[1, 2]"])
def test_unreadable_metadata_means_no_certificate(text: str | None) -> None:
    assert core.read_info(text) is None


def test_metadata_round_trips() -> None:
    info = core.new_info("demoapp.1.2.3.4.nip.io", NOW)
    assert core.read_info(info.to_json()) == info
    assert info.not_after - info.created == core.CERT_DAYS * DAY


@pytest.mark.parametrize("host", ["demoapp.192.168.49.2.nip.io", "a-b.example.test", "127.0.0.1", "x"])
def test_valid_hosts(host: str) -> None:
    core.check_host(host)


@pytest.mark.parametrize("host", ["", "Demo.nip.io", "a/b.nip.io", "-a.nip.io", "a..b", "a b", "h.nip.io\nCN=x",
                                  "x" * 64 + ".nip.io"])
def test_invalid_hosts_are_refused_with_the_key_to_fix(host: str) -> None:
    with pytest.raises(KitError) as caught:
        core.check_host(host)
    assert "not a valid DNS name" in caught.value.message and "app.tls.host" in caught.value.hint


def test_request_config_names_the_host_and_a_server_certificate() -> None:
    text = core.request_config("demoapp.10.0.0.1.nip.io", "demoapp")
    assert "CN = demoapp.10.0.0.1.nip.io" in text
    assert "subjectAltName = DNS:demoapp.10.0.0.1.nip.io" in text
    assert "CA:FALSE" in text and "serverAuth" in text


def test_a_long_host_goes_in_subject_alt_name_only() -> None:
    host = ("a" * 60) + ".10.0.0.1.nip.io"
    text = core.request_config(host, "demoapp")
    assert f"subjectAltName = DNS:{host}" in text and "CN = demoapp\n" in text


def test_an_ip_host_is_an_ip_alt_name() -> None:
    assert "subjectAltName = IP:127.0.0.1" in core.request_config("127.0.0.1", "demoapp")


def test_secret_document_is_a_tls_secret() -> None:
    doc = core.secret_document("demoapp-tls", b"-----BEGIN CERTIFICATE-----\nx\n", b"-----BEGIN PRIVATE KEY-----\ny\n",
                               "demoapp")
    assert doc["type"] == "kubernetes.io/tls" and doc["metadata"] == {"name": "demoapp-tls", "namespace": "demoapp"}
    assert base64.b64decode(doc["data"]["tls.key"]).startswith(b"-----BEGIN PRIVATE KEY")
    with pytest.raises(KitError):
        core.secret_document("demoapp-tls", b"garbage", b"garbage")


@pytest.mark.parametrize("name", ["Demo-TLS", "demo_tls", "-x", ""])
def test_invalid_secret_names(name: str) -> None:
    with pytest.raises(KitError, match="not a valid Kubernetes name"):
        core.check_secret_name(name)


# -- `inv tls.cert` against a strict context ----------------------------------------------------------


class OpensslContext(StrictContext):
    """Runs the real openssl for the `openssl req` line (so the argv is proven to work); the rest is mocked."""

    def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        result = super().run(command, *args, **kwargs)
        if command.startswith("openssl "):
            subprocess.run(shlex.split(command), check=True, capture_output=True)
        return result


def config(root: Path, ip: str = "127.0.0.1", **extra: Any) -> dict[str, Any]:
    return {"root": str(root), "name": "demoapp",
            "environments": {"dev": {"namespace": "demoapp"}, "staging": {"namespace": "demoapp-staging"},
                             "qa": {"namespace": "demoapp-qa"}},
            "cluster": {"provider": "docker", "ip": ip, "context": "k8s-local"}, **extra}


def openssl_line(root: Path, env: str, secret: str) -> str:
    folder = root / ".kit" / "tls" / env / secret
    return shlex.join(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", "365",
                       "-config", f"{folder}/openssl.cnf", "-keyout", f"{folder}/tls.key.new",
                       "-out", f"{folder}/tls.crt.new"])


def namespace_lines(namespace: str, exists: bool) -> dict[str, Any]:
    lines: dict[str, Any] = {
        f"kubectl --context k8s-local get namespace {namespace} -o name":
            ok(f"namespace/{namespace}\n") if exists else fail(1, stderr=f'namespaces "{namespace}" not found')}
    if not exists:
        lines[f"kubectl --context k8s-local create namespace {namespace}"] = ok()
    return lines


def apply_line(env: str, secret: str, namespace: str) -> str:
    return f"kubectl --context k8s-local --namespace {namespace} apply -f .kit/tls/{env}/{secret}/secret.yaml"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tls, "now", lambda: NOW)
    return tmp_path


@pytest.mark.parametrize(("env", "secret", "namespace", "host"), [
    ("dev", "demoapp-tls", "demoapp", "demoapp.127.0.0.1.nip.io"),
    ("staging", "demoapp-staging-tls", "demoapp-staging", "demoapp-staging.127.0.0.1.nip.io"),
    ("qa", "demoapp-qa-tls", "demoapp-qa", "demoapp-qa.127.0.0.1.nip.io"),
])
def test_cert_makes_a_certificate_for_the_environments_host_and_applies_it(
        root: Path, env: str, secret: str, namespace: str, host: str, capsys: pytest.CaptureFixture[str]) -> None:
    c = OpensslContext({openssl_line(root, env, secret): ok(), **namespace_lines(namespace, exists=False),
                        apply_line(env, secret, namespace): ok()}, app=config(root), repeat=False)
    tls.cert(c, env=env)
    assert c.commands == [openssl_line(root, env, secret), f"kubectl --context k8s-local get namespace {namespace} -o name",
                          f"kubectl --context k8s-local create namespace {namespace}", apply_line(env, secret, namespace)]
    folder = root / ".kit" / "tls" / env / secret
    assert stat.S_IMODE((folder / "tls.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "secret.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (root / ".kit" / ".gitignore").read_text() == "*\n"
    assert core.read_info((folder / "cert.json").read_text()) == core.new_info(host, NOW)
    subject = subprocess.run(["openssl", "x509", "-in", str(folder / "tls.crt"), "-noout", "-ext", "subjectAltName"],
                             capture_output=True, text=True, check=True).stdout
    assert f"DNS:{host}" in subject
    doc = yaml.safe_load((folder / "secret.yaml").read_text())
    assert doc["kind"] == "Secret" and doc["type"] == "kubernetes.io/tls"
    assert doc["metadata"]["name"] == secret and doc["metadata"]["namespace"] == namespace
    assert doc["metadata"]["labels"] == {"devloop/app": "demoapp", "devloop/env": env}
    assert base64.b64decode(doc["data"]["tls.key"]) == (folder / "tls.key").read_bytes()
    err = capsys.readouterr().err
    assert doc["data"]["tls.key"][:40] not in err and "PRIVATE KEY" not in err
    assert f"tls: Secret {secret} (namespace {namespace}) holds a self-signed certificate for {host}; an Ingress serves " \
           f"it on https://{host}/ when its tls: section names ${{TLS_SECRET}} for ${{INGRESS_HOST}}" in err
    assert "--cacert" in err


def test_an_unchanged_host_keeps_the_certificate_and_a_new_ip_makes_a_new_one(root: Path) -> None:
    secret, line = "demoapp-tls", openssl_line(root, "dev", "demoapp-tls")
    first = OpensslContext({line: ok(), **namespace_lines("demoapp", True), apply_line("dev", secret, "demoapp"): ok()},
                           app=config(root))
    tls.cert(first)
    key = (root / ".kit/tls/dev/demoapp-tls/tls.key").read_bytes()

    again = StrictContext({**namespace_lines("demoapp", True), apply_line("dev", secret, "demoapp"): ok()},
                          app=config(root))
    tls.cert(again)  # no openssl line is expected: the strict context would fail on one
    assert not any(cmd.startswith("openssl") for cmd in again.commands)
    assert (root / ".kit/tls/dev/demoapp-tls/tls.key").read_bytes() == key

    moved = OpensslContext({line: ok(), **namespace_lines("demoapp", True), apply_line("dev", secret, "demoapp"): ok()},
                           app=config(root, ip="192.168.49.2"))
    tls.cert(moved)
    assert moved.commands[0] == line
    info = core.read_info((root / ".kit/tls/dev/demoapp-tls/cert.json").read_text())
    assert info is not None and info.host == "demoapp.192.168.49.2.nip.io"
    assert (root / ".kit/tls/dev/demoapp-tls/tls.key").read_bytes() != key


def test_force_makes_a_new_certificate(root: Path) -> None:
    line = openssl_line(root, "dev", "demoapp-tls")

    def results() -> dict[str, Any]:  # a fresh table each time: MockContext consumes it
        return {line: ok(), **namespace_lines("demoapp", True), apply_line("dev", "demoapp-tls", "demoapp"): ok()}

    tls.cert(OpensslContext(results(), app=config(root)))
    forced = OpensslContext(results(), app=config(root))
    tls.cert(forced, force=True)
    assert forced.commands[0] == line


def test_configured_host_and_secret_win(root: Path) -> None:
    app = config(root, tls={"host": "shop.${MINIKUBE_IP}.nip.io", "secret": "shop-cert"})
    line = openssl_line(root, "dev", "shop-cert")
    c = OpensslContext({line: ok(), **namespace_lines("demoapp", True), apply_line("dev", "shop-cert", "demoapp"): ok()},
                       app=app)
    tls.cert(c)
    info = core.read_info((root / ".kit/tls/dev/shop-cert/cert.json").read_text())
    assert info is not None and info.host == "shop.127.0.0.1.nip.io"


def test_dry_run_shows_the_commands_and_writes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = StrictContext(namespace_lines("demoapp", exists=False), app=config(root), dry=True)
    tls.cert(c)
    assert c.commands == ["kubectl --context k8s-local get namespace demoapp -o name"]  # the only read-only command
    err = capsys.readouterr().err
    assert f"$ {openssl_line(root, 'dev', 'demoapp-tls')}    # --dry: not run" in err
    assert "$ kubectl --context k8s-local create namespace demoapp    # --dry: not run" in err
    assert f"$ {apply_line('dev', 'demoapp-tls', 'demoapp')}    # --dry: not run" in err
    assert "tls: Secret demoapp-tls (namespace demoapp) would hold a self-signed certificate" in err
    assert not (root / ".kit").exists()


def test_openssl_missing_is_a_clean_error(root: Path) -> None:
    c = StrictContext({openssl_line(root, "dev", "demoapp-tls"): fail(127, stderr="openssl: command not found")},
                      app=config(root))
    with pytest.raises(Exit) as caught:
        tls.cert(c)
    assert caught.value.code == 127 and "openssl not found" in str(caught.value.message)
    assert not (root / ".kit/tls/dev/demoapp-tls/tls.key").exists()


def test_a_failed_openssl_keeps_the_previous_certificate(root: Path) -> None:
    line = openssl_line(root, "dev", "demoapp-tls")
    tls.cert(OpensslContext({line: ok(), **namespace_lines("demoapp", True),
                             apply_line("dev", "demoapp-tls", "demoapp"): ok()}, app=config(root)))
    before = (root / ".kit/tls/dev/demoapp-tls/tls.crt").read_bytes()
    broken = StrictContext({line: fail(1, stderr="req: some failure")}, app=config(root))
    with pytest.raises(Exit) as caught:
        tls.cert(broken, force=True)
    assert "command failed (exit 1): openssl req" in str(caught.value.message)
    assert (root / ".kit/tls/dev/demoapp-tls/tls.crt").read_bytes() == before


def test_an_invalid_configured_host_stops_before_any_command(root: Path) -> None:
    c = StrictContext({}, app=config(root, tls={"host": "bad host", "secret": ""}))
    with pytest.raises(Exit) as caught:
        tls.cert(c)
    assert caught.value.code == 2 and "'bad host' is not a valid DNS name" in str(caught.value.message)
    assert c.commands == []


# -- tls_documents: what the manifest renderer adds ------------------------------------------------------


def test_tls_documents_is_empty_without_a_certificate(root: Path) -> None:
    app = App.load(StrictContext({}, app=config(root)), "staging")
    assert tls.tls_documents(app) == []


def test_tls_documents_gives_the_secret_for_the_current_host_only(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = openssl_line(root, "staging", "demoapp-staging-tls")
    tls.cert(OpensslContext({line: ok(), **namespace_lines("demoapp-staging", True),
                             apply_line("staging", "demoapp-staging-tls", "demoapp-staging"): ok()}, app=config(root)),
             env="staging")
    docs = tls.tls_documents(App.load(StrictContext({}, app=config(root)), "staging"))
    assert [(d["kind"], d["type"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in docs] == [
        ("Secret", "kubernetes.io/tls", "demoapp-staging-tls", "demoapp-staging")]
    assert shell.mask(docs[0]["data"]["tls.key"]) == "****"  # registered: never printed by the kit

    stale = tls.tls_documents(App.load(StrictContext({}, app=config(root, ip="10.1.1.1")), "staging"))
    assert stale == []
    assert "left out: the host changed" in capsys.readouterr().err


# -- `inv tls.cert` as a user runs it, against the real cluster ---------------------------------------------


@pytest.mark.integration
def test_cert_on_the_real_cluster_follows_the_host(tmp_path: Path, cluster: str) -> None:
    from conftest import inv
    from test_demo_k8s import demo_app

    namespace = "kit-tls-staging"
    app = demo_app(tmp_path, {"staging": namespace})
    env = {"INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1"}

    def san() -> str:
        secret = subprocess.run(["kubectl", "--namespace", namespace, "get", "secret", "demoapp-staging-tls", "-o",
                                 "jsonpath={.type} {.data.tls\\.crt}"], capture_output=True, text=True, check=True).stdout
        kind, _, crt = secret.partition(" ")
        assert kind == "kubernetes.io/tls"
        return subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=base64.b64decode(crt),
                              capture_output=True, check=True).stdout.decode()

    try:
        first = inv(app, "tls.cert", "--env", "staging", env=env)
        assert first.returncode == 0, first.stderr
        assert "DNS:demoapp-staging.127.0.0.1.nip.io" in san()
        key = app / ".kit" / "tls" / "staging" / "demoapp-staging-tls" / "tls.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (app / ".kit" / ".gitignore").read_text() == "*\n"  # the kit's folder is git-ignored

        kept = inv(app, "tls.cert", "--env", "staging", env=env)
        assert kept.returncode == 0 and "is current" in kept.stderr and "$ openssl" not in kept.stderr

        moved = inv(app, "tls.cert", "--env", "staging", env={**env, "INVOKE_APP_CLUSTER_IP": "127.0.0.2"})
        assert moved.returncode == 0, moved.stderr
        assert "the host changed" in moved.stderr and "$ openssl req" in moved.stderr
        assert "DNS:demoapp-staging.127.0.0.2.nip.io" in san()
        assert "PRIVATE KEY" not in first.stderr + kept.stderr + moved.stderr
    finally:
        subprocess.run(["kubectl", "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
                       capture_output=True)


def test_an_unknown_environment_is_refused_with_the_configured_ones(root: Path) -> None:
    c = StrictContext({}, app=config(root))
    with pytest.raises(Exit) as caught:
        tls.cert(c, env="prod")
    assert caught.value.code == 2 and "unknown environment 'prod'" in str(caught.value.message)
    assert "dev, qa, staging" in str(caught.value.message) and c.commands == []


def test_a_refused_context_writes_no_key_and_no_secret(root: Path) -> None:
    app = config(root)
    app["cluster"] = {**app["cluster"], "context": "prod-eu"}
    c = StrictContext({}, app=app)
    with pytest.raises(Exit) as caught:
        tls.cert(c)
    assert caught.value.code == 2 and "'prod-eu' is not in app.cluster.allowed_contexts" in str(caught.value.message)
    assert c.commands == [] and not (root / ".kit").exists()
