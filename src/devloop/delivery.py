"""Delivery: getting a built image to where the cluster's node runs it — built in minikube's own Docker daemon,
`minikube image load`, `kind load docker-image`, or a registry push — and moving nothing when it is there; and which
reference the cluster runs (the deployed one while the built image is the same)."""

from __future__ import annotations

import re
from typing import Any, Protocol

from devloop import livesync, shell
from devloop.core import config, render
from devloop.core import images as core
from devloop.core.errors import KitError, tail
from devloop.docker_api import check_daemon_result, image_id, short
from devloop.kit import STATE_DIR, App


class Built(Protocol):
    """What delivery needs of a planned build: its image, the local reference it is tagged with, and whether this run
    builds it (under --dry: would build it)."""

    @property
    def image(self) -> config.Image: ...

    @property
    def ref(self) -> str: ...

    @property
    def built(self) -> bool: ...


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
    """The Docker daemon images are built against: minikube's own when its runtime is docker (nothing to move)."""
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


def deliver_ref(app: App, planned: Built) -> str:
    """The reference the cluster runs: registry-qualified when the provider pushes."""
    registry = app.settings.cluster.registry
    if app.settings.cluster.provider == "registry" and registry:
        return f"{registry}/{planned.ref}"
    return planned.ref


def run_ref(app: App, planned: Built) -> str:
    """The reference the cluster is to run: the deployed one when it names the same image (a new input hash but
    identical content, e.g. a changed file the Dockerfile never copies: nothing to roll out), else deliver_ref."""
    new = deliver_ref(app, planned)
    return str(app.fact(f"plan:run:{new}", lambda: choose_run_ref(app, planned, new)))


def choose_run_ref(app: App, planned: Built, new: str) -> str:
    old = deployed_refs(app).get(render.image_repository(new))
    if not old or old == new:
        return new
    env = build_env(app)
    new_id = image_id(app, planned.ref, env)  # with a registry: the local tags, the old one as it was pushed
    local = app.settings.cluster.provider != "registry"  # a registry may have it, pushed from another machine
    if new_id is None and local and not (planned.built and shell.is_dry(app.c)):  # a --dry up would have built it
        return unbuilt(app, planned, old)
    if planned.image.name in livesync.live_marks(app).values():
        return new  # containers carry synced files: only a rollout brings them back to the image as built
    if new_id is None or image_id(app, old, env) != new_id:
        return new
    app.say(f"image {planned.image.name}: same content as the deployed {old} (image ID {short(new_id)}): "
            "nothing to roll out")
    return old


def unbuilt(app: App, planned: Built, old: str) -> str:
    """The sources give a tag that was never built (an apply without a build after a code change): keep running the
    deployed image rather than roll pods onto one that does not exist."""
    app.warn(f"image {planned.image.name}: {planned.ref} (the sources as they are now) is not built: keeping "
            f"the deployed {old}; `inv up` builds and rolls out the change")
    return old


def deployed_refs(app: App, env: str | None = None) -> dict[str, str]:
    """Repository -> the reference last applied (.kit/rendered-<env>.yaml); empty when there is none to read."""
    def compute() -> dict[str, str]:
        path = app.settings.root / STATE_DIR / f"rendered-{env or app.settings.env}.yaml"
        try:
            return core.deployed_refs(render.parse([render.Source(path, path.read_text(encoding="utf-8"))]))
        except (OSError, UnicodeDecodeError, KitError):
            return {}

    return dict(app.fact(f"plan:deployed:{env or app.settings.env}", compute))  # "plan:": read again each watch cycle


def applied_envs(app: App) -> list[str]:
    """The configured environments this checkout has applied (a .kit/rendered-<env>.yaml each)."""
    folder = app.settings.root / STATE_DIR
    found = {p.name.removeprefix("rendered-").removesuffix(".yaml") for p in folder.glob("rendered-*.yaml")}
    return sorted(found & set(app.settings.environments))


# -- delivery ------------------------------------------------------------------------------------


def deliver_one(app: App, planned: Built) -> None:
    """Put the built image where the cluster's node runs it, the cheapest way the provider allows; also the
    deployed reference the cluster keeps running when it is the same image (its node may have been replaced)."""
    ref = deliver_ref(app, planned)
    put(app, planned.ref, ref)
    running = run_ref(app, planned)
    if running != ref and moves_images(app):
        put(app, planned.ref, running)


def moves_images(app: App) -> bool:
    """Whether the cluster's node gets images by a load or a push (not by sharing the daemon they are built in)."""
    provider = app.settings.cluster.provider
    return provider in ("kind", "registry") or (provider == "minikube" and node_runtime(app) != "docker")


def put(app: App, local_ref: str, ref: str) -> None:
    """Put ``local_ref`` where the cluster's node runs it as ``ref``."""
    provider = app.settings.cluster.provider
    # The wait of this run then retries pods that failed to pull it before it was there (rollout.wait_ready).
    # Recorded first: a delivery that fails raises, and nothing waits.
    app.fact("delivered", set).add(ref)
    if provider == "minikube":
        runtime = node_runtime(app)
        if runtime == "docker":
            app.say(f"image {ref}: nothing to move — built directly in minikube's Docker daemon (runtime docker): 0 bytes")
            return
        load_into_minikube(app, ref, runtime)
    elif provider == "kind":
        load_into_kind(app, ref)
    elif provider == "docker":
        found = image_id(app, ref)
        if found is None and not app.c.config.run.dry:
            raise KitError(f"image {ref} is not in the local Docker daemon", hint="build it: inv image.build")
        has = f", which has it (image ID {short(found)})" if found else ""
        app.say(f"image {ref}: nothing to move — the cluster runs on this Docker daemon (provider docker){has}: 0 bytes")
    else:
        push(app, local_ref, ref)


def load_into_minikube(app: App, ref: str, runtime: str) -> None:
    """`minikube image load` unless the node already lists this ref with the same image ID; then verify."""
    local_id = image_id(app, ref)
    if local_id is None and not app.c.config.run.dry:
        raise KitError(f"image {ref} is not in the local Docker daemon, so there is nothing to load",
                       hint="build it first: inv image.build")
    listing_argv = app.minikube("image", "ls", "--format", "json")
    before = app.run(listing_argv, query=True, capture=True, check=False)
    state = core.node_state(core.parse_node_images(before.stdout), ref, local_id or "")
    if state == "same":
        app.say(f"image {ref}: 0 bytes moved — `minikube image ls` shows the node already has it with the same "
                f"image ID {short(local_id or '')} (runtime {runtime})")
        return
    why = "has this tag with a different image ID" if state == "different" else "does not have it"
    app.say(f"image {ref}: loading into minikube — the node (runtime {runtime}, which cannot use the host's daemon) {why}")
    result = app.run(app.minikube("image", "load", ref), check=False)
    if app.c.config.run.dry:
        return
    if result.exited != 0:
        raise KitError(f"`minikube image load {ref}` failed (exit {result.exited})",
                       evidence=tail((result.stderr or "") + (result.stdout or ""), 8),
                       hint="check `minikube status` and the node's free disk (minikube ssh -- df -h); "
                            "`minikube image load` by hand shows the full log")
    verify_minikube_load(app, ref, local_id or "", app.run(listing_argv, query=True, capture=True))


def verify_minikube_load(app: App, ref: str, local_id: str, listing: Any) -> None:
    """After `minikube image load`: the node must list ``ref`` with the local image ID."""
    after = core.parse_node_images(listing.stdout)
    state = core.node_state(after, ref, local_id)
    if state == "missing":
        raise KitError(f"`minikube image load` finished but the node does not list {ref}",
                       evidence="\n".join(sorted(after)) or "(no images listed)",
                       hint=f"run `minikube -p {app.settings.cluster.minikube.profile} image load {ref}` by hand to see why; "
                            "then inv image.load")
    if state == "different":
        raise KitError(f"the node still has an older {ref} (image ID {short(after[core.qualified_ref(ref)])}, "
                       f"local {short(local_id)})",
                       hint=f"remove it from the node (minikube image rm {ref}) and run inv image.load again")
    app.say(f"image {ref}: on the node now (minikube image ls: image ID {short(local_id)})")


def load_into_kind(app: App, ref: str) -> None:
    """`kind load docker-image`, which itself compares image IDs per node and loads only where missing."""
    name = app.settings.cluster.kind_name
    result = app.run(["kind", "load", "docker-image", ref, "--name", name], check=False, capture=True)
    words = (result.stderr or "") + (result.stdout or "")
    if result.exited != 0:
        missing_cluster = "no nodes found for cluster" in words
        raise KitError(f"kind could not load {ref} into cluster {name!r}", evidence=tail(words, 6),
                       hint=f"create it (kind create cluster --name {name}) or set app.cluster.kind_name"
                            if missing_cluster else "build it first (inv image.build) and check `kind get clusters`")
    if "already present on all nodes" in words:
        app.say(f"image {ref}: 0 bytes moved — kind found the same image ID on every node of {name!r}")
    elif not app.c.config.run.dry:
        loaded = re.findall(r'not yet present on node "([^"]+)"', words)
        app.say(f"image {ref}: loaded into kind cluster {name!r} ({', '.join(loaded) or 'its nodes'})")


def push(app: App, local_ref: str, ref: str) -> None:
    """Tag ``local_ref`` as the registry-qualified ``ref`` and push it (the registry skips layers it has)."""
    registry = app.settings.cluster.registry
    if not registry:
        raise KitError("provider is 'registry' but app.cluster.registry is not set, so there is nowhere to push",
                       hint="set app.cluster.registry (e.g. registry.example.com/team) in invoke.yaml, or "
                            "INVOKE_APP_CLUSTER_REGISTRY=... in .env", code=2)
    app.say(f"image {ref}: pushing to {registry} (layers the registry already has are not sent)")
    app.run(["docker", "tag", local_ref, ref])
    result = app.run(["docker", "push", ref], check=False)
    if result.exited != 0:
        words = (result.stderr or "") + (result.stdout or "")
        check_daemon_result(result)
        denied = any(w in words.lower() for w in ("denied", "unauthorized", "authentication required"))
        host = registry.split("/")[0]
        raise KitError(f"docker push to {registry} failed" + (": access denied" if denied else ""),
                       evidence=tail(words, 6),
                       hint=f"log in (docker login {host}) with an account that may push to {registry}" if denied else
                            f"check that {host} is reachable and app.cluster.registry is right")
