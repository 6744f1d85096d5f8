"""Images: content-tagged builds that skip when nothing changed, delivery into the cluster, and the
project's images on the Docker daemon (list, remove, prune, a throwaway shell, `kubectl set image`)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from typing import Any, NamedTuple

from invoke import Collection, Context

from devloop import shell as funnel
from devloop.core import config
from devloop.core import images as core
from devloop.core.errors import KitError, tail
from devloop.kit import STATE_DIR, App, kit_task, print_table

DAEMON_DOWN = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")
LABEL = "devloop.app"  # every build carries devloop.app=<app name> and devloop.image=<image name>
DEFAULT_SOCKET = "/var/run/docker.sock"


class Planned(NamedTuple):
    image: config.Image
    tag: str
    build_args: dict[str, str]
    files: int

    @property
    def ref(self) -> str:
        return f"{self.image.name}:{self.tag}"


def plan(app: App, image: config.Image) -> Planned:
    """The tag this image's inputs give, computed without Docker (file digests cached under .kit/)."""
    def compute() -> Planned:
        core.check_name(image.name)
        if not image.context.is_dir():
            raise KitError(f"image {image.name}: build context {image.context} does not exist or is not a folder",
                           hint=f"fix app.images.{image.name}.context in invoke.yaml (relative to {app.settings.root})",
                           code=2)
        if not image.dockerfile.is_file():
            raise KitError(f"image {image.name}: Dockerfile {image.dockerfile} not found",
                           hint=f"fix app.images.{image.name}.dockerfile (relative to its context {image.context})", code=2)
        args = core.resolve_build_args(image.dockerfile.read_text(encoding="utf-8"), image.build_args, os.environ, image.name)
        for key, value in args.items():  # e.g. NPM_TOKEN: masked in the echoed `docker build`
            if funnel.looks_secret(key):
                funnel.register_secret(value)
        dry = bool(app.c.config.run.dry)  # --dry writes nothing: the cache is only read
        state = (app.settings.root / STATE_DIR if dry else app.state_dir).resolve()
        skip = [os.path.relpath(state, image.context)] if state.is_relative_to(image.context) else []
        import hashlib

        cache_name = hashlib.sha1(str(image.context).encode()).hexdigest()[:12]
        cache = core.DigestCache(state / f"digests-{cache_name}.json", write=not dry)
        inputs = core.build_inputs(image.context, image.dockerfile, args, image.target, cache=cache, skip=skip)
        core.check_tag(inputs.tag)
        if skip and not core.ignored(skip[0], core.read_dockerignore(image.context)):
            app.say(f"warning: image {image.name}: add {skip[0]}/ to {image.context / '.dockerignore'} — the kit's own "
                    "files (rendered manifests, Secrets) are in the build context, and COPY . would put them in the image")
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


def where(env: dict[str, str]) -> str:
    return "minikube's Docker daemon" if env else "the local Docker daemon"


def check_daemon_result(result: Any, during: str = "") -> None:
    text = (result.stderr or "") + (result.stdout or "")
    if any(word in text for word in DAEMON_DOWN):
        message = f"the Docker daemon stopped answering during {during}" if during else "the Docker daemon is not reachable"
        raise KitError(message, evidence=tail(text, 3),
                       hint="start Docker (sudo systemctl start docker, or Docker Desktop), or check DOCKER_HOST")


def daemon_socket(env: dict[str, str]) -> str | None:
    """The unix socket the docker CLI would talk to, when that is certain (else None: ask the CLI)."""
    host = env.get("DOCKER_HOST") or os.environ.get("DOCKER_HOST", "")
    if not host:
        if os.environ.get("DOCKER_CONTEXT"):
            return None
        config = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
        try:
            with open(config, encoding="utf-8") as handle:
                if json.load(handle).get("currentContext", "default") not in ("", "default"):
                    return None
        except (OSError, ValueError, AttributeError):
            pass
        host = f"unix://{DEFAULT_SOCKET}"
    return host[len("unix://"):] if host.startswith("unix://") else None


def ask_daemon(socket_path: str, ref: str) -> tuple[bool, str | None]:
    """GET /images/REF/json over the daemon's socket: (answered, image ID or None when it has no such image).

    The same question as `docker image inspect`, without starting the CLI (about 40 ms less per image).
    """
    import http.client
    import socket
    from urllib.parse import quote

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(socket_path)

    connection = UnixConnection("localhost", timeout=10)
    try:
        connection.request("GET", f"/images/{quote(ref, safe='/:@')}/json")
        response = connection.getresponse()
        body = response.read()
    except OSError:
        return False, None
    finally:
        connection.close()
    if response.status == 404:
        return True, None
    if response.status == 200:
        try:
            return True, str(json.loads(body)["Id"])
        except (ValueError, KeyError, TypeError):
            return False, None
    return False, None


def image_id(app: App, ref: str, env: dict[str, str] | None = None) -> str | None:
    """The image ID of ``ref`` in the daemon ``env`` points at, or None when it has no such image."""
    from invoke import MockContext

    argv = ["docker", "image", "inspect", "--format", "{{.Id}}", ref]
    socket_path = daemon_socket(env or {})
    # A MockContext answers every command from its script: asking the real daemon would go around it.
    if socket_path and not isinstance(app.c, MockContext):
        answered, found = ask_daemon(socket_path, ref)
        if answered:
            app.say(f"$ {shlex.join(argv)}    # asked over unix://{socket_path}: {found or 'no such image'}")
            return found
    result = app.run(argv, query=True, capture=True, check=False, env=env)
    if result.exited != 0:
        check_daemon_result(result)
        return None
    return str(result.stdout.strip()) or None


# -- build and deliver ---------------------------------------------------------------------------


def build_one(app: App, image: config.Image, no_cache: bool = False) -> Planned:
    planned = plan(app, image)
    env = build_env(app)
    existing = image_id(app, planned.ref, env)
    if existing and not no_cache:
        app.say(f"image {planned.ref}: up to date — {where(env)} already has this tag ({short(existing)}), and the tag "
                f"is the hash of the Dockerfile, build args and {planned.files} context file(s)")
        return planned
    app.say(f"image {planned.ref}: building in {where(env)} ({planned.files} context files)")
    argv = ["docker", "build", "--tag", planned.ref, "--file", str(image.dockerfile),
            "--label", f"{LABEL}={app.settings.name}", "--label", f"devloop.image={image.name}"]
    for key, value in sorted(planned.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if image.target:
        argv += ["--target", image.target]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(image.context))
    result = app.run(argv, check=False, env=env)
    if result.exited != 0:
        check_daemon_result(result, during=f"the build of {planned.ref}: docker tags only a finished build, "
                                           f"so {planned.ref} was not made")
        step, output = core.build_failure((result.stdout or "") + "\n" + (result.stderr or ""))
        raise KitError(f"image {image.name}: docker build failed" + (f" at {step}" if step else ""), evidence=output,
                       hint="fix the failing step; the previous image and its tag are untouched", code=1)
    return planned


def short(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def deliver_one(app: App, planned: Planned) -> None:
    """Put the built image where the cluster's node runs it, the cheapest way the provider allows."""
    provider = app.settings.cluster.provider
    ref = deliver_ref(app, planned)
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
        push(app, planned, ref)


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
    after = core.parse_node_images(app.run(listing_argv, query=True, capture=True).stdout)
    state = core.node_state(after, ref, local_id or "")
    if state == "missing":
        raise KitError(f"`minikube image load` finished but the node does not list {ref}",
                       evidence="\n".join(sorted(after)) or "(no images listed)",
                       hint=f"run `minikube -p {app.settings.cluster.minikube.profile} image load {ref}` by hand to see why; "
                            "then inv image.load")
    if state == "different":
        raise KitError(f"the node still has an older {ref} (image ID {short(after[core.qualified_ref(ref)])}, "
                       f"local {short(local_id or '')})",
                       hint=f"remove it from the node (minikube image rm {ref}) and run inv image.load again")
    app.say(f"image {ref}: on the node now (minikube image ls: image ID {short(local_id or '')})")


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


def push(app: App, planned: Planned, ref: str) -> None:
    registry = app.settings.cluster.registry
    if not registry:
        raise KitError("provider is 'registry' but app.cluster.registry is not set, so there is nowhere to push",
                       hint="set app.cluster.registry (e.g. registry.example.com/team) in invoke.yaml, or "
                            "INVOKE_APP_CLUSTER_REGISTRY=... in .env", code=2)
    app.say(f"image {ref}: pushing to {registry} (layers the registry already has are not sent)")
    app.run(["docker", "tag", planned.ref, ref])
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


def selected(app: App, name: str | None) -> list[config.Image]:
    return [app.settings.image(name)] if name else list(app.settings.images)


# -- the project's images on the daemon ---------------------------------------------------------


def project_images(app: App, env: dict[str, str], by_name: bool = True) -> list[core.LocalImage]:
    """Images the kit built for this app (by label) and, with ``by_name``, any tag of a configured name."""
    def listed(*filters: str) -> list[core.LocalImage]:
        result = app.run(["docker", "image", "ls", *filters, "--format", "{{json .}}"], query=True, capture=True,
                         check=False, env=env)
        if result.exited != 0:
            check_daemon_result(result)
            raise KitError("docker image ls failed", evidence=tail(result.stderr or ""))
        return core.parse_image_list(result.stdout)

    found = listed("--filter", f"label={LABEL}={app.settings.name}")
    if by_name and app.settings.images:
        found += listed(*(f"--filter=reference={i.name}" for i in app.settings.images))
    return core.newest_first(found)


def current_refs(app: App) -> tuple[set[str], str]:
    """The refs the inputs give now (kept by prune, marked by ls); a problem computing them is reported, not fatal."""
    refs: set[str] = set()
    problem = ""
    for image in app.settings.images:
        try:
            planned = plan(app, image)
        except KitError as exc:
            problem = f"{image.name}: {exc.message}"
            continue
        refs |= {planned.ref, deliver_ref(app, planned)}
    return refs, problem


def pick_one(app: App, name: str | None) -> config.Image:
    if name or len(app.settings.images) == 1:
        return app.settings.image(name) if name else app.settings.images[0]
    known = ", ".join(i.name for i in app.settings.images) or "none configured"
    raise KitError(f"say which image: --name one of {known}", hint="e.g. inv image.shell --name "
                   f"{app.settings.images[0].name if app.settings.images else 'web'}", code=2)


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


@kit_task(help={"env": "environment whose settings to use"})
def ls(c: Context, env: str | None = None) -> None:
    """List the project's images and tags, newest first."""
    app = App.load(c, env)
    daemon = build_env(app)
    found = [i for i in project_images(app, daemon) if not i.dangling]
    current, problem = current_refs(app)
    if not found:
        app.say(f"no images of {app.settings.name} in {where(daemon)} yet: inv image.build makes them")
        return
    rows = [["IMAGE", "TAG", "IMAGE ID", "CREATED", "SIZE", ""]]
    rows += [[i.repository, i.tag, i.id[:12], i.since, i.size, "current" if i.ref in current else ""] for i in found]
    print_table(rows)
    if problem:
        app.say(f"the current tag is unknown ({problem})")


@kit_task(help={"tag": "remove this tag of the project's images (of --name only, if given)",
                "name": "remove tags of this image only; without --tag, every tag of it",
                "env": "environment whose settings to use"})
def rm(c: Context, tag: str | None = None, name: str | None = None, env: str | None = None) -> None:
    """Remove tags of the project's images."""
    app = App.load(c, env)
    if not tag and not name:
        raise KitError("say what to remove: --tag T (of every project image), --name IMG (every tag of it), or both",
                       hint="inv image.ls shows the tags; inv image.prune removes all but the newest", code=2)
    if tag:
        core.check_tag(tag)
    images = selected(app, name)
    daemon = build_env(app)
    found = [i for i in project_images(app, daemon) if not i.dangling]
    names = {i.name for i in images}
    if app.settings.cluster.provider == "registry" and app.settings.cluster.registry:
        names |= {f"{app.settings.cluster.registry}/{i.name}" for i in images}
    doomed = [i for i in found if i.repository in names and (not tag or i.tag == tag)]
    if not doomed:
        what = f"tag {tag!r}" if tag else "tags"
        have = ", ".join(i.ref for i in found if i.repository in names) or "none"
        raise KitError(f"no {what} of {', '.join(sorted(names))} in {where(daemon)} (there: {have})",
                       hint="inv image.ls lists the project's images and tags", code=1)
    remove(app, doomed, daemon)


@kit_task(help={"keep": "how many of the newest tags of each image to keep (default app.image_keep); "
                        "the current tag is always kept",
                "env": "environment whose settings to use"})
def prune(c: Context, keep: int | None = None, env: str | None = None) -> None:
    """Remove old tags of the project's images."""
    app = App.load(c, env)
    count = keep_count(keep if keep is not None else c.config.get("app", {}).get("image_keep", 3))
    daemon = build_env(app)
    current, problem = current_refs(app)
    if problem:
        raise KitError(f"cannot tell the current tag, so nothing is pruned: {problem}",
                       hint="fix that first (inv image.tag shows the tags the inputs give)", code=2)
    decided = core.prune_plan(project_images(app, daemon, by_name=False), count, current)
    for image, why in decided.keep:
        app.say(f"  keep    {image.ref}  ({image.since}; {why})")
    for image, why in decided.remove:
        app.say(f"  remove  {image.ref}  ({image.since}; {why})")
    if not decided.remove:
        app.say(f"nothing to prune: {len(decided.keep)} image(s) of {app.settings.name}, all kept")
        return
    remove(app, [image for image, _ in decided.remove], daemon)


def keep_count(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise KitError(f"--keep {value!r} is not a whole number", hint="write e.g. --keep 3", code=2) from None


def remove(app: App, doomed: list[core.LocalImage], daemon: dict[str, str]) -> None:
    """One `docker image rm`; tags a container still uses are kept and named, anything else fails."""
    result = app.run(["docker", "image", "rm", *(i.ref for i in doomed)], check=False, env=daemon)
    if app.c.config.run.dry:
        return
    if result.exited == 0:
        app.say(f"removed {len(doomed)} image tag(s) from {where(daemon)}")
        return
    check_daemon_result(result)
    stderr = result.stderr or ""
    in_use = core.removal_conflicts(stderr)
    other = [line for line in stderr.splitlines() if line.strip() and "conflict: unable to" not in line]
    for ref in in_use:
        app.say(f"  kept    {ref}: a container uses it (stop it, e.g. inv down, then run this again)")
    if other:
        raise KitError("docker image rm failed", evidence=tail("\n".join(other), 8),
                       hint="inv image.ls shows what is there")
    app.say(f"removed {len(doomed) - len(in_use)} image tag(s); {len(in_use)} kept because a container uses them")


@kit_task(help={"name": "which image (default: the only one in app.images)",
                "command": "run this (with sh -c) instead of an interactive shell",
                "env": "environment whose settings to use"})
def shell(c: Context, name: str | None = None, command: str | None = None, env: str | None = None) -> None:
    """Run a throwaway container of the current image."""
    app = App.load(c, env)
    planned = build_one(app, pick_one(app, name))
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = ["docker", "run", "--rm", "-i", *(["-t"] if tty else []), "--entrypoint", "sh", planned.ref]
    argv += ["-c", command] if command else []
    result = app.run(argv, env=build_env(app), check=False, interactive=tty)
    if result.exited != 0:
        check_daemon_result(result)
        raise KitError(f"the container of {planned.ref} exited with status {result.exited}",
                       evidence="" if tty else tail(result.stderr or ""), code=result.exited if result.exited < 126 else 1)


@kit_task(help={"name": "roll out only this image (default: every image in app.images)",
                "no_build": "do not build or deliver; point the workloads at the current tags as they are",
                "timeout": "seconds to wait for readiness in all (default app.timeout)",
                "env": "environment (dev, staging, qa…); default app.env",
                "allow_context": "act even if the kube context is not in app.cluster.allowed_contexts"})
def rollout(c: Context, name: str | None = None, no_build: bool = False, timeout: int | None = None,
            env: str | None = None, allow_context: bool = False) -> None:
    """Build, deliver, kubectl set image, wait until ready."""
    from devloop import rollout as waiting
    from devloop.core import kube

    app = App.load(c, env, allow_context)
    app.context()  # the guard runs before anything is built
    chosen = selected(app, name)
    for image in chosen:
        planned = plan(app, image) if no_build else build_one(app, image)
        if not no_build:
            deliver_one(app, planned)
    refs = {i.name: deliver_ref(app, plan(app, i)) for i in chosen}
    wanted = [kube.normalise_workload(w) for w in app.settings.workloads]
    result = app.run(app.kubectl("get", "deployments,statefulsets,daemonsets", "-o", "json"), query=True, capture=True,
                     check=False)
    if result.exited != 0:
        raise KitError("cannot read the workloads from the cluster", evidence=result.stderr,
                       hint="check the cluster is up: inv doctor")
    live = json.loads(result.stdout or "{}").get("items", [])
    changes, missing = core.set_image_plan(live, refs, wanted)
    for workload in missing:
        app.say(f"warning: {workload} (app.workloads) is not in the cluster: skipped")
    if not changes:
        where_ns = app.settings.namespace or "the context's namespace"
        raise KitError(f"no Deployment, StatefulSet or DaemonSet in {where_ns} runs {', '.join(sorted(refs))}",
                       hint="apply the manifests first (inv up, or kubectl apply -f k8s/); check app.workloads", code=1)
    for change in changes:
        for container in change.pull_always if app.settings.cluster.provider != "registry" else []:
            app.say(f"warning: {change.workload} container {container} has imagePullPolicy: Always, so the node will try "
                    "a registry for a locally built image: set imagePullPolicy: IfNotPresent in its manifest")
        if change.changes:
            app.run(app.kubectl(*change.argv()))
        else:
            app.say(f"{change.workload}: already runs {', '.join(sorted(set(refs.values())))}")
    waiting.wait_ready(app, [change.workload for change in changes], timeout)


ns = Collection("image")
for _t in (build, load, tag, ls, rm, prune, shell, rollout):
    ns.add_task(_t)
