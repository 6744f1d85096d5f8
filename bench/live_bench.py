"""Live update against the rebuild loop, on the real cluster (issue 12). Prints figures; asserts nothing.

Two copies of examples/hello (web ×2 + worker, one image), each in its own namespace, each under `inv watch`:
one with the example's live_update rules, one without (every save rebuilds and rolls out). Saves alternate
between them. For each save the time until the new content is in EVERY web container is measured inside
the containers: a `kubectl exec` per container prints the served file every 50 ms.

1. save → new content in every web replica: p50 / p95, live update vs rebuild, and their ratio
   (targets: live p50 ≤ 0.8 s, p95 ≤ 1.2 s, ratio ≤ 0.15), debounce included.
2. pod restarts and replaced pods after N live saves in a row (target 0).
3. a change to a file in the build context that the image does not contain: rollouts (target 0).

Usage: .venv/bin/python bench/live_bench.py [--rounds N] [--saves N]
Environment: KUBECONFIG (the cluster), BASE_IMAGE (default k8s-local/busybox:1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests")]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class Readers:
    """One `kubectl exec` per web container printing /app/www/version.txt every 50 ms; when each first shows a text."""

    def __init__(self, ns: str, pods: list[str]) -> None:
        self.seen: dict[str, dict[str, float]] = {pod: {} for pod in pods}
        self.lock = threading.Condition()
        loop = "while :; do cat /app/www/version.txt 2>/dev/null || echo -; sleep 0.05; done"
        self.procs = [subprocess.Popen(["kubectl", "--namespace", ns, "exec", pod, "-c", "web", "--", "sh", "-c", loop],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
                      for pod in pods]
        for pod, proc in zip(pods, self.procs, strict=True):
            threading.Thread(target=self._read, args=(pod, proc), daemon=True).start()

    def _read(self, pod: str, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout or []:
            with self.lock:
                self.seen[pod].setdefault(line.strip(), time.monotonic())
                self.lock.notify_all()

    def everywhere(self, text: str, timeout: float) -> float:
        """When the last container first showed ``text``."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(text in seen for seen in self.seen.values()):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{text!r} not seen in every container within {timeout}s: {self.seen}")
                self.lock.wait(0.1)
            return max(seen[text] for seen in self.seen.values())

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait()


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stdout}{done.stderr}")
    return done.stdout


def pod_state(ns: str) -> tuple[set[str], int]:
    """Names of the live hello pods and their total restarts."""
    out = subprocess.run(["kubectl", "--namespace", ns, "get", "pods", "-l", "app=hello", "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    pods = [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]
    return ({p["metadata"]["name"] for p in pods},
            sum(s.get("restartCount", 0) for p in pods for s in p["status"].get("containerStatuses", [])))


def web_pods(ns: str) -> list[str]:
    return sorted(p for p in pod_state(ns)[0] if p.startswith("hello-web"))


class Loop:
    """An app copy deployed in its own namespace, under `inv watch`."""

    def __init__(self, tmp: Path, name: str, live: bool, base: str) -> None:
        from conftest import make_app
        from watch_helpers import Running, cluster_env, namespace

        self.ns_context = namespace(f"kit-live-bench-{name}")
        self.ns = self.ns_context.__enter__()
        self.app = make_app(tmp, name=name)
        if not live:
            config = yaml.safe_load((self.app / "invoke.yaml").read_text())
            del config["app"]["images"]["hello"]["live_update"]
            (self.app / "invoke.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = cluster_env(base, self.ns)
        inv = str(Path(sys.executable).with_name("inv"))
        run([inv, "up"], self.app, dict(os.environ, **self.env))
        self.watcher = Running(self.app, "watch", env=self.env)
        self.watcher.wait_for(r"^watching ", 60)
        self.readers = Readers(self.ns, web_pods(self.ns))
        self.spans: list[tuple[float, float, float]] = []  # per live save: until the sync began, the sync, in all

    def save(self, text: str, timeout: float = 300) -> float:
        """Write version.txt; seconds until every web container has it. Notes where the time went in ``spans``."""
        seen = len(self.watcher.lines)
        saved = time.monotonic()
        (self.app / "app" / "www" / "version.txt").write_text(text + "\n")
        landed = self.readers.everywhere(text, timeout) - saved
        _, at, line = self.watcher.wait_for(r"^synced .* in (\d+) ms", timeout, seen)
        took = int(re.search(r"in (\d+) ms", line).group(1)) / 1000  # type: ignore[union-attr]
        self.spans.append((at - saved - took, took, landed))
        return landed

    def save_and_roll(self, text: str, timeout: float = 300) -> float:
        """The rebuild loop: write version.txt; seconds until its cycle is ready (new pods), then check every web
        container of the new pods has the text (inside each container)."""
        self.readers.close()  # they read the pods this rollout replaces
        seen = len(self.watcher.lines)
        saved = time.monotonic()
        (self.app / "app" / "www" / "version.txt").write_text(text + "\n")
        _, at, line = self.watcher.wait_for(r"── cycle \d+ (ready|failed)", timeout, seen)
        if "failed" in line:
            raise SystemExit(f"rebuild cycle failed:\n{self.watcher.text[-3000:]}")
        for pod in web_pods(self.ns):
            got = subprocess.run(["kubectl", "--namespace", self.ns, "exec", pod, "-c", "web", "--", "cat",
                                  "/app/www/version.txt"], capture_output=True, text=True).stdout.strip()
            if got != text:
                raise SystemExit(f"{pod} serves {got!r} after the rebuild cycle, not {text!r}")
        self.readers = Readers(self.ns, web_pods(self.ns))
        return at - saved

    def close(self) -> None:
        self.readers.close()
        self.watcher.stop()
        self.ns_context.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="saves per loop, alternating (part 1)")
    parser.add_argument("--saves", type=int, default=20, help="live saves in a row (part 2)")
    args = parser.parse_args()
    if subprocess.run(["kubectl", "get", "--raw", "/readyz"], capture_output=True).returncode != 0:
        raise SystemExit("no reachable cluster: export KUBECONFIG=...")
    base = os.environ.get("BASE_IMAGE", "k8s-local/busybox:1")
    with tempfile.TemporaryDirectory() as tmp:
        live, rebuild = Loop(Path(tmp), "live", True, base), Loop(Path(tmp), "rebuild", False, base)
        try:
            bench(live, rebuild, args.rounds, args.saves)
        finally:
            live.close()
            rebuild.close()


def spans(rows: list[tuple[float, float, float]]) -> str:
    """p50 of each part of a live save: save → the sync began, the sync (kubectl exec into every container), the
    sync's end → the last container's reader saw the text (the readers look every 50 ms)."""
    before, sync, after = (statistics.median(part) for part in zip(*((b, s, t - b - s) for b, s, t in rows), strict=True))
    return f"where (p50): save → sync starts {before:.2f} s, sync {sync:.2f} s, sync ends → seen {after:.2f} s"


def bench(live: Loop, rebuild: Loop, rounds: int, saves: int) -> None:
    live_times, rebuild_times = [], []
    for k in range(rounds):
        live_times.append(live.save(f"live {k} {time.time()}"))
        rebuild_times.append(rebuild.save_and_roll(f"rebuild {k} {time.time()}"))
    lp50, lp95, rp50 = percentile(live_times, 50), percentile(live_times, 95), statistics.median(rebuild_times)
    print(f"1. save → new content in both web replicas (checked inside each container), {rounds} saves each, alternating:")
    print(f"   live update: p50 {lp50:.2f} s, p95 {lp95:.2f} s (min {min(live_times):.2f}, max {max(live_times):.2f})"
          "   (targets ≤ 0.8 s, ≤ 1.2 s)")
    print(f"   {spans(live.spans)}")
    print(f"   rebuild loop: p50 {rp50:.2f} s (min {min(rebuild_times):.2f}, max {max(rebuild_times):.2f})")
    print(f"   ratio live/rebuild (p50): {lp50 / rp50:.3f}   (target ≤ 0.15)")

    before, live.spans = pod_state(live.ns), []
    more = [live.save(f"burst {k} {time.time()}") for k in range(saves)]
    time.sleep(2)
    after = pod_state(live.ns)
    print(f"2. {saves} live saves in a row: p50 {percentile(more, 50):.2f} s, p95 {percentile(more, 95):.2f} s; "
          f"pods replaced {len(before[0] - after[0])}, container restarts {after[1] - before[1]}   (target 0, 0)")
    print(f"   {spans(live.spans)}")

    # On the rebuild loop's app (its pods run exactly the deployed image): a new input hash, the same image.
    # A comment in the Dockerfile: watched (app.watch.paths), part of the input hash, in no layer. (A new notes.txt
    # at the app's root is not watched there; `inv up` after one is the same case: tests/test_image_identical.py.)
    seen = len(rebuild.watcher.lines)
    before = pod_state(rebuild.ns)
    with (rebuild.app / "Dockerfile").open("a") as dockerfile:
        dockerfile.write(f"# not in the image {time.time()}\n")
    _, _, line = rebuild.watcher.wait_for(r"── cycle \d+ (ready|failed)", 300, seen)
    time.sleep(3)
    after = pod_state(rebuild.ns)
    kept = [text for _, text in rebuild.watcher.lines[seen:] if "nothing to roll out" in text]
    print(f"3. a change to a file the image does not contain (a Dockerfile comment): {line.strip()}")
    print(f"   {kept[0].strip() if kept else 'the deployed reference was not kept'}")
    print(f"   pods replaced {len(before[0] - after[0])}   (target 0)")


if __name__ == "__main__":
    main()
