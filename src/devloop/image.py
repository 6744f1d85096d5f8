"""Image tasks: build, deliver and tag the app's images, and the project's images on the Docker daemon (list,
remove, prune, a throwaway shell, `kubectl set image`). Building, delivery and Docker access have their own modules."""

from __future__ import annotations

import json
import sys

from invoke import Collection, Context

from devloop import rollout as readiness
from devloop.build import LABEL, build_one, built_ids, forget_built, plan
from devloop.core import config, kube
from devloop.core import images as core
from devloop.core.errors import KitError, tail
from devloop.delivery import applied_envs, build_env, deliver_one, deliver_ref, deployed_refs, run_ref
from devloop.docker_api import check_daemon_result, where
from devloop.kit import App, kit_task, print_table


def selected(app: App, name: str | None) -> list[config.Image]:
    return [app.settings.image(name)] if name else list(app.settings.images)


# -- the project's images on the daemon ---------------------------------------------------------


def project_images(app: App, env: dict[str, str], by_name: bool = True, noted: list[str] | None = None) -> list[core.LocalImage]:
    """Images the kit built for this app (noted in .kit/built-images, or labelled by earlier versions of the kit)
    and, with ``by_name``, any tag of a configured name. ``noted``: the notes (default: read them)."""
    def listed(*filters: str) -> list[core.LocalImage]:
        result = app.run(["docker", "image", "ls", *filters, "--format", "{{json .}}"], query=True, capture=True,
                         check=False, env=env)
        if result.exited != 0:
            check_daemon_result(result)
            raise KitError("docker image ls failed", evidence=tail(result.stderr or ""))
        return core.parse_image_list(result.stdout)

    found = listed("--filter", f"label={LABEL}={app.settings.name}")
    noted = built_ids(app) if noted is None else noted
    if noted:
        found += core.built_here(listed(), noted, repositories(app))
    if by_name and app.settings.images:
        found += listed(*(f"--filter=reference={i.name}" for i in app.settings.images))
    return core.newest_first(found)


def repositories(app: App) -> set[str]:
    """The names the project's images have on the daemon: as configured, and registry-qualified when pushed."""
    names = {i.name for i in app.settings.images}
    if app.settings.cluster.provider == "registry" and app.settings.cluster.registry:
        names |= {f"{app.settings.cluster.registry}/{name}" for name in names}
    return names


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


def deployed_local_refs(app: App) -> set[str]:
    """The references last applied for our images in any environment, as the daemon names them (with and without
    the registry): another environment's pods may restart onto theirs."""
    names = {i.name for i in app.settings.images}
    registry = app.settings.cluster.registry
    found: set[str] = set()
    deployed = [ref for env in {app.settings.env, *applied_envs(app)} for ref in deployed_refs(app, env).values()]
    for ref in deployed:
        local = ref.removeprefix(f"{registry}/") if registry else ref
        if local.rsplit(":", 1)[0] in names:
            found |= {ref, local}
    return found


def pick_one(app: App, name: str | None) -> config.Image:
    if name or len(app.settings.images) == 1:
        return app.settings.image(name) if name else app.settings.images[0]
    known = ", ".join(i.name for i in app.settings.images) or "none configured"
    raise KitError(f"say which image: --name one of {known}", hint="e.g. inv image.shell --name "
                   f"{app.settings.images[0].name if app.settings.images else 'web'}", code=2)


# -- tasks --------------------------------------------------------------------------------------


@kit_task(default=True, help={"name": "build only this image (default: every image in app.images)",
                              "no_cache": "rebuild even if the tag exists, without Docker's layer cache"})
def build(c: Context, name: str | None = None, no_cache: bool = False, env: str | None = None) -> None:
    """Build images tagged by content; skip those up to date."""
    app = App.load(c, env)
    for image in selected(app, name):
        build_one(app, image, no_cache)


@kit_task(help={"name": "deliver only this image"})
def load(c: Context, name: str | None = None, env: str | None = None) -> None:
    """Deliver built images to the cluster, or skip if there."""
    app = App.load(c, env)
    for image in selected(app, name):
        deliver_one(app, plan(app, image))


@kit_task(help={"name": "only this image"})
def tag(c: Context, name: str | None = None, env: str | None = None) -> None:
    """Print the tag each image's current inputs give."""
    app = App.load(c, env)
    for image in selected(app, name):
        print(deliver_ref(app, plan(app, image)))


@kit_task
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
                "name": "remove tags of this image only; without --tag, every tag of it"})
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
        tags = [i.ref for i in found if i.repository in names]
        have = (", ".join(tags[:10]) + (f" and {len(tags) - 10} more" if len(tags) > 10 else "")) or "none"
        raise KitError(f"no {what} of {', '.join(sorted(names))} in {where(daemon)} (there: {have})",
                       hint="inv image.ls lists the project's images and tags", code=1)
    remove(app, doomed, daemon)


@kit_task(help={"keep": "how many of the newest tags of each image to keep (default app.image_keep); "
                        "the current tag is always kept"})
def prune(c: Context, keep: int | None = None, env: str | None = None) -> None:
    """Remove old tags of the project's images."""
    app = App.load(c, env)
    count = keep if keep is not None else int(c.config.get("app", {}).get("image_keep", 3))  # config is checked on load
    daemon = build_env(app)
    current, problem = current_refs(app)
    if problem:
        raise KitError(f"cannot tell the current tag, so nothing is pruned: {problem}",
                       hint="fix that first (inv image.tag shows the tags the inputs give)", code=2)
    noted = built_ids(app)
    found = project_images(app, daemon, by_name=False, noted=noted)
    decided = core.prune_plan(found, count, current, deployed_local_refs(app))
    for image, why in decided.keep:
        app.say(f"  keep    {image.ref}  ({image.since}; {why})")
    for image, why in decided.remove:
        app.say(f"  remove  {image.ref}  ({image.since}; {why})")
    left = [image for image, _ in decided.keep]
    if decided.remove:
        doomed = [image for image, _ in decided.remove]
        in_use = remove(app, doomed, daemon)
        left += [image for image in doomed if image.ref in in_use]
    else:
        app.say(f"nothing to prune: {len(decided.keep)} image(s) of {app.settings.name}, all kept")
    if noted and not app.c.config.run.dry:  # the notes of images no longer there (removed now, or before) go
        forget_built(app, set(noted) - set(core.still_there(noted, left)))


def remove(app: App, doomed: list[core.LocalImage], daemon: dict[str, str]) -> list[str]:
    """One `docker image rm`; tags a container still uses are kept and named (returned), anything else fails."""
    result = app.run(["docker", "image", "rm", *(i.ref for i in doomed)], check=False, env=daemon)
    if app.c.config.run.dry:
        return []
    if result.exited == 0:
        app.say(f"removed {len(doomed)} image tag(s) from {where(daemon)}")
        return []
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
    return in_use


@kit_task(help={"name": "which image (default: the only one in app.images)",
                "command": "run this (with sh -c) instead of an interactive shell"})
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
                "no_build": "do not build or deliver; point the workloads at the current tags as they are"})
def rollout(c: Context, name: str | None = None, no_build: bool = False, timeout: int | None = None,
            env: str | None = None, allow_context: bool = False) -> None:
    """Build, deliver, kubectl set image, wait until ready."""
    app = App.load(c, env, allow_context)
    app.context()  # the guard runs before anything is built
    chosen = selected(app, name)
    for image in chosen:
        planned = plan(app, image) if no_build else build_one(app, image)
        if not no_build:
            deliver_one(app, planned)
    refs = {i.name: run_ref(app, plan(app, i)) for i in chosen}
    workloads = set_images(app, refs)
    readiness.wait_ready(app, workloads, timeout)


def set_images(app: App, refs: dict[str, str]) -> list[str]:
    """`kubectl set image` on the live workloads that run ``refs``' images; returns the workloads."""
    wanted = [kube.normalise_workload(w) for w in app.settings.workloads]
    result = app.run(app.kubectl("get", "deployments,statefulsets,daemonsets", "-o", "json"), query=True, capture=True,
                     check=False)
    if result.exited != 0:
        raise KitError("cannot read the workloads from the cluster", evidence=result.stderr,
                       hint="check the cluster is up: inv doctor")
    live = json.loads(result.stdout or "{}").get("items", [])
    changes, missing = core.set_image_plan(live, refs, wanted)
    for workload in missing:
        app.warn(f"{workload} (app.workloads) is not in the cluster: skipped")
    if not changes:
        where_ns = app.settings.namespace or "the context's namespace"
        raise KitError(f"no Deployment, StatefulSet or DaemonSet in {where_ns} runs {', '.join(sorted(refs))}",
                       hint="apply the manifests first (inv up, or kubectl apply -f k8s/); check app.workloads", code=1)
    for change in changes:
        for container in change.pull_always if app.settings.cluster.provider != "registry" else []:
            app.warn(f"{change.workload} container {container} has imagePullPolicy: Always, so the node will try "
                    "a registry for a locally built image: set imagePullPolicy: IfNotPresent in its manifest")
        if change.changes:
            app.run(app.kubectl(*change.argv()))
        else:
            app.say(f"{change.workload}: already runs {', '.join(sorted(set(refs.values())))}")
    return [change.workload for change in changes]


ns = Collection("image")
for _t in (build, load, tag, ls, rm, prune, shell, rollout):
    ns.add_task(_t)
