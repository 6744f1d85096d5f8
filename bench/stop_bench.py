"""How long `inv watch` / `inv dev` take to end on Ctrl-C, on the real cluster. Prints figures; asserts nothing.

A copy of examples/hello is deployed (`inv up`), then for each round the task is started in a session of its own,
one live update cycle runs (a page under the example's sync rule), and SIGINT goes to its whole process group, as a
terminal's Ctrl-C does. Measured: SIGINT → the task's exit (its exit code is shown too; 130 is Ctrl-C's).

Usage: .venv/bin/python bench/stop_bench.py [--rounds N] [--task watch|dev]
Environment: KUBECONFIG (the cluster), BASE_IMAGE (default k8s-local/busybox:1).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--task", choices=["watch", "dev"], default="dev")
    args = parser.parse_args()

    from conftest import INV, make_app
    from watch_helpers import cluster_env, compile_kit, namespace

    compile_kit()
    base = os.environ.get("BASE_IMAGE", "k8s-local/busybox:1")
    took: list[float] = []
    codes: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, namespace("kit-stop-bench") as ns:
        app = make_app(Path(tmp), name="app")
        env = dict(os.environ, **cluster_env(base, ns), PYTHONUNBUFFERED="1")
        up = subprocess.run([INV, "up"], cwd=app, env=env, capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"inv up failed:\n{up.stderr[-3000:]}")
        for k in range(args.rounds):
            out = Path(tmp) / f"out-{k}.txt"
            with out.open("w") as sink:
                proc = subprocess.Popen([INV, args.task], cwd=app, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                wait_for(out, "watching ", 120)
                (app / "app" / "www" / "index.html").write_text(f"<h1>round {k}</h1>\n")
                wait_for(out, "── cycle 1 ready", 120)
                time.sleep(2)  # idle, as a user is when they stop it
                sent = time.monotonic()
                os.killpg(proc.pid, signal.SIGINT)
                codes.append(proc.wait(60))
                took.append(time.monotonic() - sent)
    print(f"inv {args.task}: Ctrl-C (SIGINT to its process group) → exit, after one live update cycle, {args.rounds} rounds")
    print(f"   median {statistics.median(took):.2f} s (min {min(took):.2f}, max {max(took):.2f}); per round "
          + " ".join(f"{t:.2f}" for t in took) + f"; exit codes {sorted(set(codes))}")


def wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {text!r} within {timeout:.0f}s:\n{path.read_text()[-3000:]}")
        time.sleep(0.05)


if __name__ == "__main__":
    main()
