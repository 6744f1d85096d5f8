"""Images: content-tagged builds that skip when nothing changed, and delivery into the cluster."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from invoke import Collection, Context

from tasks.core import images as core
from tasks.core.config import Image
from tasks.core.errors import KitError, tail
from tasks.kit import App, kit_task

DAEMON_DOWN = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")


@dataclass(frozen=True)
class Planned:
    image: Image
    tag: str
    build_args: dict[str, str]
    files: int

    @property
    def ref(self) -> str:
        return f"{self.image.name}:{self.tag}"


def plan(app: App, image: Image) -> Planned:
    """The tag this image's inputs give, computed without Docker."""
    def compute() -> Planned:
        core.check_name(image.name)
        if not image.dockerfile.is_file():
            raise KitError(f"image {image.name}: Dockerfile {image.dockerfile} not found",
                           hint=f"fix app.images.{image.name}.dockerfile (relative to its context {image.context})", code=2)
        args = core.resolve_build_args(image.dockerfile.read_text(encoding="utf-8"), image.build_args, os.environ, image.name)
        inputs = core.build_inputs(image.context, image.dockerfile, args, image.target)
        core.check_tag(inputs.tag)
        return Planned(image, inputs.tag, args, len(inputs.files))

    return app.fact(f"plan:{image.name}", compute)


def built_refs(app: App) -> dict[str, str]:
    """Image name in manifests -> the reference the cluster runs (registry-qualified when pushing)."""
    return {p.image.name: deliver_ref(app, p) for p in (plan(app, i) for i in app.settings.images)}


def deliver_ref(app: App, planned: Planned) -> str:
    registry = app.settings.cluster.registry
    if app.settings.cluster.provider == "registry" and registry:
        return f"{registry}/{planned.ref}"
    return planned.ref


# -- where images live -------------------------------------------------------------------------


def node_runtime(app: App) -> str:
    """The node's container runtime (docker, containerd, cri-o), read from the node object."""
    def compute() -> str:
        result = app.run(app.kubectl("get", "nodes", "-o", "jsonpath={.items[0].status.nodeInfo.containerRuntimeVersion}",
                                     namespaced=False), query=True, capture=True, check=False)
        if result.exited != 0:
            raise KitError(f"cannot reach the cluster of context {app.context()!r}", evidence=result.stderr,
                           hint="start it (inv minikube.start) or check KUBECONFIG / app.cluster.context")
        return result.stdout.strip().split("://", 1)[0] or "unknown"

    return str(app.fact("runtime", compute))


def parse_docker_env(text: str) -> dict[str, str]:
    """`minikube docker-env` output (any shell's syntax) -> the DOCKER_* variables; never eval'd."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r'^\s*(?:export\s+|set\s+-gx\s+|\$Env:|SET\s+)?(DOCKER_[A-Z_]+)\s*[= ]\s*"?([^"]*)"?;?\s*$', line)
        if match:
            env[match.group(1)] = match.group(2)
    return env


def build_env(app: App) -> dict[str, str]:
    """The Docker daemon images are built against: minikube's own when its runtime is docker."""
    def compute() -> dict[str, str]:
        cluster = app.settings.cluster
        if cluster.provider != "minikube" or node_runtime(app) != "docker":
            return {}
        result = app.run(app.minikube("docker-env", "--shell", "none"), query=True, capture=True)
        env = parse_docker_env(result.stdout)
        if "DOCKER_HOST" not in env:
            raise KitError("`minikube docker-env` gave no DOCKER_HOST", evidence=result.stdout + result.stderr,
                           hint="check `minikube status`; the docker runtime is needed for docker-env")
        return env

    return app.fact("build_env", compute)


def check_daemon_result(result: Any) -> None:
    text = (result.stderr or "") + (result.stdout or "")
    if any(word in text for word in DAEMON_DOWN):
        raise KitError("the Docker daemon is not reachable", evidence=tail(text, 3),
                       hint="start Docker (sudo systemctl start docker, or Docker Desktop), or check DOCKER_HOST")


def image_id(app: App, ref: str, env: dict[str, str] | None = None) -> str | None:
    result = app.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], query=True, capture=True, check=False,
                     env=env)
    if result.exited != 0:
        check_daemon_result(result)
        return None
    return str(result.stdout.strip()) or None


# -- build and deliver ---------------------------------------------------------------------------


def build_one(app: App, image: Image, no_cache: bool = False) -> Planned:
    planned = plan(app, image)
    env = build_env(app)
    where = "minikube's Docker daemon" if env else "the local Docker daemon"
    existing = image_id(app, planned.ref, env)
    if existing and not no_cache:
        app.say(f"image {planned.ref}: up to date — {where} already has this tag, and the tag is the hash of "
                f"the Dockerfile, build args and {planned.files} context file(s)")
        return planned
    app.say(f"image {planned.ref}: building in {where} ({planned.files} context files)")
    argv = ["docker", "build", "--tag", planned.ref, "--file", str(image.dockerfile),
            "--label", f"devloop.app={app.settings.name}", "--label", f"devloop.image={image.name}"]
    for key, value in sorted(planned.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if image.target:
        argv += ["--target", image.target]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(image.context))
    result = app.run(argv, check=False, env=env)
    if result.exited != 0:
        check_daemon_result(result)
        output = (result.stdout or "") + (result.stderr or "")
        steps = [line for line in output.splitlines() if re.match(r"^(Step \d+/\d+ :|#\d+ \[)", line)]
        failing = f" at {steps[-1].strip()}" if steps else ""
        raise KitError(f"image {image.name}: docker build failed{failing}", evidence=tail(output, 12),
                       hint="fix the failing step; the previous image and its tag are untouched", code=1)
    return planned


def deliver_one(app: App, planned: Planned) -> None:
    cluster = app.settings.cluster
    ref = deliver_ref(app, planned)
    if app.c.config.run.dry:
        app.say(f"image {ref}: delivery decided at run time (--dry)")
    if cluster.provider == "minikube":
        runtime = node_runtime(app)
        if runtime == "docker":
            app.say(f"image {ref}: nothing to move — built directly in minikube's Docker daemon (runtime docker)")
            return
        local_id = image_id(app, ref)
        listed = app.run(app.minikube("image", "ls", "--format", "table"), query=True, capture=True, check=False)
        if local_id and local_id.split(":")[-1][:12] in listed.stdout and _listed(listed.stdout, ref):
            app.say(f"image {ref}: already on the node (runtime {runtime}) — 0 bytes moved")
            return
        app.say(f"image {ref}: loading into minikube (runtime {runtime} cannot use the host's daemon)")
        app.run(app.minikube("image", "load", ref), hint="check `minikube status` and free disk space in the node "
                                                         "(minikube ssh -- df -h)")
        after = app.run(app.minikube("image", "ls"), query=True, capture=True)
        if not _listed(after.stdout, ref):
            raise KitError(f"`minikube image load` finished but the node does not list {ref}",
                           evidence=after.stdout, hint="run `minikube image load` by hand to see why; then inv image.load")
        return
    if cluster.provider == "kind":
        app.say(f"image {ref}: loading into kind cluster {cluster.kind_name!r}")
        app.run(["kind", "load", "docker-image", ref, "--name", cluster.kind_name])
        return
    if cluster.provider == "docker":
        if image_id(app, ref) is None and not app.c.config.run.dry:
            raise KitError(f"image {ref} is not in the local Docker daemon", hint="build it: inv image.build")
        app.say(f"image {ref}: nothing to move — the cluster runs on this Docker daemon (provider docker)")
        return
    if not cluster.registry:
        raise KitError("provider is 'registry' but app.cluster.registry is not set",
                       hint="set app.cluster.registry (e.g. registry.example.com/team) in invoke.yaml", code=2)
    app.say(f"image {ref}: pushing to {cluster.registry} (layers the registry already has are not sent)")
    app.run(["docker", "tag", planned.ref, ref])
    result = app.run(["docker", "push", ref], check=False)
    if result.exited != 0:
        words = (result.stderr or "") + (result.stdout or "")
        denied = any(w in words.lower() for w in ("denied", "unauthorized", "authentication required"))
        raise KitError(f"docker push to {cluster.registry} failed" + (": access denied" if denied else ""),
                       evidence=tail(words, 6),
                       hint=f"docker login {cluster.registry.split('/')[0]}" if denied else "check the registry address")


def _listed(listing: str, ref: str) -> bool:
    name, _, tag = ref.rpartition(":")
    for line in listing.splitlines():
        clean = line.strip().strip("|").strip()
        if ref in clean or (name in clean and tag in clean):
            return True
    return False


def selected(app: App, name: str | None) -> list[Image]:
    return [app.settings.image(name)] if name else list(app.settings.images)


# -- tasks --------------------------------------------------------------------------------------


@kit_task(default=True, help={"name": "build only this image (default: every image in app.images)",
                              "no_cache": "rebuild even if the tag exists, without Docker's layer cache",
                              "env": "environment whose settings to use"})
def build(c: Context, name: str | None = None, no_cache: bool = False, env: str | None = None) -> None:
    """Build images tagged by content; skip those up to date."""
    app = App.load(c, env)
    for image in selected(app, name):
        build_one(app, image, no_cache)


@kit_task(help={"name": "deliver only this image", "env": "environment whose settings to use"})
def load(c: Context, name: str | None = None, env: str | None = None) -> None:
    """Deliver built images to the cluster, or skip if there."""
    app = App.load(c, env)
    for image in selected(app, name):
        deliver_one(app, plan(app, image))


@kit_task(help={"name": "only this image", "env": "environment whose settings to use"})
def tag(c: Context, name: str | None = None, env: str | None = None) -> None:
    """Print the tag each image's current inputs give."""
    app = App.load(c, env)
    for image in selected(app, name):
        print(deliver_ref(app, plan(app, image)))


ns = Collection("image")
for _t in (build, load, tag):
    ns.add_task(_t)
