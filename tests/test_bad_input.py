"""Bad input through `inv`, as a user meets it: a clear message naming file/line/value and the fix, an exit
code, no traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import inv, make_app

UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: minikube
  context: {cluster: dead, user: u}
current-context: minikube
users:
- name: u
  user: {token: not-a-real-token}
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def arguments(task):  # type: ignore[no-untyped-def]
    """A task's arguments without consuming its help (invoke pops help entries as it builds them)."""
    import copy

    probe = copy.copy(task)
    probe.help = dict(task.help)
    return probe.get_arguments()


def no_traceback(result) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr + result.stdout


def test_malformed_invoke_yaml_names_file_and_line(app: Path) -> None:
    (app / "invoke.yaml").write_text("app:\n  name: hello\n  images: [oops\n")
    result = inv(app, "k8s.render")
    assert result.returncode != 0
    assert f"{app}/invoke.yaml:3:11: invalid YAML: while parsing a flow sequence that starts here:" in result.stderr
    assert result.stderr.count("invalid YAML") == 1  # said once, not at load and again by the task
    no_traceback(result)
    listing = inv(app, "--list")  # the tasks are still listed, with what is wrong
    assert listing.returncode == 0 and "k8s.render" in listing.stdout
    assert f"{app}/invoke.yaml:3:" in listing.stderr  # the line of the bracket left open
    no_traceback(listing)


def test_unknown_config_key_is_named_with_its_line(app: Path) -> None:
    text = (app / "invoke.yaml").read_text().replace("  timeout: 120", "  timout: 120")
    (app / "invoke.yaml").write_text(text)
    line = text.splitlines().index("  timout: 120") + 1
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert f"invoke.yaml:{line}: unknown config key app.timout; did you mean 'timeout'?" in result.stderr
    assert result.stderr.count("unknown config key app.timout") == 1
    no_traceback(result)
    listing = inv(app, "--list")  # listed, with the warning
    assert listing.returncode == 0 and "k8s.render" in listing.stdout
    assert f"invoke.yaml:{line}: unknown config key app.timout" in listing.stderr


def test_a_value_of_the_wrong_type_is_named_with_its_line(app: Path) -> None:
    text = (app / "invoke.yaml").read_text().replace("  timeout: 120", "  timeout: soon")
    (app / "invoke.yaml").write_text(text)
    line = text.splitlines().index("  timeout: soon") + 1
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert f"invoke.yaml:{line}: app.timeout must be a whole number, got 'soon'" in result.stderr
    no_traceback(result)


def test_malformed_env_line_is_named(app: Path) -> None:
    (app / ".env").write_text("BASE_IMAGE=busybox:1\nthis line is wrong\n")
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert f"{app}/.env:2: cannot parse the line starting 'this': expected KEY=value" in result.stderr
    no_traceback(result)


def test_a_bad_value_in_an_invoke_app_variable_is_blamed_on_the_variable(app: Path) -> None:
    result = inv(app, "k8s.render", env={"INVOKE_APP_TIMEOUT": "-5"})
    assert result.returncode == 2
    assert "  - INVOKE_APP_TIMEOUT (in the shell or .env): app.timeout must be greater than 0, got -5" in result.stderr
    assert "invoke.yaml:" not in result.stderr
    no_traceback(result)


def test_an_unknown_environment_from_invoke_app_env_is_blamed_on_the_variable(app: Path) -> None:
    result = inv(app, "k8s.render", env={"INVOKE_APP_ENV": "nope"})
    assert result.returncode == 2
    assert "  - INVOKE_APP_ENV (in the shell or .env): app.env is 'nope', an unknown environment" in result.stderr
    flag = inv(app, "k8s.render", "--env", "nope")
    assert flag.returncode == 2 and "  - unknown environment 'nope'" in flag.stderr


def test_a_shell_namespace_an_environment_overrides_is_said_to_be_unused(app: Path) -> None:
    import yaml

    config = yaml.safe_load((app / "invoke.yaml").read_text())
    config["app"]["environments"] = {"qa": {"namespace": "hello-qa"}}
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))
    env = {"INVOKE_APP_NAMESPACE": "mine", "INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1",
           "BASE_IMAGE": "busybox:1"}
    qa = inv(app, "k8s.render", "--env", "qa", env=env)
    assert qa.returncode == 0, qa.stderr
    assert "note: INVOKE_APP_NAMESPACE=mine is not used: environment qa sets its namespace (hello-qa)" in qa.stderr
    dev = inv(app, "k8s.render", env=env)
    assert dev.returncode == 0 and "INVOKE_APP_NAMESPACE=mine is not used" not in dev.stderr


def test_env_file_feeds_config_and_the_shell_wins(app: Path) -> None:
    (app / ".env").write_text("BASE_IMAGE=busybox:1\nINVOKE_APP_CLUSTER_PROVIDER=docker\nINVOKE_APP_CLUSTER_IP=10.9.9.9\n")
    from_file = inv(app, "k8s.render")
    assert from_file.returncode == 0, from_file.stderr
    assert "hello.10.9.9.9.nip.io" in from_file.stdout
    from_shell = inv(app, "k8s.render", env={"INVOKE_APP_CLUSTER_IP": "10.1.1.1"})
    assert "hello.10.1.1.1.nip.io" in from_shell.stdout
    flag = inv(app, "k8s.render", "--set", "MINIKUBE_IP=10.2.2.2", env={"INVOKE_APP_CLUSTER_IP": "10.1.1.1"})
    assert "hello.10.2.2.2.nip.io" in flag.stdout


def test_missing_kubectl_says_how_to_install(app: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "bash"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    env = {"PATH": str(bin_dir), "BASE_IMAGE": "busybox:1"}
    result = inv(app, "up", env=env)
    assert result.returncode == 127
    assert "error: kubectl not found" in result.stderr and "install kubectl" in result.stderr
    no_traceback(result)


def test_unreachable_cluster_names_the_context_and_the_fix(app: Path, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    result = inv(app, "doctor", env={"KUBECONFIG": str(config), "BASE_IMAGE": "busybox:1"})
    assert result.returncode == 1
    assert "context minikube does not answer" in result.stdout
    no_traceback(result)


def test_docker_daemon_down_is_one_clear_line(app: Path, tmp_path: Path) -> None:
    if not shutil.which("docker"):
        pytest.skip("docker CLI not installed")
    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "KUBECONFIG": str(config), "BASE_IMAGE": "busybox:1",
           "INVOKE_APP_CLUSTER_PROVIDER": "docker", "INVOKE_APP_CLUSTER_IP": "127.0.0.1"}
    result = inv(app, "image.build", env=env)
    assert result.returncode == 1
    assert "error: the Docker daemon is not reachable" in result.stderr
    no_traceback(result)


def test_list_works_and_every_task_is_documented(app: Path) -> None:
    result = inv(app, "--list")
    assert result.returncode == 0
    import tasks as root

    for name in root.ns.task_names:
        task = root.ns[name]
        assert task.__doc__ and len(task.__doc__.strip().splitlines()[0]) <= 55, name
        params = arguments(task)
        assert all(p.help for p in params), f"{name}: every parameter needs help="
    assert os.environ.get("INVOKE_APP_ROOT") is None


def test_uncastable_environment_values_are_named_not_a_traceback(app: Path) -> None:
    (app / ".env").write_text("INVOKE_APP_TIMEOUT=soon\n")
    result = inv(app, "k8s.render", env={"INVOKE_APP_MANIFESTS": "k8s"})
    assert result.returncode != 0
    assert "INVOKE_APP_TIMEOUT='soon' sets app.timeout, which must be a whole number (like 120)" in result.stderr
    assert "INVOKE_APP_MANIFESTS sets app.manifests, which is a list" in result.stderr
    no_traceback(result)


def test_doctor_names_who_holds_a_port_the_compose_file_publishes(app: Path, tmp_path: Path) -> None:
    import socket

    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = inv(app, "doctor", env={"KUBECONFIG": str(config), "BASE_IMAGE": "busybox:1",
                                         "HELLO_STORE_PORT": str(port)})
    assert result.returncode == 1
    assert f"local port {port} (docker-compose.yml: store) is already in use by pid {os.getpid()}" in result.stdout
    assert f"kill {os.getpid()}" in result.stdout
    no_traceback(result)


@pytest.mark.parametrize("variable,value,named", [
    ("INVOKE_APP_CLUSTER_ALLOWED_CONTEXTS", "foo", "app.cluster.allowed_contexts, which is a list"),
    ("INVOKE_APP_WATCH_DEBOUNCE_MS", "abc", "app.watch.debounce_ms, which must be a whole number"),
])
def test_nested_environment_values_are_checked_too(app: Path, variable: str, value: str, named: str) -> None:
    result = inv(app, "image.tag", env={variable: value, "BASE_IMAGE": "busybox:1"})
    assert result.returncode != 0 and named in result.stderr
    no_traceback(result)


def test_app_that_is_not_a_mapping_is_named(app: Path) -> None:
    (app / "invoke.yaml").write_text("app: [1]\n")
    listing = inv(app, "--list")
    assert listing.returncode == 0 and "k8s.render" in listing.stdout and "`app:` must be a mapping" in listing.stderr
    result = inv(app, "k8s.render")
    assert result.returncode == 2 and result.stderr.count("`app:` must be a mapping") == 1
    no_traceback(listing)
    no_traceback(result)


def test_settings_outside_app_or_of_the_wrong_shape_are_named_with_their_line(app: Path) -> None:
    text = (app / "invoke.yaml").read_text()
    text = text.replace("app:\n", "ap:\n  x: 1\napp:\n", 1).replace("  manifests: [k8s]", "  vars: [A]\n  manifests: [k8s]")
    (app / "invoke.yaml").write_text(text)
    assert inv(app, "--list").returncode == 0
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert "invoke.yaml:2: unknown top-level key 'ap'; did you mean 'app'?" in result.stderr
    assert "app.vars must be a mapping (key: value lines indented under it), got ['A']" in result.stderr
    no_traceback(result)


def test_an_environment_variable_that_names_no_setting_is_reported(app: Path) -> None:
    result = inv(app, "k8s.render", env={"INVOKE_APP_TIMOUT": "5", "BASE_IMAGE": "busybox:1"})
    assert result.returncode == 2
    assert "INVOKE_APP_TIMOUT is not a setting, so it has no effect; did you mean 'INVOKE_APP_TIMEOUT'?" in result.stderr


def test_doctor_says_when_the_docker_daemon_does_not_answer(app: Path, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    result = inv(app, "doctor", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock", "KUBECONFIG": str(config),
                                     "BASE_IMAGE": "busybox:1"})
    assert result.returncode == 1
    assert "FAIL  docker daemon reachable  start Docker" in result.stdout
    no_traceback(result)


@pytest.mark.parametrize("task", ["up", "watch"])
def test_a_kit_folder_that_cannot_be_written_is_one_clear_error(app: Path, cluster: str, task: str) -> None:
    (app / ".kit").write_text("a file where the kit keeps its folder\n")
    result = inv(app, task, "--timeout", "5")
    assert result.returncode == 73, result.stderr
    assert f"cannot write the kit's folder {app / '.kit'}" in result.stderr and "chmod u+rwx" in result.stderr
    no_traceback(result)


def test_a_latin1_env_file_is_named_with_line_and_byte(app: Path) -> None:
    (app / ".env").write_bytes(b"BASE_IMAGE=busybox:1.36\nGREETING=caf\xe9\n")
    listing = inv(app, "--list")
    assert listing.returncode == 0 and "k8s.render" in listing.stdout
    no_traceback(listing)
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert f"{app}/.env:2:13: byte 0xe9 is not UTF-8" in result.stderr and "iconv -f latin1" in result.stderr
    no_traceback(result)


def test_image_tag_hashes_a_latin1_dockerignore_and_a_name_that_is_not_utf8(app: Path) -> None:
    env = {"BASE_IMAGE": "busybox:1.36"}
    before = inv(app, "image.tag", env=env)
    assert before.returncode == 0, before.stderr
    with (app / ".dockerignore").open("ab") as ignore:
        ignore.write(b"# caf\xe9\ncaf\xe9.txt\n")
    (app / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"left out\n")
    (app / "app" / os.fsdecode(b"\xff.txt")).write_bytes(b"sent\n")
    result = inv(app, "image.tag", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("hello:") and result.stdout != before.stdout
    no_traceback(result)


def test_a_duplicate_key_in_invoke_yaml_stops_every_task_naming_both_lines(app: Path) -> None:
    (app / "invoke.yaml").write_text((app / "invoke.yaml").read_text() + "  timeout: 30\n")
    result = inv(app, "k8s.render")
    assert result.returncode == 2
    assert f"{app}/invoke.yaml:" in result.stderr and "duplicate key 'timeout': at line" in result.stderr
    no_traceback(result)


def test_forward_to_an_unreachable_cluster_says_which_cluster_and_why_once(app: Path, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(UNREACHABLE_KUBECONFIG)
    result = inv(app, "k8s.forward", env={"KUBECONFIG": str(config), "BASE_IMAGE": "busybox:1"}, timeout=120)
    assert result.returncode != 0
    assert "cannot read deploy/hello-web from the cluster of context minikube (https://127.0.0.1:1)" in result.stderr
    assert "is not in the cluster" not in result.stderr
    assert result.stderr.count("was refused") == 1, result.stderr
    no_traceback(result)
