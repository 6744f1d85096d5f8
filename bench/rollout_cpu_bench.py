"""Wall time and CPU of a rollout: the kit (`inv k8s.apply k8s.wait`) against the raw commands
(`kubectl apply`, then `kubectl rollout status` per Deployment, one after another as the Makefile does).

N = 1, 10, 30 busybox Deployments (1 replica, exec readiness probe, terminationGracePeriodSeconds 1) in a
namespace of their own; each round changes an env var in all of them. CPU is user+sys of the commands and
everything they started (getrusage of reaped children). The kit's modules are byte-compiled first, as an install
has them. "apply + ready" is one `inv k8s.apply k8s.wait` (one Python start-up, as `inv up`) against `kubectl
apply` + the rollout status loop. "ready only" is `inv k8s.wait` alone, in a rollout of its own started by an
unmeasured `inv k8s.apply`, against the rollout status loop alone. The "watch cycle" row is the inner loop: one
`inv watch --debounce-ms 50` runs throughout, and each round's manifest change is one of its cycles (apply, then
ready); its CPU is the watch process tree's, its wall from the write to the cycle's "ready" line (debounce included),
against `kubectl apply` + the rollout status loop. Prints; asserts nothing.

Usage: KUBECONFIG=... .venv/bin/python bench/rollout_cpu_bench.py [N ...] [--rounds R] [--probe-period S]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests")]
INV = str(Path(sys.executable).with_name("inv"))
BUSYBOX = "k8s-local/busybox:1"


def deployment(name: str, version: str, probe_period: int = 1) -> dict:
    container = {"name": "main", "image": BUSYBOX, "imagePullPolicy": "Never",
                 "command": ["sh", "-c", "mkdir -p /tmp && touch /tmp/ready && exec sleep 3600"],
                 "env": [{"name": "VERSION", "value": version}],
                 "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": probe_period}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def measured(commands: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of reaped children) of running ``commands``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    commands()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class Bench:
    def __init__(self, root: Path, count: int, probe_period: int = 1) -> None:
        self.root, self.count, self.probe_period = root, count, probe_period
        self.namespace = f"kit-bench-cpu-{count}-{secrets.token_hex(2)}"
        self.names = [f"svc{i:02d}" for i in range(count)]
        self.session = root.with_name("session")  # the same app, where `inv watch` runs (only its own writes wake it)
        config = {"name": "cpu", "namespace": self.namespace, "timeout": 300,
                  "cluster": {"provider": "docker", "ip": "127.0.0.1"}}
        for folder in (root, self.session):
            (folder / "k8s").mkdir(parents=True)
            (folder / "tasks.py").write_text("from devloop import namespace\n\nns = namespace()\n")
            (folder / "invoke.yaml").write_text(yaml.safe_dump({"app": config}))
        self.env = dict(os.environ, PATH=f"{Path(INV).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        self.version = 0

    def write(self, folder: Path | None = None) -> Path:
        """A new version of every Deployment (one counter for both folders: each write changes them all)."""
        self.version += 1
        docs = [deployment(name, str(self.version), self.probe_period) for name in self.names]
        path = (folder or self.root) / "k8s" / "app.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        return path

    def run(self, *argv: str) -> None:
        done = subprocess.run(list(argv), cwd=self.root, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def kit(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(apply+wait in one `inv`, as invoke runs two tasks; `inv k8s.wait` alone) as (wall, CPU)."""
        self.write()
        both = measured(lambda: self.run(INV, "k8s.apply", "k8s.wait"))
        self.settle()
        self.write()
        self.run(INV, "k8s.apply")
        waited = measured(lambda: self.run(INV, "k8s.wait"))
        return both, waited

    def settle(self) -> None:
        """Until no pod of the last rollout is still terminating: each measurement starts on a quiet node."""
        for _ in range(240):
            out = subprocess.run(["kubectl", "--namespace", self.namespace, "get", "pods", "-o", "json"],
                                 capture_output=True, text=True).stdout
            if not any(p["metadata"].get("deletionTimestamp") for p in json.loads(out or '{"items": []}')["items"]):
                return
            time.sleep(0.5)

    def cycle(self, watcher: Any, number: int) -> tuple[float, float]:
        """One cycle of a running `inv watch`: (wall from the write to its ready line, CPU of its process tree)."""
        from watch_helpers import tree_cpu

        seen, cpu = len(watcher.lines), tree_cpu(watcher.proc.pid)
        started = time.monotonic()
        self.write(self.session)
        _, at, line = watcher.wait_for(rf"── cycle {number} (ready|failed)", 300, seen)
        if "failed" in line:
            raise SystemExit(f"watch cycle {number} failed:\n{watcher.text[-3000:]}")
        return at - started, tree_cpu(watcher.proc.pid) - cpu

    def raw(self) -> tuple[tuple[float, float], tuple[float, float]]:
        path = self.write()
        kubectl = ["kubectl", "--namespace", self.namespace]
        applied = measured(lambda: self.run(*kubectl, "apply", "-f", str(path)))

        def statuses() -> None:
            for name in self.names:
                self.run(*kubectl, "rollout", "status", f"deployment/{name}", "--timeout", "300s")

        waited = measured(statuses)
        return (applied[0] + waited[0], applied[1] + waited[1]), waited


def row(label: str, kit: list[tuple[float, float]], raw: list[tuple[float, float]]) -> str:
    def med(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values)

    kw, kc, rw, rc = med(kit, 0), med(kit, 1), med(raw, 0), med(raw, 1)
    return (f"  {label:<24} wall kit {kw:6.1f}s  raw {rw:6.1f}s  ({kw / rw:4.2f}x)    "
            f"CPU kit {kc:6.2f}s  raw {rc:6.2f}s  ({kc / rc:4.2f}x)")


def bench(count: int, rounds: int, probe_period: int) -> None:
    from watch_helpers import Running

    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(Path(tmp) / "app", count, probe_period)
        subprocess.run(["kubectl", "create", "namespace", b.namespace], check=True, capture_output=True)
        watcher = None
        try:
            b.kit()  # first deployment: not measured
            watcher = Running(b.session, "watch", "--debounce-ms", "50", env={})
            watcher.wait_for(r"^watching ", 60)
            b.cycle(watcher, 1)  # the session's first cycle reads what later ones keep: not measured
            kit_all, kit_wait, raw_all, raw_wait, cycles = [], [], [], [], []
            for k in range(1, rounds + 1):  # alternating, so all see the same cluster load
                b.settle()
                cycles.append(b.cycle(watcher, k + 1))
                b.settle()
                total, waited = b.kit()
                kit_all.append(total)
                kit_wait.append(waited)
                b.settle()
                total, waited = b.raw()
                raw_all.append(total)
                raw_wait.append(waited)
            print(f"N = {count} Deployments, readiness probe every {probe_period}s ({rounds} rollout(s) each, medians):")
            for i in range(rounds):
                print(f"  round {i + 1}: wait CPU kit {kit_wait[i][1]:.2f}s raw {raw_wait[i][1]:.2f}s, "
                      f"wall kit {kit_wait[i][0]:.1f}s raw {raw_wait[i][0]:.1f}s; watch cycle CPU {cycles[i][1]:.2f}s "
                      f"wall {cycles[i][0]:.1f}s")
            print(row("apply + ready", kit_all, raw_all))
            print(row("ready only (wait)", kit_wait, raw_wait))
            print(row("watch cycle (inner loop)", cycles, raw_all))
        finally:
            if watcher is not None:
                watcher.stop()
            subprocess.run(["kubectl", "delete", "namespace", b.namespace, "--wait=false"], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("counts", nargs="*", type=int, default=[1, 10, 30])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--probe-period", type=int, default=1,
                        help="readiness probe period in seconds (exec probes: 30 pods at 1 s keep a 2-core node busy)")
    args = parser.parse_args()
    if not os.environ.get("KUBECONFIG"):
        raise SystemExit("set KUBECONFIG to the test cluster's kubeconfig (k8s-local env)")
    from watch_helpers import compile_kit

    compile_kit()  # the kit as a user's install has it: modules byte-compiled
    print("kit = inv k8s.apply k8s.wait (one process); raw = kubectl apply + kubectl rollout status per Deployment")
    for count in args.counts:
        bench(count, args.rounds, args.probe_period)


if __name__ == "__main__":
    main()
