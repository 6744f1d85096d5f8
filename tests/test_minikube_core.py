"""tasks/core/minikube.py: start flags from config, status parsing, and minikube's known failures explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devloop.core import minikube as core
from devloop.core.config import Minikube
from devloop.core.errors import KitError

CONFIG = Minikube(profile="minikube", cpus=2, memory="2048", driver="", disk_size="", kubernetes_version="",
                  addons=("ingress",))

# The seed's hand-typed start, and what minikube itself prints when it fails (v1.32 and the seed's v0.28).
IP_FAILURE_V1 = """\
😄  minikube v1.32.0 on Darwin 13.6
✨  Using the hyperkit driver based on user configuration
🔥  Creating hyperkit VM (CPUs=3, Memory=2048MB, Disk=12288MB) ...
🤦  StartHost failed, but will try again: creating host: create: Error creating machine: Error in driver during machine \
creation: IP address never found in dhcp leases file Temporary Error: Could not find an IP address for 6a:c7:25:8a:7f:2b

❌  Exiting due to PR_HYPERKIT_NO_IP: Failed to start host: creating host: create: Error creating machine: Error in \
driver during machine creation: IP address never found in dhcp leases file Temporary Error: Could not find an IP \
address for 6a:c7:25:8a:7f:2b
💡  Suggestion: Install the latest hyperkit binary, and run 'minikube delete'
"""
IP_FAILURE_V028 = """\
Starting local Kubernetes v1.10.0 cluster...
Starting VM...
E0907 11:56:39.075265   54829 start.go:143] Error starting host: Error starting stopped host: IP address never \
found in dhcp leases file Temporary Error: Could not find an IP address for 6a:c7:25:8a:7f:2b
"""


@pytest.mark.parametrize("flags, expected", [
    ({}, ["start", "--cpus=2", "--memory=2048"]),
    # the seed: minikube start --cpus=3 --memory=2048 --vm-driver=hyperkit --disk-size=12g
    ({"cpus": "3", "memory": "2048", "driver": "hyperkit", "disk_size": "12g"},
     ["start", "--driver=hyperkit", "--cpus=3", "--memory=2048", "--disk-size=12g"]),
    ({"memory": "4g", "kubernetes_version": "v1.20.2"}, ["start", "--cpus=2", "--memory=4g", "--kubernetes-version=v1.20.2"]),
])
def test_start_flags_come_from_config_and_flags(flags: dict[str, str], expected: list[str]) -> None:
    assert core.start_args(core.start_options(CONFIG, **flags)) == expected


def test_config_values_are_used_when_no_flag_is_given() -> None:
    mk = Minikube(profile="dev", cpus=4, memory="8g", driver="kvm2", disk_size="40g", kubernetes_version="v1.28.3",
                  addons=("ingress", "metrics-server"))
    opts = core.start_options(mk)
    assert opts.profile == "dev" and opts.addons == ("ingress", "metrics-server")
    assert core.start_args(opts) == ["start", "--driver=kvm2", "--cpus=4", "--memory=8g", "--disk-size=40g",
                                     "--kubernetes-version=v1.28.3"]


@pytest.mark.parametrize("flags, words", [
    ({"driver": "hyperkitt"}, ["--driver 'hyperkitt' is not a minikube driver", "did you mean 'hyperkit'"]),
    ({"driver": "vmware-fusion"}, ["is not a minikube driver", "known: docker"]),
    ({"cpus": "three"}, ["--cpus 'three' is not a whole number"]),
    ({"memory": "lots"}, ["--memory 'lots' is not a size like 2048"]),
    ({"memory": "1024"}, ["memory is 1024 (1024 MB): minikube needs at least 1800 MB"]),
    ({"cpus": "1"}, ["cpus is 1: minikube needs at least 2"]),
    ({"kubernetes_version": "one.twenty"}, ["Kubernetes version 'one.twenty' is not like v1.28.3"]),
    ({"disk_size": "big"}, ["disk size 'big' is not a size"]),
    ({"profile": "my profile"}, ["is not a valid minikube profile name"]),
])
def test_bad_start_values_are_rejected_before_minikube_runs(flags: dict[str, str], words: list[str]) -> None:
    with pytest.raises(KitError) as caught:
        core.start_options(CONFIG, **flags)
    assert caught.value.code == 2
    for word in words:
        assert word in caught.value.message
    assert "app.cluster.minikube" in caught.value.hint


@pytest.mark.parametrize("size, mb", [("2048", 2048), ("2048mb", 2048), ("2g", 2048), ("4GB", 4096), ("1048576k", 1024)])
def test_memory_reads_like_minikube(size: str, mb: int) -> None:
    assert core.memory_mb(size) == mb


def test_status_json_running() -> None:
    out = json.dumps({"Name": "minikube", "Host": "Running", "Kubelet": "Running", "APIServer": "Running",
                      "Kubeconfig": "Configured", "Worker": False})
    status = core.parse_status(out, 0, "minikube")
    assert status.running and status.exists
    assert status.rows()[:3] == [["profile", "minikube"], ["host", "Running"], ["kubelet", "Running"]]


def test_status_json_stopped_and_text_form() -> None:
    stopped = json.dumps({"Name": "dev", "Host": "Stopped", "Kubelet": "Stopped", "APIServer": "Stopped",
                          "Kubeconfig": "Stopped", "Worker": False})
    assert not core.parse_status(stopped, 7, "dev").running
    text = "minikube\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Stopped\nkubeconfig: Configured\n"
    status = core.parse_status(text, 2, "minikube")
    assert status.exists and not status.running and status.apiserver == "Stopped"


def test_status_of_a_missing_profile_in_json_and_text() -> None:
    event = json.dumps({"specversion": "1.0", "type": "io.k8s.sigs.minikube.info",
                        "data": {"message": 'Profile "dev" not found. Run "minikube profile list" to view all profiles.'}})
    assert not core.parse_status(event, 85, "dev").exists
    text = '🤷  Profile "dev" not found. Run "minikube profile list" to view all profiles.\n'
    assert not core.parse_status(text, 85, "dev").exists


def test_status_multi_node_takes_the_control_plane() -> None:
    nodes = [{"Name": "m", "Host": "Running", "Kubelet": "Running", "APIServer": "Running", "Kubeconfig": "Configured",
              "Worker": False},
             {"Name": "m-m02", "Host": "Stopped", "Kubelet": "Stopped", "APIServer": "Irrelevant",
              "Kubeconfig": "Irrelevant", "Worker": True}]
    assert core.parse_status(json.dumps(nodes), 0, "m").running


def test_unreadable_status_is_an_error_with_the_output() -> None:
    with pytest.raises(KitError) as caught:
        core.parse_status("panic: something odd", 1, "minikube")
    assert "panic: something odd" in caught.value.evidence


def test_profile_list_adds_ip_runtime_driver_and_sizes() -> None:
    listing = json.dumps({"invalid": [], "valid": [{"Name": "minikube", "Status": "Running", "Config": {
        "Driver": "docker", "CPUs": 3, "Memory": 2048,
        "KubernetesConfig": {"KubernetesVersion": "v1.28.3", "ContainerRuntime": "containerd"},
        "Nodes": [{"IP": "192.168.49.2", "ControlPlane": True}]}}]})
    status = core.with_profile(core.Status("minikube", "Running", "Running", "Running", "Configured"), listing)
    assert (status.ip, status.runtime, status.driver, status.kubernetes_version) == \
        ("192.168.49.2", "containerd", "docker", "v1.28.3")
    assert status.as_dict()["ip"] == "192.168.49.2"
    assert core.size_drift(status, core.start_options(CONFIG, cpus="2", memory="4096")) == [
        "cpus 2 asked, the cluster has 3", "memory 4096 MB asked, the cluster has 2048 MB"]


def test_addons_json_and_table() -> None:
    as_json = json.dumps({"ingress": {"Profile": "minikube", "Status": "enabled"},
                          "dashboard": {"Profile": "minikube", "Status": "disabled"}})
    assert core.parse_addons(as_json) == {"ingress": True, "dashboard": False}
    table = "| ADDON NAME | PROFILE | STATUS |\n| ingress | minikube | enabled ✅ |\n| registry | minikube | disabled |\n"
    assert core.parse_addons(table) == {"ingress": True, "registry": False}


@pytest.mark.parametrize("output", [IP_FAILURE_V1, IP_FAILURE_V028])
def test_ip_failure_offers_delete_and_retry_and_names_the_stale_pid_file(output: str, tmp_path: Path) -> None:
    opts = core.start_options(CONFIG, driver="hyperkit", cpus="3")
    pid = core.PidFile(tmp_path / "machines" / "minikube" / "hyperkit.pid", 4123, alive=False)
    error = core.explain_start_failure(output, 60, opts, pid)
    assert "the VM never got an IP address" in error.message and "Could not find an IP address" in error.message
    assert "MAC 6a:c7:25:8a:7f:2b" in error.message
    assert "inv minikube.delete" in error.hint and "inv minikube.start --recreate" in error.hint
    assert f"stale pid file {pid.path} names pid 4123, which is not running" in error.hint
    assert f"rm {pid.path}" in error.hint
    assert error.code == 60


def test_ip_failure_without_a_pid_file_still_names_where_it_would_be(tmp_path: Path) -> None:
    opts = core.start_options(CONFIG, profile="dev")
    error = core.explain_start_failure(IP_FAILURE_V1, 60, opts, None)
    assert "~/.minikube/machines/dev/hyperkit.pid" in error.hint
    assert "inv minikube.delete --profile dev" in error.hint and "inv minikube.start --profile dev --recreate" in error.hint
    absent = core.PidFile(tmp_path / "hyperkit.pid", None, alive=False, exists=False)
    assert f"remove the VM's stale pid file ({absent.path}) if it is there" in \
        core.explain_start_failure(IP_FAILURE_V1, 60, opts, absent).hint
    running = core.PidFile(tmp_path / "hyperkit.pid", 77, alive=True)
    assert "names pid 77, which is still running: stop it first (kill 77)" in \
        core.explain_start_failure(IP_FAILURE_V1, 60, opts, running).hint


@pytest.mark.parametrize("output, words, code", [
    ("❌  Exiting due to PROVIDER_DOCKER_NOT_FOUND: The 'docker' provider was not found: exec: \"docker\": executable "
     "file not found in $PATH", ["docker driver is not installed"], 65),
    ("❌  Exiting due to DRV_UNSUPPORTED_OS: The driver 'hyperkit' is not supported on linux/amd64",
     ["hyperkit driver is not installed or not usable here"], 56),
    ("❌  Exiting due to DRV_NOT_DETECTED: No possible driver was detected.", ["driver is not installed"], 1),
    ("❌  Exiting due to PROVIDER_DOCKER_NOT_RUNNING: \"docker version\" exit status 1", ["installed but not running"], 63),
    ("⛔  Exiting due to RSRC_INSUFFICIENT_REQ_MEMORY: Requested memory allocation 1000MiB is less than the usable "
     "minimum of 1800MB", ["not enough memory", "RSRC_INSUFFICIENT_REQ_MEMORY"], 23),
    ("❌  Exiting due to MK_USAGE: Docker Desktop has only 7951MB memory but you specified 16384MB",
     ["not enough memory"], 14),
    ("⛔  Exiting due to RSRC_INSUFFICIENT_CORES: Requested cpu count 1 is less than the minimum allowed of 2",
     ["not enough CPUs"], 29),
    ("❌  Exiting due to GUEST_DRV_MISMATCH: The existing \"minikube\" cluster was created using the \"docker\" driver, "
     "which is incompatible with requested \"kvm2\" driver.", ["was created with the docker driver"], 51),
    ("❌  Exiting due to K8S_APISERVER_MISSING: wait 6m0s for node\n💡  Suggestion: Check that the provided apiserver "
     "flags are valid", ["K8S_APISERVER_MISSING"], 100),
])
def test_known_start_failures_are_explained(output: str, words: list[str], code: int) -> None:
    error = core.explain_start_failure(output, code, core.start_options(CONFIG), None)
    for word in words:
        assert word in error.message
    assert error.hint and error.code == (code if code < 126 else 1)
    assert output.splitlines()[0][:30] in error.evidence


def test_memory_hint_names_what_the_driver_can_give() -> None:
    error = core.explain_start_failure("Exiting due to MK_USAGE: Docker has only 7951MB memory but you specified 16384MB",
                                       14, core.start_options(CONFIG, memory="16384", driver="docker"), None)
    assert "at most 7951 MB" in error.hint and "app.cluster.minikube.memory" in error.hint


def test_minikube_home_follows_minikube_rules(tmp_path: Path) -> None:
    assert core.minikube_home({}, tmp_path) == tmp_path / ".minikube"
    assert core.minikube_home({"MINIKUBE_HOME": "/data"}, tmp_path) == Path("/data/.minikube")
    assert core.minikube_home({"MINIKUBE_HOME": "/data/.minikube"}, tmp_path) == Path("/data/.minikube")
    assert core.pid_file(Path("/h/.minikube"), "dev") == Path("/h/.minikube/machines/dev/hyperkit.pid")


def test_not_running_and_docker_env_runtime_mismatch() -> None:
    absent = core.explain_not_running("ip", core.Status("dev"))
    assert absent.code == 85 and "no minikube profile 'dev'" in absent.message and "--profile dev" in absent.hint
    stopped = core.explain_not_running("ip", core.Status("minikube", "Stopped", "Stopped", "Stopped", "Stopped"))
    assert stopped.code == 3 and "host Stopped" in stopped.message and stopped.hint == "start it: inv minikube.start"
    mismatch = core.explain_docker_env_failure(
        '❌  Exiting due to MK_USAGE: The docker-env command is only compatible with the "docker" runtime, but this '
        'cluster was configured to use the "containerd" runtime.', 14, "minikube")
    assert "runs the containerd runtime" in mismatch.message and "inv image.load" in mismatch.hint


# One sample output per entry of the known-failures table, in the table's order.
TABLE_SAMPLES = ["Could not find an IP address for 6a:c7:25:8a:7f:2b", "Exiting due to DRV_NOT_DETECTED: none",
                 "Exiting due to PROVIDER_DOCKER_NOT_RUNNING: x", "Exiting due to RSRC_INSUFFICIENT_REQ_MEMORY: x",
                 "Exiting due to RSRC_INSUFFICIENT_CORES: x", "Exiting due to GUEST_DRV_MISMATCH: x"]


def test_each_known_failure_in_the_table_has_a_sample_that_only_it_explains() -> None:
    assert len(core.KNOWN_START_FAILURES) == len(TABLE_SAMPLES)
    for sample, (pattern, _) in zip(TABLE_SAMPLES, core.KNOWN_START_FAILURES, strict=True):
        assert [p for p, _ in core.KNOWN_START_FAILURES if p.search(sample)] == [pattern], sample


@pytest.mark.parametrize("index", range(len(TABLE_SAMPLES)))
def test_each_table_entry_builds_a_message_and_a_fix(index: int) -> None:
    pattern, explain = core.KNOWN_START_FAILURES[index]
    failed = core.FailedStart(TABLE_SAMPLES[index], 30, core.start_options(CONFIG))
    match = pattern.search(failed.output)
    assert match is not None
    message, fix = explain(match, failed)
    assert message.startswith("minikube start failed: ") and fix
    error = core.explain_start_failure(failed.output, 30, failed.opts)
    assert (error.message, error.hint, error.code) == (message, fix, 30)


def test_the_first_matching_entry_wins_and_an_unknown_failure_keeps_minikubes_suggestion() -> None:
    both = "Exiting due to PROVIDER_DOCKER_NOT_RUNNING: x\nRSRC_INSUFFICIENT_CORES"
    assert "installed but not running" in core.explain_start_failure(both, 1, core.start_options(CONFIG)).message
    unknown = core.explain_start_failure("Exiting due to X_Y: z\nSuggestion: do this", 300, core.start_options(CONFIG))
    assert (unknown.message, unknown.hint, unknown.code) == ("minikube start failed (exit 300): X_Y: z", "do this", 1)
