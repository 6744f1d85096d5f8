"""minikube without surprises: start flags from config, status parsing, and minikube's known failures explained.

Nothing here starts a process. The task module (tasks/minikube.py) runs minikube and hands the
output to these functions.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import DRIVERS, MEMORY_RE, Minikube
from .errors import KitError, tail

MIN_MEMORY_MB = 1800  # minikube refuses less (RSRC_INSUFFICIENT_REQ_MEMORY)
MIN_CPUS = 2  # minikube refuses fewer (RSRC_INSUFFICIENT_CORES)
VERSION_RE = re.compile(r"^(v?\d+\.\d+(\.\d+)?([-+][\w.]+)?|stable|latest)$")
NOT_FOUND_EXIT = 85  # minikube's ExGuestNotFound: the profile does not exist
UNITS_MB = {"": 1.0, "b": 1 / 1024 / 1024, "k": 1 / 1024, "kb": 1 / 1024, "m": 1.0, "mb": 1.0, "g": 1024.0, "gb": 1024.0}


@dataclass(frozen=True)
class StartOptions:
    """What `minikube start` is asked for: config values, overridden by task flags."""

    profile: str
    cpus: int
    memory: str
    driver: str = ""
    disk_size: str = ""
    kubernetes_version: str = ""
    addons: tuple[str, ...] = ()

    @property
    def memory_mb(self) -> int:
        return memory_mb(self.memory)


def memory_mb(size: str) -> int:
    """'2048', '2g', '2048mb' -> MB, the way minikube reads --memory (a bare number is MB)."""
    match = re.match(r"^(\d+)([a-z]*)$", str(size).strip().lower())
    if not match or match.group(2) not in UNITS_MB:
        raise KitError(f"memory {size!r} is not a size like 2048, 2048mb or 4g", code=2)
    return int(int(match.group(1)) * UNITS_MB[match.group(2)])


def start_options(mk: Minikube, *, profile: str | None = None, cpus: Any = None, memory: Any = None,
                  driver: str | None = None, disk_size: str | None = None,
                  kubernetes_version: str | None = None) -> StartOptions:
    """Merge task flags over ``app.cluster.minikube`` and check every value; all problems in one error."""
    problems: list[str] = []
    opts = StartOptions(mk.profile, mk.cpus, mk.memory, mk.driver, mk.disk_size, mk.kubernetes_version, mk.addons)
    if profile is not None:
        if not re.match(r"^[A-Za-z0-9][\w.-]*$", profile):
            problems.append(f"--profile {profile!r} is not a valid minikube profile name (letters, digits, - _ .)")
        opts = replace(opts, profile=profile)
    if cpus is not None:
        try:
            opts = replace(opts, cpus=int(str(cpus).strip()))
        except ValueError:
            problems.append(f"--cpus {cpus!r} is not a whole number (e.g. --cpus 3)")
    if memory is not None:
        if not MEMORY_RE.match(str(memory).strip()):
            problems.append(f"--memory {memory!r} is not a size like 2048, 2048mb or 4g")
        else:
            opts = replace(opts, memory=str(memory).strip())
    if driver is not None:
        if driver not in DRIVERS:
            problems.append(_unknown_driver(driver))
        else:
            opts = replace(opts, driver=driver)
    if disk_size is not None:
        opts = replace(opts, disk_size=str(disk_size).strip())
    if kubernetes_version is not None:
        opts = replace(opts, kubernetes_version=str(kubernetes_version).strip())
    problems += _value_problems(opts)
    if not problems:
        problems += _minimums(opts)
    if problems:
        raise KitError("cannot start minikube:\n" + "\n".join(f"  - {p}" for p in problems),
                       hint="fix the flag, or app.cluster.minikube.* in invoke.yaml (cpus: 2, memory: 2048, driver: docker)",
                       code=2)
    return opts


def _unknown_driver(driver: str) -> str:
    close = difflib.get_close_matches(driver, DRIVERS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"--driver {driver!r} is not a minikube driver{hint} (known: {', '.join(DRIVERS)})"


def _value_problems(opts: StartOptions) -> list[str]:
    """Disk size and Kubernetes version, from config or flags, in the forms minikube takes."""
    found = []
    if opts.disk_size and not MEMORY_RE.match(opts.disk_size):
        found.append(f"disk size {opts.disk_size!r} is not a size like 20000mb or 12g")
    if opts.kubernetes_version and not VERSION_RE.match(opts.kubernetes_version):
        found.append(f"Kubernetes version {opts.kubernetes_version!r} is not like v1.28.3, stable or latest")
    return found


def _minimums(opts: StartOptions) -> list[str]:
    found = []
    if opts.cpus < MIN_CPUS:
        found.append(f"cpus is {opts.cpus}: minikube needs at least {MIN_CPUS}")
    if opts.memory_mb < MIN_MEMORY_MB:
        found.append(f"memory is {opts.memory} ({opts.memory_mb} MB): minikube needs at least {MIN_MEMORY_MB} MB "
                     "(use 2048 or more)")
    return found


def start_args(opts: StartOptions) -> list[str]:
    """Arguments after `minikube -p PROFILE`: `--driver` is the modern spelling of `--vm-driver`."""
    args = ["start"]
    if opts.driver:
        args.append(f"--driver={opts.driver}")
    args += [f"--cpus={opts.cpus}", f"--memory={opts.memory}"]
    if opts.disk_size:
        args.append(f"--disk-size={opts.disk_size}")
    if opts.kubernetes_version:
        args.append(f"--kubernetes-version={opts.kubernetes_version}")
    return args


# ---------------------------------------------------------------------------------------------
# Status


@dataclass(frozen=True)
class Status:
    """One profile's state, from `minikube status -o json` and `minikube profile list -o json`."""

    profile: str
    host: str = "Nonexistent"
    kubelet: str = "Nonexistent"
    apiserver: str = "Nonexistent"
    kubeconfig: str = "Nonexistent"
    ip: str = ""
    runtime: str = ""
    driver: str = ""
    kubernetes_version: str = ""
    cpus: int = 0
    memory_mb: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.host != "Nonexistent"

    @property
    def running(self) -> bool:
        return self.host == "Running" and self.kubelet == "Running" and self.apiserver == "Running"

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "exists": self.exists, "running": self.running, "host": self.host,
                "kubelet": self.kubelet, "apiserver": self.apiserver, "kubeconfig": self.kubeconfig,
                "ip": self.ip, "runtime": self.runtime, "driver": self.driver,
                "kubernetes": self.kubernetes_version}

    def rows(self) -> list[list[str]]:
        rows = [["profile", self.profile], ["host", self.host], ["kubelet", self.kubelet],
                ["apiserver", self.apiserver], ["kubeconfig", self.kubeconfig]]
        for name, value in (("ip", self.ip), ("runtime", self.runtime), ("driver", self.driver),
                            ("kubernetes", self.kubernetes_version)):
            if value:
                rows.append([name, value])
        return rows


def _json_objects(text: str) -> list[Any]:
    found = []
    stripped = text.strip()
    try:
        return [json.loads(stripped)] if stripped else []
    except json.JSONDecodeError:
        pass
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def parse_status(stdout: str, exited: int, profile: str, stderr: str = "") -> Status:
    """`minikube status -o json` (or the text form of older minikubes) -> Status."""
    for obj in _json_objects(stdout):
        nodes = obj if isinstance(obj, list) else [obj]
        nodes = [n for n in nodes if isinstance(n, dict) and "Host" in n]
        if nodes:
            node = next((n for n in nodes if not n.get("Worker")), nodes[0])
            return Status(profile, str(node.get("Host") or "Nonexistent"), str(node.get("Kubelet") or ""),
                          str(node.get("APIServer") or ""), str(node.get("Kubeconfig") or ""))
    fields = dict(re.findall(r"^\s*(host|kubelet|apiserver|kubeconfig):\s*(\S+)", stdout, re.MULTILINE))
    if "host" in fields:
        return Status(profile, fields["host"], fields.get("kubelet", ""), fields.get("apiserver", ""),
                      fields.get("kubeconfig", ""))
    text = stdout + stderr
    if exited == NOT_FOUND_EXIT or re.search(r"not found|no local cluster|does not exist", text, re.IGNORECASE):
        return Status(profile)
    raise KitError(f"cannot read the output of `minikube -p {profile} status -o json` (exit {exited})",
                   evidence=tail(text, 8), hint="run `minikube status` by hand to see what minikube says")


def with_profile(status: Status, profile_list_stdout: str) -> Status:
    """Add IP, runtime, driver and version from `minikube profile list -o json`."""
    for obj in _json_objects(profile_list_stdout):
        if not isinstance(obj, dict):
            continue
        for prof in obj.get("valid") or []:
            if not isinstance(prof, dict) or prof.get("Name") != status.profile:
                continue
            config = prof.get("Config") or {}
            kube = config.get("KubernetesConfig") or {}
            nodes = config.get("Nodes") or [{}]
            control = next((n for n in nodes if n.get("ControlPlane")), nodes[0])
            return replace(status, ip=str(control.get("IP") or ""),
                           runtime=str(kube.get("ContainerRuntime") or control.get("ContainerRuntime") or ""),
                           driver=str(config.get("Driver") or ""),
                           kubernetes_version=str(kube.get("KubernetesVersion") or ""),
                           cpus=int(config.get("CPUs") or 0), memory_mb=int(config.get("Memory") or 0))
    return status


def parse_addons(stdout: str) -> dict[str, bool]:
    """`minikube addons list -o json` -> {addon: enabled}."""
    for obj in _json_objects(stdout):
        if isinstance(obj, dict):
            return {str(name): str((info or {}).get("Status", "")).lower() == "enabled"
                    for name, info in obj.items() if isinstance(info, dict)}
    found: dict[str, bool] = {}
    for line in stdout.splitlines():  # the table form: | ingress | minikube | enabled ✅ | Kubernetes |
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] and cells[0] != "ADDON NAME" and not cells[0].startswith("-"):
            found[cells[0]] = "enabled" in cells[2]
    return found


def size_drift(status: Status, opts: StartOptions) -> list[str]:
    """Sizes asked for that an existing cluster will not get: minikube only applies them on creation."""
    notes = []
    if status.cpus and status.cpus != opts.cpus:
        notes.append(f"cpus {opts.cpus} asked, the cluster has {status.cpus}")
    if status.memory_mb and status.memory_mb != opts.memory_mb:
        notes.append(f"memory {opts.memory_mb} MB asked, the cluster has {status.memory_mb} MB")
    if status.driver and opts.driver and status.driver != opts.driver:
        notes.append(f"driver {opts.driver} asked, the cluster was created with {status.driver}")
    return notes


# ---------------------------------------------------------------------------------------------
# Known failures


def minikube_home(environ: Mapping[str, str], home: Path) -> Path:
    """The ``.minikube`` folder: $MINIKUBE_HOME (itself or its .minikube child) or ~/.minikube."""
    configured = environ.get("MINIKUBE_HOME", "")
    if not configured:
        return home / ".minikube"
    path = Path(configured)
    return path if path.name == ".minikube" else path / ".minikube"


def pid_file(minikube_dir: Path, profile: str, driver: str = "hyperkit") -> Path:
    return minikube_dir / "machines" / profile / f"{driver}.pid"


@dataclass(frozen=True)
class PidFile:
    """A VM driver's pid file and whether its process still runs (read by the task, judged here)."""

    path: Path
    pid: int | None
    alive: bool
    exists: bool = True


IP_FAILURE = re.compile(r"could not find an ip address|ip address never found in dhcp leases|"
                        r"machine didn't return an ip", re.IGNORECASE)
EXIT_LINE = re.compile(r"Exiting due to ([A-Z0-9_]+): ?(.*)")
SUGGESTION = re.compile(r"Suggestion:\s*(.+)")
DRIVER_MISSING = re.compile(r"PROVIDER_[A-Z0-9]+_NOT_FOUND|DRV_NOT_DETECTED|DRV_UNSUPPORTED_OS|PR_HYPERKIT_NOT_FOUND|"
                            r"DRV_KVM2_NOT_FOUND|PR_VBOXMANAGE_NOT_FOUND|Driver \"?[\w-]+\"? not found|"
                            r"The driver '[\w-]+' is not supported")
DRIVER_NAMES = (re.compile(r"The driver '([\w-]+)' is not supported"), re.compile(r"The '([\w-]+)' provider"),
                re.compile(r"Driver \"?([\w-]+)\"? not found"), re.compile(r"PROVIDER_([A-Z0-9]+)_"),
                re.compile(r"PR_(HYPERKIT|VBOXMANAGE)_"), re.compile(r"DRV_(KVM2)_"))
DRIVER_DOWN = re.compile(r"PROVIDER_([A-Z0-9]+)_NOT_RUNNING|DRV_DOCKER_NOT_RUNNING|PROVIDER_([A-Z0-9]+)_ERROR")
MEMORY = re.compile(r"RSRC_INSUFFICIENT_\w*MEMORY|RSRC_\w+_DOCKER_MEMORY|RSRC_OVER_ALLOC_MEM|"
                    r"has only (\d+)MB memory but you specified (\d+)MB|less than the (?:required|usable minimum)",
                    re.IGNORECASE)
CORES = re.compile(r"RSRC_INSUFFICIENT_CORES|RSRC_\w*DOCKER_CORES")
DRIVER_MISMATCH = re.compile(r"GUEST_DRV_MISMATCH|was created using the \"\w+\" driver")
OLD_DRIVER = re.compile(r"was created using the \"(\w+)\" driver")

DRIVER_DOCS = "https://minikube.sigs.k8s.io/docs/drivers/"


def _exit_line(output: str) -> str:
    match = EXIT_LINE.search(output)
    return f"{match.group(1)}: {match.group(2).strip()}" if match else ""


@dataclass(frozen=True)
class FailedStart:
    """A failed `minikube start`: its output and what it was asked for."""

    output: str
    code: int
    opts: StartOptions
    pid: PidFile | None = None

    @property
    def exit_line(self) -> str:
        return _exit_line(self.output)

    @property
    def driver(self) -> str:
        return self.opts.driver or "the default driver"

    @property
    def profile_flag(self) -> str:
        return "" if self.opts.profile == "minikube" else f" --profile {self.opts.profile}"


# What happened and the fix, from the pattern's match and the failed start.
Explain = Callable[[re.Match[str], FailedStart], tuple[str, str]]


def _no_ip_address(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    mac = re.search(r"IP address for ([0-9a-f:]+)", failed.output, re.IGNORECASE)
    flag = failed.profile_flag
    hint = ("the VM started but never got an address from the host's DHCP (kubernetes/minikube#1926). "
            f"Delete the half-made VM and start again: `inv minikube.delete{flag}` then "
            f"`inv minikube.start{flag}` (or `inv minikube.start{flag} --recreate` does both; "
            "the cluster's data is lost)")
    return (f"minikube start failed: the VM never got an IP address"
            f"{f' (MAC {mac.group(1)})' if mac else ''} — “Could not find an IP address”",
            hint + _pid_file_advice(failed.pid, failed.opts.profile))


def _pid_file_advice(pid: PidFile | None, profile: str) -> str:
    """What to do about the VM driver's pid file: stale, still running, or maybe there."""
    if pid is not None and pid.exists and pid.pid is not None and not pid.alive:
        return (f"; the stale pid file {pid.path} names pid {pid.pid}, which is not running: "
                f"remove it (rm {pid.path}) and retry")
    if pid is not None and pid.exists and pid.alive:
        return f"; {pid.path} names pid {pid.pid}, which is still running: stop it first (kill {pid.pid})"
    where = pid.path if pid is not None else f"~/.minikube/machines/{profile}/hyperkit.pid"
    return (f"; if it fails again, remove the VM's stale pid file ({where}) if it is there, "
            "and check that no VPN/firewall blocks the VM's DHCP (bootpd)")


def _driver_missing(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    found = (pattern.search(failed.output) for pattern in DRIVER_NAMES)
    name = next((m.group(1) for m in found if m), "") or failed.opts.driver or "chosen"
    name = {"vboxmanage": "virtualbox"}.get(name.lower(), name.lower())
    exit_line = failed.exit_line
    return (f"minikube start failed: the {name} driver is not installed or not usable here"
            f"{f' ({exit_line})' if exit_line else ''}",
            f"install it ({DRIVER_DOCS}{name}/), or choose an installed driver with "
            "app.cluster.minikube.driver (e.g. docker) or --driver")


def _driver_down(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    name = (next((g for g in match.groups() if g), "") or "docker").lower()
    return (f"minikube start failed: the {name} driver is installed but not running",
            f"start it ({'sudo systemctl start docker, or Docker Desktop' if name == 'docker' else name}), "
            "then run inv minikube.start again")


def _not_enough_memory(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    if match.group(1):
        available = int(match.group(1))
        hint = (f"{failed.driver} can give at most {available} MB: set app.cluster.minikube.memory between "
                f"{MIN_MEMORY_MB} and {available} (or --memory), or give Docker Desktop/the VM host more memory")
    else:
        hint = (f"minikube needs at least {MIN_MEMORY_MB} MB for Kubernetes: set app.cluster.minikube.memory "
                "to 2048 or more (or --memory), and close other VMs or give Docker more memory")
    return f"minikube start failed: not enough memory ({failed.exit_line or match.group(0)})", hint


def _not_enough_cpus(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    return (f"minikube start failed: not enough CPUs ({failed.exit_line})",
            f"set app.cluster.minikube.cpus to {MIN_CPUS} or more, within what the host/Docker offers")


def _driver_mismatch(match: re.Match[str], failed: FailedStart) -> tuple[str, str]:
    old_driver = OLD_DRIVER.search(failed.output)
    old = old_driver.group(1) if old_driver else "another"
    return (f"minikube start failed: profile {failed.opts.profile!r} was created with the {old} driver, "
            f"not {failed.driver}",
            f"delete it (inv minikube.delete{failed.profile_flag}) or set app.cluster.minikube.driver: {old}")


# minikube start's known failures, the first match wins: (pattern in the output, explanation).
KNOWN_START_FAILURES: list[tuple[re.Pattern[str], Explain]] = [
    (IP_FAILURE, _no_ip_address),
    (DRIVER_MISSING, _driver_missing),
    (DRIVER_DOWN, _driver_down),
    (MEMORY, _not_enough_memory),
    (CORES, _not_enough_cpus),
    (DRIVER_MISMATCH, _driver_mismatch),
]


def _unknown_failure(failed: FailedStart) -> tuple[str, str]:
    """minikube's own verdict and suggestion, when the failure is none of the known ones."""
    suggestion = SUGGESTION.search(failed.output)
    exit_line = failed.exit_line
    return (f"minikube start failed (exit {failed.code}){f': {exit_line}' if exit_line else ''}",
            suggestion.group(1).strip() if suggestion else
            f"read minikube's message above; `minikube logs -p {failed.opts.profile}` has the details")


def explain_start_failure(output: str, code: int, opts: StartOptions, pid: PidFile | None = None) -> KitError:
    """minikube start's output -> one KitError saying what happened and the fix."""
    failed = FailedStart(output, code, opts, pid)
    matched = ((match, explain) for pattern, explain in KNOWN_START_FAILURES if (match := pattern.search(output)))
    found = next(matched, None)
    message, hint = found[1](found[0], failed) if found else _unknown_failure(failed)
    # minikube's output was already on screen: repeat only its verdict (or the tail when it gave none)
    evidence = next((line.strip() for line in output.splitlines() if EXIT_LINE.search(line)), "") or tail(output, 10)
    return KitError(message, evidence=evidence, hint=hint, code=code if 0 < code < 126 else 1)


def explain_not_running(command: str, status: Status) -> KitError:
    """A command that needs a running cluster, on a profile that is stopped or absent."""
    profile_flag = "" if status.profile == "minikube" else f" --profile {status.profile}"
    if not status.exists:
        return KitError(f"minikube {command}: there is no minikube profile {status.profile!r}",
                        hint=f"start one: inv minikube.start{profile_flag}", code=NOT_FOUND_EXIT)
    return KitError(f"minikube {command}: profile {status.profile!r} is not running (host {status.host})",
                    hint=f"start it: inv minikube.start{profile_flag}", code=3)


RUNTIME_MISMATCH = re.compile(r'only compatible with the "docker" runtime, but this cluster was configured to use the "(\w[\w-]*)"')


def explain_docker_env_failure(output: str, code: int, profile: str) -> KitError:
    runtime = RUNTIME_MISMATCH.search(output)
    if runtime:
        return KitError(f"profile {profile!r} runs the {runtime.group(1)} runtime: it has no Docker daemon to point at",
                        evidence=tail(output, 4),
                        hint="build locally and let the kit deliver images with `inv image.load` (minikube image load), "
                             "or recreate the cluster with --container-runtime=docker",
                        code=2)
    return KitError(f"`minikube -p {profile} docker-env` failed (exit {code})", evidence=tail(output, 8),
                    hint=f"check `inv minikube.status --profile {profile}`", code=code if 0 < code < 126 else 1)
