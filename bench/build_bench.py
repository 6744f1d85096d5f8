"""`inv image.build` when nothing changed, on a build context of 2,000 files, beside `docker image inspect`.

Prints:
  1. no-op `inv image.build` wall time and `docker image inspect` of the same tag, run alternately
     N times each: medians and their ratio (targets: <= 0.5 s and <= 3x);
  2. where the kit's own time goes, in-process: hashing the context with and without the digest
     cache, and the existence check through the Docker API (the docker SDK) against spawning `docker image inspect`;
  3. a one-file change rebuilds once; a file .dockerignore excludes triggers no build;
  4. delivery when unchanged moves 0 bytes: no build/load/push command is echoed, the image ID is
     the same before and after, and kind (stand-in on PATH) reports the image already on every node.
Needs a reachable Docker daemon. Usage: .venv/bin/python bench/build_bench.py [N]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INV = str(Path(sys.executable).with_name("inv"))
FILES = 2000
sys.path.insert(0, str(REPO))


def make_app(root: Path, name: str) -> None:
    rng = random.Random(7)
    for i in range(FILES):
        folder = root / "src" / f"d{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.rb").write_text(f"# file {i}\n" + "x" * rng.randint(200, 4000) + "\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")
    (root / ".dockerignore").write_text(".kit/\n**/*.md\ntasks\ntasks.py\ninvoke.yaml\n")
    (root / "invoke.yaml").write_text(
        f"app:\n  name: {name}\n  images:\n    {name}: {{}}\n  cluster:\n    provider: docker\n    ip: 127.0.0.1\n")
    (root / "tasks.py").write_text("from devloop import namespace\n\nns = namespace()\n")


def inv(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "FAKE_"))}
    full.update(env or {})
    start = time.perf_counter()
    result = subprocess.run([INV, *args], cwd=root, env=full, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"inv {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return elapsed, result


def docker_inspect(ref: str) -> float:
    start = time.perf_counter()
    subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], check=True, capture_output=True)
    return time.perf_counter() - start


def image_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True,
                          text=True).stdout.strip()


def builds(result: subprocess.CompletedProcess[str]) -> int:
    return sum(1 for line in result.stderr.splitlines() if line.startswith("$ docker build "))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def in_process(root: Path, ref: str, runs: int) -> None:
    from devloop.core import images as core
    from devloop.docker_api import ask_image_id

    def hashing(cache: core.DigestCache | None) -> float:
        start = time.perf_counter()
        core.build_inputs(root, root / "Dockerfile", {}, cache=cache)
        return time.perf_counter() - start

    cache_file = root / ".kit" / "bench-digests.json"
    core.build_inputs(root, root / "Dockerfile", {}, cache=core.DigestCache(cache_file))  # fill it
    cold = statistics.median(hashing(None) for _ in range(runs))
    warm = statistics.median(hashing(core.DigestCache(cache_file)) for _ in range(runs))
    ask_image_id("unix:///var/run/docker.sock", ref)  # the SDK's one-time import is not part of each check
    sock = statistics.median(_timed(lambda: ask_image_id("unix:///var/run/docker.sock", ref)) for _ in range(runs))
    cli = statistics.median(docker_inspect(ref) for _ in range(runs))
    print("where the kit's time goes (in-process medians):")
    print(f"  hash {FILES} files, reading every file:        {ms(cold)}")
    print(f"  hash {FILES} files, digest cache (.kit/):       {ms(warm)}")
    print(f"  existence check through the Docker API:      {ms(sock)}")
    print(f"  existence check by spawning docker inspect:  {ms(cli)}")


def _timed(work) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    name = f"kit-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        root.mkdir()
        make_app(root, name)
        try:
            _, first = inv(root, "image.build")
            tag = next(line.split(f"{name}:")[1].split()[0] for line in first.stderr.splitlines()
                       if line.startswith("$ docker build "))
            ref = f"{name}:{tag}"
            inv(root, "image.build")  # warm the file cache and the digest cache
            kit_times, docker_times = [], []
            for _ in range(runs):
                elapsed, result = inv(root, "image.build")
                assert builds(result) == 0, result.stderr
                kit_times.append(elapsed)
                docker_times.append(docker_inspect(ref))
            k, d = statistics.median(kit_times), statistics.median(docker_times)
            print(f"no-op image.build, {FILES} context files, {runs} runs each, alternating")
            print(f"  inv image.build:            median {ms(k)}  (min {ms(min(kit_times))})   target <= 500 ms")
            print(f"  docker image inspect (tag): median {ms(d)}  (min {ms(min(docker_times))})")
            print(f"  ratio:                      {k / d:.1f}x   target <= 3x")
            bare = statistics.median(_timed(lambda: subprocess.run([INV, "--list"], cwd=root, capture_output=True))
                                     for _ in range(5))
            print(f"  for scale: inv --list in the same folder (start-up only): median {ms(bare)}")
            in_process(root, ref, max(5, runs // 2))

            (root / "src" / "d00" / "f0000.rb").write_text("# changed\n")
            _, changed = inv(root, "image.build")
            _, after = inv(root, "image.build")
            (root / "src" / "NOTES.md").write_text("ignored by .dockerignore\n")
            _, ignored = inv(root, "image.build")
            print("rebuilds:")
            print(f"  one file changed:        {builds(changed)} build(s), then {builds(after)} on the next run")
            print(f"  a .dockerignored file:   {builds(ignored)} build(s)")

            current = next(line.split(f"{name}:")[1].split()[0] for line in changed.stderr.splitlines()
                           if line.startswith("$ docker build "))
            ref = f"{name}:{current}"
            before = image_id(ref)
            _, load = inv(root, "image.load")
            moving = [line for line in load.stderr.splitlines()
                      if line.startswith("$ ") and any(w in line for w in ("docker build", "image load", "docker push",
                                                                           "docker save", "kind load"))]
            print("delivery when unchanged (provider docker):")
            print(f"  commands that move bytes: {len(moving)}; image ID before {before[7:19]}, after {image_id(ref)[7:19]}")
            print("  " + next(line for line in load.stderr.splitlines() if "nothing to move" in line))
            kind_env = {"PATH": f"{REPO / 'tests' / 'fakes'}{os.pathsep}{os.environ['PATH']}",
                        "INVOKE_APP_CLUSTER_PROVIDER": "kind", "FAKE_KIND_STATE": str(Path(tmp) / "kind"),
                        "FAKE_KIND_LOG": str(Path(tmp) / "kind.log")}
            inv(root, "image.load", env=kind_env)
            _, again = inv(root, "image.load", env=kind_env)
            print("delivery when unchanged (provider kind, stand-in):")
            print("  " + next(line for line in again.stderr.splitlines() if "0 bytes moved" in line))
            print(f"  kind calls: {[json.loads(line)[:2] for line in (Path(tmp) / 'kind.log').read_text().splitlines()]}")
        finally:
            ids = subprocess.run(["docker", "image", "ls", "-q", "--filter", f"label=devloop.app={name}"],
                                 capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(["docker", "image", "rm", "-f", *sorted(set(ids))], capture_output=True)


if __name__ == "__main__":
    main()
