"""Wall time and CPU of a rollout: the kit (`inv k8s.apply k8s.wait`) against the raw commands
(`kubectl apply`, then `kubectl rollout status` per Deployment, one after another as the Makefile does).

N = 1, 10, 30 busybox Deployments (1 replica, exec readiness probe, terminationGracePeriodSeconds 1) in a
namespace of their own; each round changes an env var in all of them. CPU is user+sys of a command and everything
it started (wait4's rusage; psutil for the long-running `inv watch`). The kit's modules are byte-compiled first, as
an install has them.

A rollout's length swings by 2x and more from one to the next at N=30 on a small machine, and the CPU of a wait
grows with it, so every kit wait is measured beside a raw wait on the same rollout: the rollout status loop
(`kubectl rollout status` per Deployment, one after another, as the Makefile does) starts the moment the kit's
wait starts. Rows:
- "ready only": after a `kubectl apply` (its CPU measured: the raw apply), `inv k8s.wait` and the loop, started
  together.
- "apply + ready": one `inv k8s.apply k8s.wait` (one Python start-up, as `inv up`), against the raw apply plus the
  loop, started when the kit's wait starts.
- "watch cycle": the inner loop. One `inv watch --debounce-ms 50` runs throughout, and each round's manifest change
  is one of its cycles (apply, then ready); its CPU is the watch process tree's, its wall from the write to the
  cycle's "ready" line (debounce included), against the raw apply plus the loop, started when the cycle's wait
  starts.
Prints; asserts nothing.

Usage: KUBECONFIG=... .venv/bin/python bench/rollout_cpu_bench.py [N ...] [--rounds R] [--probe-period S]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


Sample = tuple[float, float]  # (wall seconds, CPU seconds)
WAIT_STARTS = r"until ready or \d+s"  # the kit's line as its wait begins


def measured(commands: Callable[[], None]) -> Sample:
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

    def start(self, argv: list[str], folder: Path | None = None) -> Started:
        return Started(argv, folder or self.root, self.env)

    def rollout_statuses(self) -> Started:
        """The raw wait, as the Makefile has it: `kubectl rollout status` per Deployment, one after another."""
        script = 'for d; do kubectl --namespace "$1" rollout status "deployment/$d" --timeout 300s || exit 1; done'
        return self.start(["sh", "-c", script.replace('"$1"', f'"{self.namespace}"'), "sh", *self.names])

    def settle(self) -> None:
        """Until no pod of the last rollout is still terminating: each measurement starts on a quiet node."""
        for _ in range(240):
            out = subprocess.run(["kubectl", "--namespace", self.namespace, "get", "pods", "-o", "json"],
                                 capture_output=True, text=True).stdout
            if not any(p["metadata"].get("deletionTimestamp") for p in json.loads(out or '{"items": []}')["items"]):
                return
            time.sleep(0.5)

    def raw(self) -> tuple[Sample, Sample, Sample]:
        """A rollout started by `kubectl apply`, waited for side by side: (the apply, `inv k8s.wait`, the raw wait)."""
        path = self.write()
        applied = measured(lambda: self.run("kubectl", "--namespace", self.namespace, "apply", "-f", str(path)))
        kit, raw = self.start([INV, "k8s.wait"]), self.rollout_statuses()
        return applied, kit.finish(), raw.finish()

    def one_shot(self) -> tuple[Sample, Sample]:
        """`inv k8s.apply k8s.wait` (as `inv up` runs them), and the raw wait started when the kit's wait starts."""
        self.write()
        kit = self.start([INV, "k8s.apply", "k8s.wait"])
        kit.wait_for(WAIT_STARTS)
        raw = self.rollout_statuses()
        return kit.finish(), raw.finish()

    def cycle(self, watcher: Any, number: int) -> tuple[Sample, Sample]:
        """One cycle of a running `inv watch` (wall from the write to its ready line, CPU of its process tree), and
        the raw wait started when the cycle's wait starts."""
        from watch_helpers import tree_cpu

        seen, cpu = len(watcher.lines), tree_cpu(watcher.proc.pid)
        started = time.monotonic()
        self.write(self.session)
        watcher.wait_for(WAIT_STARTS, 300, seen)
        raw = self.rollout_statuses()
        _, at, line = watcher.wait_for(rf"── cycle {number} (ready|failed)", 300, seen)
        if "failed" in line:
            raise SystemExit(f"watch cycle {number} failed:\n{watcher.text[-3000:]}")
        return (at - started, tree_cpu(watcher.proc.pid) - cpu), raw.finish()


class Started:
    """A command started now; its wall and CPU (its own and its reaped children's, from wait4) when it ends."""

    def __init__(self, argv: list[str], folder: Path, env: dict[str, str]) -> None:
        self.argv, self.said = argv, ""
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=folder, env=dict(env, PYTHONUNBUFFERED="1"), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)

    def wait_for(self, pattern: str) -> None:
        """Read what it says (the kit's progress lines are on stderr) up to the first line matching ``pattern``."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.said += line
            if re.search(pattern, line):
                return
        self.finish()
        raise SystemExit(f"{' '.join(self.argv)} ended without a line matching {pattern!r}:\n{self.said[-3000:]}")

    def finish(self) -> Sample:
        assert self.proc.stderr is not None
        self.said += self.proc.stderr.read()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - self.started
        if self.proc.returncode != 0:
            raise SystemExit(f"{' '.join(self.argv)} failed ({self.proc.returncode}):\n{self.said[-3000:]}")
        return wall, usage.ru_utime + usage.ru_stime


def plus(a: Sample, b: Sample) -> Sample:
    return a[0] + b[0], a[1] + b[1]


def row(label: str, kit: list[Sample], raw: list[Sample]) -> str:
    def med(values: list[Sample], i: int) -> float:
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
            b.write()
            b.run(INV, "k8s.apply", "k8s.wait")  # first deployment: not measured
            watcher = Running(b.session, "watch", "--debounce-ms", "50", env={})
            watcher.wait_for(r"^watching ", 60)
            b.settle()
            b.write(b.session)  # the session's first cycle reads what later ones keep: not measured
            watcher.wait_for(r"── cycle 1 (ready|failed)", 300)
            one_shot: list[tuple[Sample, Sample]] = []
            waits: list[tuple[Sample, Sample, Sample]] = []
            cycles: list[tuple[Sample, Sample]] = []
            for k in range(1, rounds + 1):
                b.settle()
                cycles.append(b.cycle(watcher, k + 1))
                b.settle()
                one_shot.append(b.one_shot())
                b.settle()
                waits.append(b.raw())
            print(f"N = {count} Deployments, readiness probe every {probe_period}s ({rounds} round(s), medians; "
                  "each kit wait and its raw wait watch the same rollout):")
            for i in range(rounds):
                applied, kit_wait, raw_wait = waits[i]
                print(f"  round {i + 1}: kubectl apply {applied[1]:.2f}s CPU; wait CPU kit {kit_wait[1]:.2f}s "
                      f"raw {raw_wait[1]:.2f}s, wall kit {kit_wait[0]:.1f}s raw {raw_wait[0]:.1f}s; "
                      f"rollout of the one-shot {one_shot[i][1][0]:.1f}s, of the watch cycle {cycles[i][1][0]:.1f}s")
            raw_all = [plus(applied, raw) for (applied, _, _), (_, raw) in zip(waits, one_shot, strict=True)]
            raw_cycle = [plus(applied, raw) for (applied, _, _), (_, raw) in zip(waits, cycles, strict=True)]
            print(row("apply + ready", [kit for kit, _ in one_shot], raw_all))
            print(row("ready only (wait)", [kit for _, kit, _ in waits], [raw for _, _, raw in waits]))
            print(row("watch cycle (inner loop)", [kit for kit, _ in cycles], raw_cycle))
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
        try:
            bench(count, args.rounds, args.probe_period)
        except AssertionError as exc:  # a watch cycle that did not end in time (watch_helpers.Running.wait_for)
            raise SystemExit(f"N = {count}: {exc}\nno figures: a rollout outlasted the bench's 300 s (an overloaded node "
                             "fails exec probes; --probe-period 5 loads it less)") from None


if __name__ == "__main__":
    main()
