"""CI cannot pass by skipping: with CI=true an integration test that skips fails (issue: a green run with no cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_pytest(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n@pytest.mark.integration\ndef test_needs_a_cluster():\n    pytest.skip('no cluster')\n\n"
        "def test_unit():\n    pytest.skip('not an integration test')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DEVLOOP_REQUIRE_INTEGRATION")}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(TESTS)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                           "-m", "integration or not integration", "--rootdir", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)


def test_under_ci_a_skipped_integration_test_fails(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "an integration test skipped where it must run (CI=true): Skipped: no cluster" in result.stdout
    assert "1 failed, 1 skipped" in result.stdout


def test_elsewhere_it_skips(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, None)
    assert result.returncode == 0 and "2 skipped" in result.stdout, result.stdout
