"""Helm: release names, hosts and TLS secrets per environment (pure core), the exact command lines of
`inv helm.*` (strict context), and runs through the real funnel with the Helm stand-in on PATH."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAKES, REPO, inv
from invoke import Exit
from strict import StrictContext, fail, ok
from test_demo_k8s import demo_app

from devloop import helm
from devloop.core import helm as core
from devloop.core import images as core_images
from devloop.core.errors import KitError

HELM_VERSION = "helm version --short"
CONTEXT = "k8s-local"


# -- core ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "configured", "given", "expected", "is_default"), [
    ("dev", "", None, "demoapp", True),
    ("staging", "", None, "demoapp-staging", True),
    ("qa", "", None, "demoapp-qa", True),
    ("staging", "shop", None, "shop-staging", True),
    ("qa", "", "feature-login", "feature-login", False),
    ("dev", "", "demoapp", "demoapp", True),
])
def test_release_names_are_scoped_by_environment(env: str, configured: str, given: str | None, expected: str,
                                                 is_default: bool) -> None:
    assert core.release("demoapp", env, configured, given) == core.Release(expected, is_default)


@pytest.mark.parametrize("name", ["Demo", "demo_app", "-demo", "demo-", "x" * 54, ""])
def test_invalid_release_names(name: str) -> None:
    with pytest.raises(KitError, match="not a valid Helm release name"):
        core.check_release(name)


def test_hosts_and_secrets_never_clash_between_releases() -> None:
    releases = [core.release("demoapp", env, "", given) for env, given in
                [("dev", None), ("staging", None), ("qa", None), ("qa", "feature-a"), ("qa", "feature-b")]]
    env_hosts = {"demoapp": "demoapp.1.2.3.4.nip.io", "demoapp-staging": "demoapp-staging.1.2.3.4.nip.io",
                 "demoapp-qa": "demoapp-qa.1.2.3.4.nip.io"}
    hosts = [core.release_host(r, env_hosts.get(r.name, ""), "1.2.3.4") for r in releases]
    secrets = [core.release_tls_secret(r, f"{r.name}-tls" if r.is_default else "") for r in releases]
    assert len(set(hosts)) == len(hosts) and len(set(secrets)) == len(secrets)
    assert hosts[3] == "feature-a.1.2.3.4.nip.io" and secrets[3] == "feature-a-tls"


@pytest.mark.parametrize(("value", "escaped"), [("plain", "plain"), ("a,b", "a\\,b"), ("c:\\x", "c:\\\\x")])
def test_set_values_survive_helms_parser(value: str, escaped: str) -> None:
    assert core.escape_set_value(value) == escaped


def test_set_args_are_strings_and_an_empty_template_drops_a_key() -> None:
    facts = {"IMAGE_TAG": "0123e4", "INGRESS_HOST": "h.nip.io", "RELEASE": "r"}
    argv = core.set_args({"image.tag": "${IMAGE_TAG}", "ingress.host": "${INGRESS_HOST}", "x": "",
                          "ingress.hosts[0].host": "${INGRESS_HOST}", "note": "${RELEASE},${RELEASE}"}, facts)
    assert argv == ["--set-string", "image.tag=0123e4", "--set-string", "ingress.host=h.nip.io",
                    "--set-string", "ingress.hosts[0].host=h.nip.io", "--set-string", "note=r\\,r"]


def test_an_unknown_placeholder_in_app_helm_set_names_the_key() -> None:
    with pytest.raises(KitError) as caught:
        core.set_args({"image.tag": "${IMAGE_TAGG}"}, {"IMAGE_TAG": "x"})
    assert "app.helm.set.image.tag: ${IMAGE_TAGG}" in caught.value.message and "${IMAGE_TAG}" in caught.value.hint


@pytest.mark.parametrize(("output", "expected"), [
    ("v3.14.4+g81c902a\n", "v3.14.4"),
    ('version.BuildInfo{Version:"v3.2.1", GitCommit:"fe51"}', "v3.2.1"),
    ("v4.0.0+g1234\n", "v4.0.0"),
])
def test_helm_3_and_later_are_accepted(output: str, expected: str) -> None:
    assert core.check_version(output) == expected


def test_helm_2_is_refused_with_the_way_out() -> None:
    with pytest.raises(KitError) as caught:
        core.check_version("Client: v2.17.0+ga690bad\nError: could not find tiller")
    assert "Helm 2" in caught.value.message and "helm-2to3" in caught.value.hint


def test_chart_references(tmp_path: Path) -> None:
    (tmp_path / "charts" / "demoapp").mkdir(parents=True)
    (tmp_path / "charts" / "demoapp" / "Chart.yaml").write_text("apiVersion: v2\nname: demoapp\nversion: 0.1.0\n")
    (tmp_path / "charts" / "empty").mkdir()
    assert core.chart_ref("charts/demoapp", tmp_path) == str(tmp_path / "charts" / "demoapp")
    assert core.chart_ref("bitnami/nginx", tmp_path) == "bitnami/nginx"
    assert core.chart_ref("oci://registry.example.com/charts/demoapp", tmp_path).startswith("oci://")
    for bad, words in [("", "app.helm.chart is empty"), ("charts/empty", "no Chart.yaml"),
                       ("./charts/missing", "not found"), ("charts/x/y", "not found"), ("demoapp", "not found")]:
        with pytest.raises(KitError, match=words):
            core.chart_ref(bad, tmp_path)


def test_values_files_fill_in_the_environment_and_report_every_missing_one(tmp_path: Path) -> None:
    (tmp_path / "values-staging.yaml").write_text("{}\n")
    assert core.values_files(["values-{env}.yaml"], tmp_path, "staging") == [tmp_path / "values-staging.yaml"]
    with pytest.raises(KitError) as caught:
        core.values_files(["values-{env}.yaml", "more-{env}.yaml"], tmp_path, "qa")
    assert "values-qa.yaml" in caught.value.message and "more-qa.yaml" in caught.value.message


def test_parse_releases() -> None:
    assert core.parse_releases('[{"name": "demoapp", "status": "deployed"}]') == [{"name": "demoapp", "status": "deployed"}]
    assert core.parse_releases("") == []
    for bad in ("not json", '{"name": "x"}'):
        with pytest.raises(KitError):
            core.parse_releases(bad)


# -- tasks against a strict context ------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    app = tmp_path / "demo"
    shutil.copytree(REPO / "charts", app / "charts")
    (app / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
    monkeypatch.chdir(app)
    return app


def config(root: Path, provider: str = "docker", **extra: Any) -> dict[str, Any]:
    return {"root": str(root), "name": "demoapp",
            "images": {"demoapp": {"context": ".", "dockerfile": "Dockerfile"}},
            "environments": {"dev": {"namespace": "demoapp"}, "staging": {"namespace": "demoapp-staging"},
                             "qa": {"namespace": "demoapp-qa"}},
            "helm": {"chart": "charts/demoapp", "values": ["charts/demoapp/values-{env}.yaml"]},
            "cluster": {"provider": provider, "ip": "127.0.0.1", "context": CONTEXT,
                        "registry": "registry.example.com/team"}, **extra}


def tag(root: Path) -> str:
    return core_images.build_inputs(root, root / "Dockerfile", {}).tag


def upgrade_line(root: Path, release: str, namespace: str, env: str, host: str, secret: str,
                 repository: str = "demoapp", extra: tuple[str, ...] = ()) -> str:
    return shlex.join(["helm", "upgrade", "--install", release, str(root / "charts" / "demoapp"),
                       "--namespace", namespace, "--create-namespace",
                       "--values", str(root / "charts" / "demoapp" / f"values-{env}.yaml"),
                       "--set-string", f"image.repository={repository}", "--set-string", f"image.tag={tag(root)}",
                       "--set-string", f"ingress.host={host}", "--set-string", f"ingress.tlsSecret={secret}",
                       *extra, "--kube-context", CONTEXT])


UPGRADES = [
    # env, --release, release, namespace, host, secret
    ("dev", None, "demoapp", "demoapp", "demoapp.127.0.0.1.nip.io", "demoapp-tls"),
    ("staging", None, "demoapp-staging", "demoapp-staging", "demoapp-staging.127.0.0.1.nip.io", "demoapp-staging-tls"),
    ("qa", None, "demoapp-qa", "demoapp-qa", "demoapp-qa.127.0.0.1.nip.io", "demoapp-qa-tls"),
    ("qa", "feature-x", "feature-x", "demoapp-qa", "feature-x.127.0.0.1.nip.io", "feature-x-tls"),
]


@pytest.mark.parametrize(("env", "given", "release", "namespace", "host", "secret"), UPGRADES)
def test_upgrade_runs_exactly_these_commands(root: Path, env: str, given: str | None, release: str, namespace: str,
                                             host: str, secret: str) -> None:
    line = upgrade_line(root, release, namespace, env, host, secret)
    c = StrictContext({HELM_VERSION: ok("v3.14.4+g81c902a\n"), line: ok()}, app=config(root), repeat=False)
    helm.upgrade(c, release=given, env=env, no_tls=True)
    assert c.commands == [HELM_VERSION, line]


class OpensslContext(StrictContext):
    """Runs the real openssl for the `openssl req` line, so the certificate files exist; the rest is mocked."""

    def run(self, command: str, *args: Any, **kwargs: Any) -> Any:
        result = super().run(command, *args, **kwargs)
        if command.startswith("openssl "):
            subprocess.run(shlex.split(command), check=True, capture_output=True)
        return result


def test_upgrade_applies_the_app_secrets_and_the_release_certificate_then_installs(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "secrets").mkdir()
    (root / "secrets" / "qa.env").write_text("SECRET_KEY_BASE=qa-very-secret-base\nMYSQL_PASSWORD=qa-db-password\n")
    app = config(root, secrets={"demoapp-secrets": "secrets/{env}.env"})
    folder = root / ".kit" / "tls" / "qa" / "feature-x-tls"
    openssl = shlex.join(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", "365",
                          "-config", f"{folder}/openssl.cnf", "-keyout", f"{folder}/tls.key.new",
                          "-out", f"{folder}/tls.crt.new"])
    get_ns = "kubectl --context k8s-local get namespace demoapp-qa -o name"
    apply = "kubectl --context k8s-local --namespace demoapp-qa apply -f .kit/helm/qa/feature-x-secrets.yaml"
    line = upgrade_line(root, "feature-x", "demoapp-qa", "qa", "feature-x.127.0.0.1.nip.io", "feature-x-tls",
                        extra=("--set", "puma.replicas=1", "--wait", "--timeout", "180s"))
    c = OpensslContext({HELM_VERSION: ok("v3.14.4\n"), openssl: ok(), get_ns: ok("namespace/demoapp-qa\n"), apply: ok(),
                        line: ok()}, app=app, repeat=False)
    helm.upgrade(c, release="feature-x", env="qa", set=["puma.replicas=1"], wait=True)
    assert c.commands == [HELM_VERSION, openssl, get_ns, apply, line]
    secrets_file = root / ".kit" / "helm" / "qa" / "feature-x-secrets.yaml"
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(secrets_file.read_text())}
    assert docs["feature-x-tls"]["type"] == "kubernetes.io/tls"
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"demoapp-qa"}
    assert all(d["metadata"]["labels"]["devloop/env"] == "qa" for d in docs.values())
    assert "demoapp-secrets" in docs
    err = capsys.readouterr().err
    assert "qa-very-secret-base" not in err and "qa-db-password" not in err and "PRIVATE KEY" not in err


def test_upgrade_under_dry_shows_every_command_and_writes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    get_ns = "kubectl --context k8s-local get namespace demoapp -o name"
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"), get_ns: ok("namespace/demoapp\n")}, app=config(root), dry=True,
                      repeat=False)
    helm.upgrade(c)
    assert c.commands == [HELM_VERSION, get_ns]  # only what reads
    err = capsys.readouterr().err
    for shown in ("$ openssl req", "$ kubectl --context k8s-local --namespace demoapp apply -f .kit/helm/dev/demoapp-secrets.yaml",
                  "$ helm upgrade --install demoapp"):
        assert shown in err
    assert err.count("# --dry: not run") == 3
    assert not (root / ".kit").exists()


def test_upgrade_on_a_registry_passes_the_pushed_repository(root: Path) -> None:
    line = upgrade_line(root, "demoapp-staging", "demoapp-staging", "staging", "demoapp-staging.127.0.0.1.nip.io",
                        "demoapp-staging-tls", repository="registry.example.com/team/demoapp")
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"), line: ok()}, app=config(root, provider="registry"), repeat=False)
    helm.upgrade(c, env="staging", no_tls=True)
    assert c.commands[-1] == line


def test_configured_values_map_for_a_helm_create_chart(root: Path) -> None:
    app = config(root)
    app["helm"]["set"] = {"image.repository": "${IMAGE_REPOSITORY}", "image.tag": "${IMAGE_TAG}",
                          "ingress.host": "", "ingress.tlsSecret": "",
                          "ingress.hosts[0].host": "${INGRESS_HOST}", "ingress.tls[0].secretName": "${TLS_SECRET}",
                          "ingress.tls[0].hosts[0]": "${INGRESS_HOST}"}
    line = shlex.join(["helm", "template", "demoapp-staging", str(root / "charts" / "demoapp"),
                       "--namespace", "demoapp-staging",
                       "--values", str(root / "charts" / "demoapp" / "values-staging.yaml"),
                       "--set-string", "image.repository=demoapp", "--set-string", f"image.tag={tag(root)}",
                       "--set-string", "ingress.hosts[0].host=demoapp-staging.127.0.0.1.nip.io",
                       "--set-string", "ingress.tls[0].secretName=demoapp-staging-tls",
                       "--set-string", "ingress.tls[0].hosts[0]=demoapp-staging.127.0.0.1.nip.io"])
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"), line: ok("---\nkind: ConfigMap\n")}, app=app, repeat=False)
    helm.template(c, env="staging")
    assert c.commands == [HELM_VERSION, line]


def test_template_is_read_only_so_it_runs_under_dry(root: Path) -> None:
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"), shell_prefix("helm template demoapp "): ok("---\n")},
                      app=config(root), dry=True, repeat=False)
    helm.template(c)
    assert [cmd.split()[:3] for cmd in c.commands] == [["helm", "version", "--short"], ["helm", "template", "demoapp"]]


def shell_prefix(prefix: str) -> Any:
    return re.compile("^" + re.escape(prefix) + ".*")


@pytest.mark.parametrize(("listing", "expected"), [
    ('[{"name": "demoapp-staging", "namespace": "demoapp-staging", "status": "deployed"}]',
     ["helm uninstall demoapp-staging --namespace demoapp-staging --kube-context k8s-local"]),
    ("[]", []),
])
def test_delete_uninstalls_only_an_installed_release_and_removes_its_secret(
        root: Path, listing: str, expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    list_line = ("helm list --namespace demoapp-staging --output json --filter '^demoapp\\-staging$' "
                 "--kube-context k8s-local")
    secret_line = "kubectl --context k8s-local --namespace demoapp-staging delete secret demoapp-staging-tls --ignore-not-found"
    results = {HELM_VERSION: ok("v3.14.4\n"), list_line: ok(listing), secret_line: ok()}
    results.update({line: ok() for line in expected})
    c = StrictContext(results, app=config(root), repeat=False)
    helm.delete(c, env="staging")
    assert c.commands == [HELM_VERSION, list_line, *expected, secret_line]
    if not expected:
        assert "release demoapp-staging is not installed in namespace demoapp-staging: nothing to uninstall" in \
            capsys.readouterr().err


def test_delete_needs_no_chart(root: Path) -> None:
    app = config(root)
    app["helm"] = {"chart": ""}
    list_line = "helm list --namespace demoapp --output json --filter '^demoapp$' --kube-context k8s-local"
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"), list_line: ok("[]"),
                       "kubectl --context k8s-local --namespace demoapp delete secret demoapp-tls --ignore-not-found": ok()},
                      app=app, repeat=False)
    helm.delete(c)
    c.assert_all_used()  # the release and its TLS Secret are really deleted


@pytest.mark.parametrize(("results", "app_change", "code", "words"), [
    ({HELM_VERSION: fail(127, stderr="helm: not found")}, {}, 127, "helm not found"),
    ({HELM_VERSION: fail(1, stdout="Client: v2.17.0+ga690bad\n", stderr="Error: could not find tiller")}, {}, 2,
     "is Helm 2"),
    ({HELM_VERSION: ok("v3.14.4\n")}, {"helm": {"chart": ""}}, 2, "app.helm.chart is empty"),
    ({HELM_VERSION: ok("v3.14.4\n")}, {"helm": {"chart": "charts/nope"}}, 2, "Helm chart 'charts/nope' not found"),
    ({HELM_VERSION: ok("v3.14.4\n")}, {"helm": {"chart": "charts/demoapp", "values": ["missing-{env}.yaml"]}}, 2,
     "missing-dev.yaml"),
    ({HELM_VERSION: ok("v3.14.4\n")}, {"helm": {"chart": "charts/demoapp", "set": {"image.tag": "${TAGG}"}}}, 2,
     "${TAGG} is not something the kit knows"),
    ({HELM_VERSION: ok("v3.14.4\n")}, {"images": {"a": {}, "b": {}}}, 2, "which one does the chart run"),
])
def test_bad_input_stops_before_anything_changes(root: Path, results: dict[str, Any], app_change: dict[str, Any],
                                                 code: int, words: str) -> None:
    c = StrictContext(results, app={**config(root), **app_change})
    with pytest.raises(Exit) as caught:
        helm.upgrade(c, no_tls=True)
    assert caught.value.code == code and words in str(caught.value.message)
    assert not any(cmd.startswith(("helm upgrade", "kubectl", "openssl")) for cmd in c.commands)


def test_an_invalid_release_flag_is_refused(root: Path) -> None:
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n")}, app=config(root))
    with pytest.raises(Exit) as caught:
        helm.upgrade(c, release="Feature_X", no_tls=True)
    assert "'Feature_X' is not a valid Helm release name" in str(caught.value.message)


def test_list_prints_a_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = json.dumps([{"name": "demoapp-qa", "namespace": "demoapp-qa", "revision": "3", "status": "deployed",
                           "chart": "demoapp-0.1.0", "updated": "2024-05-01 10:00:00 +0000 UTC"}])
    c = StrictContext({HELM_VERSION: ok("v3.14.4\n"),
                       "helm list --namespace demoapp-qa --output json --kube-context k8s-local": ok(listing)},
                      app=config(root))
    helm.list_(c, env="qa")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "NAMESPACE", "REVISION", "STATUS", "CHART", "UPDATED"]
    assert out[1].split()[:5] == ["demoapp-qa", "demoapp-qa", "3", "deployed", "demoapp-0.1.0"]


# -- through the real funnel, with the stand-in on PATH -----------------------------------------------


def fake_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_HELM_LOG": str(tmp_path / "helm.log"),
            "INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1",
            "INVOKE_APP_CLUSTER_CONTEXT": CONTEXT}


def helm_calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "helm.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_stand_in_says_what_it_is() -> None:
    lines = (FAKES / "helm").read_text().splitlines()
    assert lines[0].startswith("#!") and "stand-in" in lines[1]


def test_template_and_upgrade_through_the_funnel_with_the_stand_in(tmp_path: Path) -> None:
    app = demo_app(tmp_path, secrets=False)  # with --no-tls and no app.secrets, Helm is the only thing run
    env = fake_env(tmp_path)
    rendered = inv(app, "helm.template", "--env", "staging", env=env)
    assert rendered.returncode == 0, rendered.stderr
    assert "$ helm template demoapp-staging" in rendered.stderr  # the command is shown, on stderr
    docs = list(yaml.safe_load_all(rendered.stdout))
    values = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    image_tag = values["image.tag"]
    assert values == {"image.repository": "demoapp", "image.tag": image_tag,
                      "ingress.host": "demoapp-staging.127.0.0.1.nip.io", "ingress.tlsSecret": "demoapp-staging-tls"}
    assert next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        f"demoapp:{image_tag}"

    for env_name in ("staging", "qa"):
        result = inv(app, "helm.upgrade", "--env", env_name, "--no-tls", env=env)
        assert result.returncode == 0, result.stderr
        assert f"helm: release demoapp-{env_name} ({env_name}) serves https://demoapp-{env_name}.127.0.0.1.nip.io/" \
            in result.stderr
    listed = inv(app, "helm.list", "--env", "qa", env=env)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:4] == ["demoapp-qa", "demoapp-qa", "1", "deployed"]

    upgrades = [call for call in helm_calls(tmp_path) if call[0] == "upgrade"]
    assert [u[2] for u in upgrades] == ["demoapp-staging", "demoapp-qa"]
    hosts = {u[u.index("--set-string", u.index("--set-string") + 4) + 1] for u in upgrades}
    assert hosts == {"ingress.host=demoapp-staging.127.0.0.1.nip.io", "ingress.host=demoapp-qa.127.0.0.1.nip.io"}
    staging = upgrades[0]
    assert staging[:8] == ["upgrade", "--install", "demoapp-staging", str(app / "charts" / "demoapp"),
                           "--namespace", "demoapp-staging", "--create-namespace", "--values"]
    assert f"image.tag={image_tag}" in staging and "ingress.tlsSecret=demoapp-staging-tls" in staging
    assert staging[-2:] == ["--kube-context", CONTEXT]


def test_helm_2_on_path_is_refused_cleanly(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    result = inv(app, "helm.template", env={**fake_env(tmp_path), "FAKE_HELM_VERSION": "v2.17.0"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is Helm 2" in result.stderr and "helm-2to3" in result.stderr


# -- the whole release life cycle against the real cluster (Helm itself is the stand-in) --------------------


NAMESPACE = "kit-helm-qa"


@pytest.mark.integration
def test_upgrade_stores_the_release_tls_secret_and_delete_removes_it(tmp_path: Path, cluster: str) -> None:
    app = demo_app(tmp_path, {"qa": NAMESPACE})
    env = {**fake_env(tmp_path), "INVOKE_APP_CLUSTER_CONTEXT": ""}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--namespace", NAMESPACE, *args], capture_output=True, text=True)

    try:
        up = inv(app, "helm.upgrade", "--env", "qa", "--release", "feature-x", env=env)
        assert up.returncode == 0, up.stderr
        secret = json.loads(kubectl("get", "secret", "feature-x-tls", "-o", "json").stdout)
        assert secret["type"] == "kubernetes.io/tls"
        assert secret["metadata"]["labels"] == {"devloop/app": "demoapp", "devloop/env": "qa"}
        cert = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"],
                              input=__import__("base64").b64decode(secret["data"]["tls.crt"]), capture_output=True,
                              check=True).stdout.decode()
        assert "DNS:feature-x.127.0.0.1.nip.io" in cert
        assert secret["data"]["tls.key"][:40] not in up.stderr  # the key never shows in the output
        app_secret = json.loads(kubectl("get", "secret", "demoapp-secrets", "-o", "json").stdout)
        assert set(app_secret["data"]) == {"SECRET_KEY_BASE", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"}
        assert "dummy-qa-mysql-password" not in up.stderr + up.stdout
        assert [c[:3] for c in helm_calls(tmp_path) if c[0] == "upgrade"] == [["upgrade", "--install", "feature-x"]]

        again = inv(app, "helm.upgrade", "--env", "qa", "--release", "feature-x", env=env)
        assert again.returncode == 0 and "is current" in again.stderr and "$ openssl" not in again.stderr

        for _ in range(2):  # the second time there is nothing left: still fine
            down = inv(app, "helm.delete", "--env", "qa", "--release", "feature-x", env=env)
            assert down.returncode == 0, down.stderr
        assert "nothing to uninstall" in down.stderr
        assert kubectl("get", "secret", "feature-x-tls").returncode != 0
        assert [c[:2] for c in helm_calls(tmp_path) if c[0] == "uninstall"] == [["uninstall", "feature-x"]]
    finally:
        subprocess.run(["kubectl", "delete", "namespace", NAMESPACE, "--wait=false", "--ignore-not-found"],
                       capture_output=True)


# -- the demo chart (Helm itself cannot run here: these are static checks) -------------------------------


CHART = REPO / "charts" / "demoapp"


def test_the_demo_chart_is_a_helm_3_chart_with_values_for_each_environment() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "demoapp" and chart["version"]
    config = yaml.safe_load((REPO / "invoke.yaml").read_text())["app"]
    assert config["helm"]["chart"] == "charts/demoapp"
    for env in config["environments"]:
        assert core.values_files(config["helm"]["values"], REPO, env)


def test_every_value_the_templates_use_is_declared() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def declared(path: str) -> bool:
        node: Any = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    used = {m.group(1) for t in (CHART / "templates").iterdir()
            for m in re.finditer(r"\.Values\.([A-Za-z0-9_.]+[A-Za-z0-9_])", t.read_text())}
    assert used and not [u for u in sorted(used) if not declared(u)]
    # The values the kit passes by default exist in the chart.
    from devloop.core.config import DEFAULTS

    assert all(declared(key) for key in DEFAULTS["helm"]["set"])


def test_the_chart_templates_balance_their_actions() -> None:
    for template in (CHART / "templates").iterdir():
        text = template.read_text()
        assert text.count("{{") == text.count("}}"), template.name
        opened = len(re.findall(r"{{-?\s*(if|with|range|define)\b", text))
        closed = len(re.findall(r"{{-?\s*end\b", text))
        assert opened == closed, template.name


def test_app_helm_set_takes_any_chart_value_but_a_misspelt_helm_key_is_reported(tmp_path: Path) -> None:
    from devloop.core.config import settings_from

    ok_settings = settings_from({"helm": {"chart": "c", "set": {"ingress.hosts[0].host": "${INGRESS_HOST}"}}}, tmp_path)
    assert ok_settings.helm["set"] == {"ingress.hosts[0].host": "${INGRESS_HOST}"}
    with pytest.raises(KitError) as caught:
        settings_from({"helm": {"chart": "c", "imag": "demoapp"}}, tmp_path)
    assert "unknown config key app.helm.imag; did you mean 'image'?" in caught.value.message
