"""Saving again while the build runs, on the real cluster. Prints figures; asserts nothing.

A copy of examples/hello without live_update rules (every save rebuilds) under `inv watch`. Each round saves
a file the image holds, waits until its `docker build` has started, waits ``--gap`` seconds more, and saves the
same file again: the running build is stale. Measured: second save → the cycle that deploys it is ready.

With ``--against DIR`` a second copy runs the kit from DIR/src (another checkout, e.g. a git worktree of an
earlier commit) in its own namespace, and the rounds alternate between the two: a side-by-side figure.

Usage: .venv/bin/python bench/resave_bench.py [--rounds N] [--gap S] [--against DIR]
Environment: KUBECONFIG (the cluster), BASE_IMAGE (default k8s-local/busybox:1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def rebuild_only(app: Path) -> None:
    config = yaml.safe_load((app / "invoke.yaml").read_text())
    del config["app"]["images"]["hello"]["live_update"]
    (app / "invoke.yaml").write_text(yaml.safe_dump(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds after the build starts before saving again")
    parser.add_argument("--against", type=Path, help="another checkout whose src/ runs the second side")
    args = parser.parse_args()

    from conftest import INV, make_app
    from watch_helpers import Running, cluster_env, compile_kit, namespace

    compile_kit()
    base = os.environ.get("BASE_IMAGE", "k8s-local/busybox:1")
    sides: dict[str, str | None] = {"this checkout": None}
    if args.against:
        sides[f"{args.against}"] = str(args.against.resolve() / "src")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        runs: dict[str, tuple[Path, Running]] = {}
        for k, (name, src) in enumerate(sides.items()):
            ns = stack.enter_context(namespace(f"kit-resave-{k}"))
            app = make_app(Path(tmp), name=f"side{k}")
            rebuild_only(app)
            env = cluster_env(base, ns) | ({"PYTHONPATH": src} if src else {})
            up = subprocess.run([INV, "up"], cwd=app, env=dict(os.environ, **env), capture_output=True, text=True)
            if up.returncode != 0:
                raise SystemExit(f"inv up failed ({name}):\n{up.stderr[-3000:]}")
            watcher = Running(app, "watch", env=env)
            stack.callback(watcher.stop)
            watcher.wait_for(r"^watching ", 60)
            runs[name] = (app, watcher)
        times: dict[str, list[float]] = {name: [] for name in runs}
        applied: dict[str, list[float]] = {name: [] for name in runs}  # second save → its apply done
        run_id = time.time_ns()
        seen = {name: len(w.lines) for name, (_, w) in runs.items()}
        for k in range(1, args.rounds + 1):
            order = list(runs) if k % 2 else list(reversed(runs))
            for name in order:
                app, watcher = runs[name]
                target = app / "app" / "worker.sh"
                original = target.read_text().split("# round")[0]
                target.write_text(f"{original}# round {k} of {run_id}: first save\n")
                index, _, _ = watcher.wait_for(r"^\$ docker build --iidfile ", 60, seen[name])
                time.sleep(args.gap)
                again = time.monotonic()
                target.write_text(f"{original}# round {k} of {run_id}: saved again\n")
                while True:  # the cycle whose build holds the second save: the last one to end before quiet
                    index, at, line = watcher.wait_for(r"── cycle \d+ (ready|failed)", 300, index + 1)
                    if "failed" in line:
                        raise SystemExit(f"{name}: a cycle failed:\n{watcher.text[-3000:]}")
                    try:
                        watcher.wait_for(r"^── cycle \d+:", 1.5, index + 1)  # a follow-up cycle started
                    except AssertionError:
                        break
                times[name].append(at - again)
                waits = [i for i in range(index) if "until ready or" in watcher.lines[i][1]]
                applied[name].append(watcher.lines[waits[-1]][0] - again)
                seen[name] = len(watcher.lines)
                time.sleep(1)
    print(f"saving again {args.gap:.1f} s after the build started: second save → ready, {args.rounds} rounds"
          + (" alternating" if len(runs) > 1 else ""))
    for name, values in times.items():
        print(f"   {name}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}); "
              f"of which second save → apply done (the kit's own part, before the rollout): median "
              f"{statistics.median(applied[name]):.2f} s; per round " + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
