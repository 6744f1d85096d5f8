"""`inv --list` start-up: the kit (examples/hello) beside a bare invoke with a one-task tasks.py.

Runs both alternately, N times each, and prints medians and their ratio (target <= 1.25).
Usage: .venv/bin/python bench/list_bench.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INV = str(Path(sys.executable).with_name("inv"))


# As on a user's machine, Python caches compiled bytecode (a sandbox may set PYTHONDONTWRITEBYTECODE,
# which would make every run recompile the kit's sources but not invoke's, already compiled at install).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([INV, "--list"], cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp)
        (bare / "tasks.py").write_text('from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n')
        kit = REPO / "examples" / "hello"
        timed(bare), timed(kit)  # warm the file cache
        kit_times, bare_times = [], []
        for _ in range(runs):
            kit_times.append(timed(kit))
            bare_times.append(timed(bare))
    k, b = statistics.median(kit_times), statistics.median(bare_times)
    print(f"inv --list, {runs} runs each, alternating")
    print(f"  kit (examples/hello): median {k * 1000:.0f} ms  (min {min(kit_times) * 1000:.0f} ms)")
    print(f"  bare one-task invoke: median {b * 1000:.0f} ms  (min {min(bare_times) * 1000:.0f} ms)")
    print(f"  ratio kit/bare: {k / b:.2f}  (target <= 1.25)")


if __name__ == "__main__":
    main()
