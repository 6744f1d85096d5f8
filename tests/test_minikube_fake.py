"""`inv minikube.*` run as a user would, through the real funnel, against the minikube stand-in
(tests/fakes/minikube), which replays minikube's outputs — including the "Could not find an IP address" failure."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import FAKES, inv, make_app

FAKE = str(FAKES / "minikube")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    """Environment for `inv`: the stand-in first on PATH, its state and call log in tmp."""
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_MINIKUBE_STATE": str(tmp_path / "state"),
            "FAKE_MINIKUBE_LOG": str(tmp_path / "calls.jsonl"), "HOME": os.environ["HOME"]}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def calls(world: dict[str, str]) -> list[list[str]]:
    path = Path(world["FAKE_MINIKUBE_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_start_status_ip_docker_env_stop_delete(app: Path, world: dict[str, str]) -> None:
    started = inv(app, "minikube.start", env=world)
    assert started.returncode == 0, started.stderr
    assert "Done! kubectl is now configured" in started.stdout
    assert "The 'ingress' addon is enabled" in started.stdout
    assert calls(world)[:5] == [
        ["-p", "minikube", "status", "-o", "json"],
        ["-p", "minikube", "start", "--cpus=2", "--memory=2048"],
        ["-p", "minikube", "addons", "list", "-o", "json"],
        ["-p", "minikube", "addons", "enable", "ingress"],
        ["-p", "minikube", "status", "-o", "json"],
    ]

    again = inv(app, "minikube.start", env=world)
    assert again.returncode == 0
    assert "already running (IP 192.168.49.2, runtime docker): nothing to start" in again.stderr
    assert "addon ingress: already enabled" in again.stderr
    assert not any("start" in call for call in calls(world)[5:])

    status = inv(app, "minikube.status", "--json", env=world)
    assert status.returncode == 0
    assert json.loads(status.stdout) == {"profile": "minikube", "exists": True, "running": True, "host": "Running",
                                         "kubelet": "Running", "apiserver": "Running", "kubeconfig": "Configured",
                                         "ip": "192.168.49.2", "runtime": "docker", "driver": "docker",
                                         "kubernetes": "v1.28.3"}
    assert inv(app, "minikube.ip", env=world).stdout == "192.168.49.2\n"

    exports = inv(app, "minikube.docker-env", env=world)
    assert exports.returncode == 0 and 'export DOCKER_HOST="unix:///var/run/docker.sock"' in exports.stdout
    shell = subprocess.run(["bash", "-c", 'eval "$(cat)"; echo "$DOCKER_HOST $MINIKUBE_ACTIVE_DOCKERD"'],
                           input=exports.stdout, capture_output=True, text=True)
    assert shell.stdout.strip() == "unix:///var/run/docker.sock minikube"

    assert inv(app, "minikube.stop", env=world).returncode == 0
    stopped = inv(app, "minikube.status", env=world)
    assert stopped.returncode == 3 and "host        Stopped" in stopped.stdout
    assert "not running (host Stopped)" in stopped.stderr and "inv minikube.start" in stopped.stderr
    assert "already stopped" in inv(app, "minikube.stop", env=world).stderr
    ip = inv(app, "minikube.ip", env=world)
    assert ip.returncode == 3 and "is not running" in ip.stderr

    assert inv(app, "minikube.delete", env=world).returncode == 0
    gone = inv(app, "minikube.status", env=world)
    assert gone.returncode == 85 and "there is no minikube profile 'minikube'" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_could_not_find_an_ip_address_names_the_fix_and_the_stale_pid_file(app: Path, world: dict[str, str]) -> None:
    seed = ["--driver", "hyperkit", "--cpus", "3", "--memory", "2048", "--disk-size", "12g"]
    failed = inv(app, "minikube.start", *seed, env=dict(world, FAKE_MINIKUBE_FAIL="ip"))
    assert failed.returncode == 60
    pid_file = Path(world["HOME"]) / ".minikube" / "machines" / "minikube" / "hyperkit.pid"
    assert pid_file.is_file()
    assert "Could not find an IP address for 6a:c7:25:8a:7f:2b" in failed.stderr  # minikube's own words
    assert "error: minikube start failed: the VM never got an IP address" in failed.stderr
    assert "inv minikube.delete" in failed.stderr and "inv minikube.start --recreate" in failed.stderr
    assert f"the stale pid file {pid_file} names pid" in failed.stderr and f"rm {pid_file}" in failed.stderr
    assert ["-p", "minikube", "start", "--driver=hyperkit", "--cpus=3", "--memory=2048", "--disk-size=12g"] in calls(world)
    assert "Traceback" not in failed.stderr


def test_recreate_deletes_and_starts_once_more(app: Path, world: dict[str, str]) -> None:
    done = inv(app, "minikube.start", "--recreate", env=dict(world, FAKE_MINIKUBE_FAIL="ip-once"))
    assert done.returncode == 0, done.stderr
    assert "deleting profile 'minikube' and starting once more (--recreate)" in done.stderr
    verbs = [call[2] for call in calls(world) if call[2] in ("start", "delete")]
    assert verbs == ["start", "delete", "start"]


@pytest.mark.parametrize("args, knob, code, words", [
    (["--driver", "virtualbox"], "", 65, "the virtualbox driver is not installed or not usable here"),
    (["--driver", "docker"], "driver", 65, "the docker driver is not installed"),
    (["--memory", "4096"], "memory", 23, "not enough memory"),
    (["--memory", "64g"], "", 14, "not enough memory"),
])
def test_driver_missing_and_not_enough_memory(app: Path, world: dict[str, str], args: list[str], knob: str, code: int,
                                              words: str) -> None:
    result = inv(app, "minikube.start", *args, env=dict(world, FAKE_MINIKUBE_FAIL=knob))
    assert result.returncode == code
    assert words in result.stderr and "fix:" in result.stderr and "Traceback" not in result.stderr


def test_bad_input_never_reaches_minikube(app: Path, world: dict[str, str]) -> None:
    for args, words in ((["--driver", "hyperkitt"], "did you mean 'hyperkit'"),
                        (["--cpus", "x"], "--cpus 'x' is not a whole number")):
        result = inv(app, "minikube.start", *args, env=world)
        assert result.returncode == 2 and words in result.stderr
    config = app / "invoke.yaml"
    config.write_text(config.read_text().replace("cpus: 2", "cpus: two").replace("memory: 2048", "memory: lots"))
    from_file = inv(app, "minikube.start", env=world)
    assert from_file.returncode == 2
    assert "app.cluster.minikube.cpus must be a whole number, got 'two'" in from_file.stderr
    assert "app.cluster.minikube.memory must be a size like 2048 or 4g, got 'lots'" in from_file.stderr
    assert calls(world) == []


def test_minikube_missing(app: Path, world: dict[str, str], tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    result = inv(app, "minikube.status", env=dict(world, PATH=str(bare)))
    assert result.returncode == 127
    assert "minikube not found" in result.stderr and "install minikube" in result.stderr


def stand_in(world: dict[str, str]):  # type: ignore[no-untyped-def]
    env = dict(os.environ, **world)

    def mk(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FAKE, *args], capture_output=True, text=True, env=dict(env, **extra))

    return mk


@pytest.mark.integration
def test_the_stand_in_loads_images_from_the_real_docker_engine(world: dict[str, str], base_image: str) -> None:
    mk = stand_in(world)
    assert mk("start", "--container-runtime=containerd").returncode == 0
    loaded = mk("image", "load", base_image)
    assert loaded.returncode == 0, loaded.stderr
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", base_image],
                              capture_output=True, text=True).stdout.strip().split(":")[-1]
    table = mk("image", "ls", "--format", "table").stdout
    repository, tag = base_image.rsplit(":", 1)
    assert f"| docker.io/library/{repository} " in table or f"| docker.io/{repository} " in table, table
    assert image_id[:12] in table
    missing = mk("image", "load", "no-such-image:0")
    assert missing.returncode == 80 and "GUEST_IMAGE_LOAD" in missing.stderr


def test_the_stand_in_replays_minikube_formats(world: dict[str, str]) -> None:
    mk = stand_in(world)

    first = mk("status")
    assert first.returncode == 85 and 'Profile "minikube" not found' in first.stdout
    assert mk("start", "--container-runtime=containerd").returncode == 0
    assert json.loads(mk("-p", "minikube", "status", "--output", "json").stdout)["APIServer"] == "Running"
    text = mk("status").stdout
    assert "type: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured" in text
    profile = json.loads(mk("profile", "list", "-o", "json").stdout)["valid"][0]
    assert profile["Config"]["KubernetesConfig"]["ContainerRuntime"] == "containerd"
    refused = mk("docker-env")
    assert refused.returncode == 14 and 'only compatible with the "docker" runtime' in refused.stderr
    none = mk("docker-env", "--shell", "none", FAKE_MINIKUBE_RUNTIME="docker", FAKE_MINIKUBE_DOCKER_HOST="tcp://10.1.1.1:2376")
    assert none.stdout.splitlines()[:2] == ["DOCKER_TLS_VERIFY=1", "DOCKER_HOST=tcp://10.1.1.1:2376"]
    url = mk("service", "web", "--url", FAKE_MINIKUBE_SERVICE_URL="http://192.168.49.2:30080")
    assert url.stdout == "http://192.168.49.2:30080\n"
    assert mk("dashboard", "--url").stdout.endswith("/proxy/\n")
    assert mk("-p", "minikube", "delete").returncode == 0
    assert [call[:2] for call in calls(world)][:2] == [["status"], ["start", "--container-runtime=containerd"]]
