"""Rollout waiting and log following on the real cluster, in its own namespace (deleted afterwards).

Prints:
  1. ready → `inv k8s.wait` exits: from the moment an independent watcher sees the last pod Ready to the
     moment the `inv k8s.wait` process has exited (target <= 0.5 s);
  2. hopeless → exit: from the moment the watcher first sees ErrImageNeverPull / CrashLoopBackOff to the
     exit of `inv k8s.wait` (target <= 2 s);
  3. log lines lost by `inv k8s.logs` across rolling updates of a 2-replica Deployment whose pods print
     numbered lines every 50 ms and a last "bye N" on SIGTERM (target 0; duplicates counted too).

Usage: KUBECONFIG=... .venv/bin/python bench/wait_bench.py [TRIALS]
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
INV = str(Path(sys.executable).with_name("inv"))
BUSYBOX = "k8s-local/busybox:1"


def deployment(name: str, command: str, *, replicas: int = 1, probe: str | None = None, image: str = BUSYBOX) -> dict:
    container: dict = {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
    if probe:
        container["readinessProbe"] = {"exec": {"command": ["sh", "-c", probe]}, "periodSeconds": 1,
                                       "initialDelaySeconds": 2}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.namespace = f"kit-observe-bench-{secrets.token_hex(2)}"
        (root / "k8s").mkdir()
        (root / "tasks.py").write_text("from devloop import namespace\n\nns = namespace()\n")
        self.env = dict(os.environ, PATH=f"{Path(INV).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    def configure(self, objects: list[dict], **app: object) -> None:
        (self.root / "k8s" / "app.yaml").write_text(yaml.safe_dump_all(objects))
        config = {"name": "bench", "namespace": self.namespace, "cluster": {"provider": "docker", "ip": "127.0.0.1"}}
        config.update(app)
        (self.root / "invoke.yaml").write_text(yaml.safe_dump({"app": config}))

    def inv(self, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen([INV, *args], cwd=self.root, env=self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]

    def kubectl(self, *args: str) -> str:
        return subprocess.run(["kubectl", "--namespace", self.namespace, *args], check=True, capture_output=True,
                              text=True).stdout

    def watch_pods(self, selector: str) -> tuple[subprocess.Popen[str], list[tuple[float, str]]]:
        """An independent observer: (arrival time, 'name ready waiting-reason') per pod event."""
        template = ('{.metadata.name} {.status.conditions[?(@.type=="Ready")].status} '
                    '{.status.containerStatuses[0].state.waiting.reason}{"\\n"}')
        proc = subprocess.Popen(["kubectl", "--namespace", self.namespace, "get", "pods", "-l", selector, "--watch",
                                 "-o", f"jsonpath={template}"], stdout=subprocess.PIPE, text=True, bufsize=1)
        seen: list[tuple[float, str]] = []

        def pump() -> None:
            for line in proc.stdout or []:
                seen.append((time.monotonic(), line.strip()))

        threading.Thread(target=pump, daemon=True).start()
        return proc, seen


def all_ready_at(seen: list[tuple[float, str]], replicas: int) -> float | None:
    ready: dict[str, bool] = {}
    for when, line in list(seen):
        parts = line.split()
        if not parts:
            continue
        ready[parts[0]] = len(parts) > 1 and parts[1] == "True"
        if sum(ready.values()) >= replicas:
            return when
    return None


def first_reason_at(seen: list[tuple[float, str]], reason: str) -> float | None:
    return next((when for when, line in list(seen) if reason in line.split()[2:]), None)


def ready_trial(bench: Bench, trial: int) -> float:
    name = f"ready{trial}"
    bench.configure([deployment(name, "sleep 3600", replicas=2, probe="true")], timeout=60)
    watcher, seen = bench.watch_pods(f"app={name}")
    waiter = bench.inv("k8s.wait")
    time.sleep(0.8)  # the waiter is up and watching before anything exists
    subprocess.run([INV, "k8s.apply"], cwd=bench.root, env=bench.env, check=True, capture_output=True)
    _, err = waiter.communicate(timeout=90)
    exited = time.monotonic()
    watcher.terminate()
    ready = all_ready_at(seen, 2)
    if waiter.returncode != 0 or ready is None:
        raise SystemExit(f"ready trial {trial} failed: rc={waiter.returncode}\n{err}")
    bench.kubectl("delete", "deployment", name, "--wait=false")
    return exited - ready


def hopeless_trial(bench: Bench, trial: int, kind: str) -> float:
    name = f"{kind.lower()}{trial}"
    if kind == "ErrImageNeverPull":
        objects = [deployment(name, "true", image=f"kit-bench-absent:{trial}")]
    else:
        objects = [deployment(name, "echo crashing; exit 1")]
    bench.configure(objects, timeout=120)
    watcher, seen = bench.watch_pods(f"app={name}")
    waiter = bench.inv("k8s.wait")
    time.sleep(0.8)
    subprocess.run([INV, "k8s.apply"], cwd=bench.root, env=bench.env, check=True, capture_output=True)
    _, err = waiter.communicate(timeout=120)
    exited = time.monotonic()
    watcher.terminate()
    appeared = first_reason_at(seen, kind)
    if waiter.returncode != 1 or appeared is None or kind not in err:
        raise SystemExit(f"{kind} trial {trial}: rc={waiter.returncode}, appeared={appeared}\n{err}")
    bench.kubectl("delete", "deployment", name, "--wait=false")
    return exited - appeared


LINE = re.compile(r"^(?P<pod>ticker-\S+)/main (?:(?P=pod) (?P<n>\d+)|bye (?P<bye>\d+))$")


def log_trial(bench: Bench, updates: int) -> tuple[int, int, int, int]:
    """(pods seen, lines printed, lines lost, lines repeated) across ``updates`` rolling updates."""
    script = "trap 'echo bye $n; exit 0' TERM; n=0; while true; do n=$((n+1)); echo \"$HOSTNAME $n\"; sleep 0.05; done"
    bench.configure([deployment("ticker", script, replicas=2, probe="true")], logs={"selector": "app=ticker"},
                    timeout=90)
    follower = bench.inv("k8s.logs")
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in follower.stdout or []), daemon=True).start()
    time.sleep(1.0)
    subprocess.run([INV, "k8s.apply"], cwd=bench.root, env=bench.env, check=True, capture_output=True)
    subprocess.run([INV, "k8s.wait"], cwd=bench.root, env=bench.env, check=True, capture_output=True)
    for _ in range(updates):
        time.sleep(2)
        bench.kubectl("rollout", "restart", "deployment/ticker")
        bench.kubectl("rollout", "status", "deployment/ticker", "--timeout", "90s")
    time.sleep(3)  # old pods finish terminating; their last lines arrive
    terminated = set(bench.kubectl("get", "pods", "-o", "jsonpath={.items[*].metadata.name}").split())
    follower.send_signal(signal.SIGTERM)
    follower.wait(15)
    numbers: dict[str, list[int]] = defaultdict(list)
    byes: dict[str, int] = {}
    for line in lines:
        match = LINE.match(line)
        if match and match.group("n"):
            numbers[match.group("pod")].append(int(match.group("n")))
        elif match:
            byes[match.group("pod")] = int(match.group("bye"))
    lost = repeated = 0
    for pod, got in numbers.items():
        expected_last = byes.get(pod, max(got))
        if pod not in terminated and pod not in byes:
            lost += 1  # a pod that went away without its last line
        want = set(range(1, expected_last + 1))
        lost += len(want - set(got))
        repeated += len(got) - len(set(got))
    return len(numbers), sum(len(v) for v in numbers.values()), lost, repeated


def show(label: str, values: list[float], target: float) -> None:
    print(f"  {label}: median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
          f"over {len(values)} trials (target <= {target * 1000:.0f} ms) "
          f"[{', '.join(f'{v * 1000:.0f}' for v in values)}]")


def main() -> None:
    if not os.environ.get("KUBECONFIG"):
        raise SystemExit("set KUBECONFIG to the test cluster's kubeconfig (k8s-local env)")
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        subprocess.run(["kubectl", "create", "namespace", bench.namespace], check=True, capture_output=True)
        try:
            print(f"namespace {bench.namespace}, {trials} trials each")
            show("all pods Ready → inv k8s.wait exited", [ready_trial(bench, i) for i in range(trials)], 0.5)
            show("ErrImageNeverPull appears → inv k8s.wait exited",
                 [hopeless_trial(bench, i, "ErrImageNeverPull") for i in range(trials)], 2.0)
            show("CrashLoopBackOff appears → inv k8s.wait exited",
                 [hopeless_trial(bench, i, "CrashLoopBackOff") for i in range(trials)], 2.0)
            pods, printed, lost, repeated = log_trial(bench, updates=3)
            print(f"  inv k8s.logs across 3 rolling updates (2 replicas, a line every 50 ms): {pods} pods, "
                  f"{printed} lines, {lost} lost, {repeated} repeated (target 0 lost)")
        finally:
            subprocess.run(["kubectl", "delete", "namespace", bench.namespace, "--wait=false"], capture_output=True)


if __name__ == "__main__":
    main()
