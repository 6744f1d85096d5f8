"""Test isolation and shared fixtures.

Every test runs with a clean environment: no INVOKE_*, DOCKER_*, MINIKUBE_* or KUBECONFIG from the
developer's shell, and a throwaway $HOME. Integration tests get the real cluster's kubeconfig back
through the ``cluster`` fixture; without one they skip with the reason (CI always provides it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKES = REPO / "tests" / "fakes"
HELLO = REPO / "examples" / "hello"
# Captured before isolation clears it: the real cluster for integration tests.
CLUSTER_KUBECONFIG = os.environ.get("KUBECONFIG", "")
INV = str(Path(sys.executable).with_name("inv"))

# CI (CI=true, as .ci/run is run) must not pass by skipping: there an integration test that skips fails.
REQUIRE_INTEGRATION = os.environ.get("CI") == "true" or os.environ.get("DEVLOOP_REQUIRE_INTEGRATION") == "1"

APP_TASKS_PY = "from devloop import namespace\n\nns = namespace()\n"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(("INVOKE_", "DOCKER_", "MINIKUBE_", "KUBE", "BASE_IMAGE", "FAKE_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def docker_ok() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real test cluster's kubeconfig, exported for the test; skips when there is none."""
    if not CLUSTER_KUBECONFIG or not Path(CLUSTER_KUBECONFIG).is_file():
        pytest.skip("no KUBECONFIG for a real cluster (CI provides ../shared/cluster/k8s-local)")
    if not docker_ok():
        pytest.skip("no reachable Docker daemon")
    monkeypatch.setenv("KUBECONFIG", CLUSTER_KUBECONFIG)
    return CLUSTER_KUBECONFIG


@pytest.fixture(scope="session")
def base_image() -> str:
    """A local BASE_IMAGE built FROM scratch with Debian's busybox-static: no registry involved."""
    if not docker_ok():
        pytest.skip("no reachable Docker daemon")
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("busybox-static is not installed")
    name = "kit-test-base:busybox"
    if subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0:
        return name
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.realpath(busybox), Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
            'ENV PATH=/bin\nCMD ["/bin/sh"]\n'
        )
        subprocess.run(["docker", "build", "--network", "none", "-q", "-t", name, tmp], check=True,
                       capture_output=True)
    return name


def make_app(tmp_path: Path, source: Path = HELLO, name: str = "app") -> Path:
    """A copy of an example app using the installed kit the way a user's repo does: a two-line tasks.py."""
    target = tmp_path / name
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(".kit", ".env", "tasks.py"))
    write_tasks_py(target)
    return target


def write_tasks_py(folder: Path) -> Path:
    """The app's tasks.py as the README gives it."""
    path = folder / "tasks.py"
    path.write_text(APP_TASKS_PY)
    return path


def built_here(app: Path) -> list[str]:
    """The image IDs the kit noted building in an app folder (.kit/built-images), for a test's clean-up."""
    notes = app / ".kit" / "built-images"
    return [line.split()[0] for line in notes.read_text().splitlines() if line.strip()] if notes.is_file() else []


def inv(app: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `inv` in an app folder, as a user would, capturing output."""
    full_env = dict(os.environ, **(env or {}))
    full_env["PATH"] = f"{Path(INV).parent}{os.pathsep}{full_env.get('PATH', '')}"
    return subprocess.run([INV, *args], cwd=app, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_INTEGRATION and report.skipped and item.get_closest_marker("integration"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"an integration test skipped where it must run (CI=true): {reason}"
