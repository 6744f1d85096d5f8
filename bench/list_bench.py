"""`inv --list` start-up: the kit, installed as a user gets it, beside a bare invoke with a one-task tasks.py.

Builds a wheel of this checkout and installs it (not editable) into a fresh venv with its dependencies,
copies examples/hello outside the checkout, then runs `inv --list` there and in a folder with a one-task
tasks.py, alternately, both with that venv's `inv`. Prints medians and their ratio (target <= 1.25).
Usage: .venv/bin/python bench/list_bench.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# As on a user's machine, Python caches compiled bytecode (a sandbox may set PYTHONDONTWRITEBYTECODE,
# which would make every run recompile the kit's sources but not invoke's, already compiled at install).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def install(where: Path) -> Path:
    """A venv with the kit installed from a wheel of this checkout; its `inv`."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(where / "dist"), str(REPO)],
                   check=True, env=ENV)
    subprocess.run([*pip, *map(str, (where / "dist").glob("devloop_kit-*.whl"))], check=True, env=ENV)
    return where / "bin" / "inv"


def timed(inv: Path, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(inv), "--list"], cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        inv = install(Path(tmp) / "venv")
        bare = Path(tmp) / "bare"
        bare.mkdir()
        (bare / "tasks.py").write_text('from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n')
        kit = Path(tmp) / "hello"
        shutil.copytree(REPO / "examples" / "hello", kit, ignore=shutil.ignore_patterns(".kit", "__pycache__"))
        for _ in range(2):
            timed(inv, bare), timed(inv, kit)  # warm the file cache and write the bytecode
        kit_times, bare_times = [], []
        for _ in range(runs):
            kit_times.append(timed(inv, kit))
            bare_times.append(timed(inv, bare))
    k, b = statistics.median(kit_times), statistics.median(bare_times)
    ratios = sorted(kt / bt for kt, bt in zip(kit_times, bare_times, strict=True))
    print(f"inv --list, {runs} paired runs, alternating; the kit installed from a wheel (not editable)")
    print(f"  kit (a copy of examples/hello): median {k * 1000:.0f} ms  (min {min(kit_times) * 1000:.0f} ms)")
    print(f"  bare one-task invoke:           median {b * 1000:.0f} ms  (min {min(bare_times) * 1000:.0f} ms)")
    print(f"  ratio kit/bare: {k / b:.2f} (median of pairs {statistics.median(ratios):.2f})  (target <= 1.25)")


if __name__ == "__main__":
    main()
