"""Building: the tag an image's inputs give (planned without Docker), and `docker build` only when the daemon
images are built in lacks that tag."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from devloop import shell as funnel
from devloop.core import config
from devloop.core import images as core
from devloop.core.errors import KitError
from devloop.delivery import build_env, deliver_ref
from devloop.docker_api import check_daemon_lost, check_daemon_result, image_id, short, tag_image, where
from devloop.kit import STATE_DIR, App

LABEL = "devloop.app"  # builds by earlier versions of the kit carry devloop.app=<app name>; image.ls still finds them
BUILT = "built-images"  # .kit/built-images: "<image ID> <app name>" for every image the kit built here (image.ls, prune)


class Planned(NamedTuple):
    image: config.Image
    tag: str
    build_args: dict[str, str]
    files: int
    built: bool = False  # build_one ran `docker build` for it, or under --dry would have (else the daemon had the tag)

    @property
    def ref(self) -> str:
        return f"{self.image.name}:{self.tag}"


def plan(app: App, image: config.Image) -> Planned:
    """The tag this image's inputs give, computed without Docker (file digests cached under .kit/)."""
    return app.fact(f"plan:{image.name}", lambda: compute_plan(app, image))


def compute_plan(app: App, image: config.Image) -> Planned:
    check_build_files(app, image)
    args = core.resolve_build_args(core.read_dockerfile(image.dockerfile), image.build_args, os.environ, image.name)
    for key, value in args.items():  # e.g. NPM_TOKEN: masked in the echoed `docker build`
        if funnel.looks_secret(key):
            funnel.register_secret(value)
    dry = bool(app.c.config.run.dry)  # --dry writes nothing: the cache is only read
    state = (app.settings.root / STATE_DIR if dry else app.state_dir).resolve()
    skip = [os.path.relpath(state, image.context)] if state.is_relative_to(image.context) else []
    import hashlib  # kept local for start-up time: `inv --list` hashes nothing

    cache_name = hashlib.sha1(str(image.context).encode()).hexdigest()[:12]
    cache = core.DigestCache(state / f"digests-{cache_name}.json", write=not dry)
    inputs = core.build_inputs(image.context, image.dockerfile, args, image.target, cache=cache, skip=skip)
    core.check_tag(inputs.tag)
    patterns = core.read_dockerignore(image.context)
    if skip and not core.ignored(skip[0], patterns):
        app.warn(f"image {image.name}: add {skip[0]}/ to {image.context / '.dockerignore'} — the kit's own "
                 "files (rendered manifests, Secrets) are in the build context, and COPY . would put them in the image",
                 once=True)
    for secret in secret_files_in_context(app, image, patterns):
        app.warn(f"image {image.name}: add {secret} to {image.context / '.dockerignore'} — a Secret's file "
                 "(app.secrets) is in the build context: COPY . would put it in the image, and editing it rebuilds",
                 once=True)
    return Planned(image, inputs.tag, args, len(inputs.files))


def secret_files_in_context(app: App, image: config.Image, patterns: list[core.Pattern]) -> list[str]:
    """The app.secrets files (of every environment) inside the build context that .dockerignore does not exclude."""
    found = []
    for pattern in sorted(set(app.settings.secrets.values())):
        try:
            paths = sorted(app.settings.root.glob(pattern.replace("{env}", "*")))
        except (ValueError, NotImplementedError):  # an absolute path: outside any context this checks
            continue
        for path in paths:
            if path.is_file() and path.resolve().is_relative_to(image.context.resolve()):
                rel = path.resolve().relative_to(image.context.resolve()).as_posix()
                if not core.ignored(rel, patterns):
                    found.append(rel)
    return found


def check_build_files(app: App, image: config.Image) -> None:
    core.check_name(image.name)
    if not image.context.is_dir():
        raise KitError(f"image {image.name}: build context {image.context} does not exist or is not a folder",
                       hint=f"fix app.images.{image.name}.context in invoke.yaml (relative to {app.settings.root})",
                       code=2)
    if not image.dockerfile.is_file():
        raise KitError(f"image {image.name}: Dockerfile {image.dockerfile} not found",
                       hint=f"fix app.images.{image.name}.dockerfile (relative to its context {image.context})", code=2)


def built_refs(app: App) -> dict[str, str]:
    """Image name in manifests -> the reference the cluster runs (registry-qualified when pushing)."""
    return {p.image.name: deliver_ref(app, p) for p in (plan(app, i) for i in app.settings.images)}


def build_one(app: App, image: config.Image, no_cache: bool = False, iidfile: Path | None = None) -> Planned:
    """Build ``image`` unless the daemon already has the tag its inputs give (or ``no_cache``).

    With ``iidfile`` the build is left untagged and its image ID written there: ``tag_built`` tags it once the
    caller knows no input changed while it ran (a watch cycle's early build, devloop/prebuild.py)."""
    planned = plan(app, image)
    env = build_env(app)
    existing = image_id(app, planned.ref, env)
    if existing and not no_cache:
        app.say(f"image {planned.ref}: up to date — {where(env)} already has this tag ({short(existing)}), and the tag "
                f"is the hash of the Dockerfile, build args and {planned.files} context file(s)")
        return planned
    app.say(f"image {planned.ref}: building in {where(env)} ({planned.files} context files)")
    result = app.run(build_argv(app, planned, no_cache, iidfile), check=False, env=env)
    if not iidfile:  # tagged by docker: noted now (else by whoever tags it, or sets it aside)
        written = build_iidfile(app, image)
        remember(app, read_iid(written))
        written.unlink(missing_ok=True)
    if result.exited != 0:
        explain_failure(planned, result, env)
    return planned._replace(built=True)


def build_iidfile(app: App, image: config.Image) -> Path:
    """Where a build docker tags itself writes its image ID (the kit notes it in .kit/built-images); one per
    process, as two runs may build in one checkout at once."""
    return app.state_path(f"build-{image.name}-{os.getpid()}.iid", create=not funnel.is_dry(app.c))


def read_iid(iidfile: Path) -> str:
    """The image ID a build wrote, or "" (none written)."""
    try:
        return iidfile.read_text().strip()
    except OSError:
        return ""


def remember(app: App, image_id: str) -> None:
    """Note an image the kit built, tagged or set aside: `image.ls` and `image.prune` know the project's images by
    these notes (a label would cost the legacy builder a build step of its own, about 70 ms a build)."""
    if not image_id.startswith("sha256:") or funnel.is_dry(app.c):
        return
    path = app.state_path(BUILT, create=True)
    try:
        with path.open("a") as out:
            out.write(core.format_built({image_id: app.settings.name}))
    except OSError as exc:
        app.warn(f"could not note image {short(image_id)} in {path} ({exc.strerror}): image.prune will not find it")


def noted_builds(app: App) -> dict[str, str]:
    """The kit's notes of the images it built in this folder: image ID → app name, oldest first."""
    try:
        return core.parse_built(app.state_path(BUILT).read_text())
    except OSError:
        return {}


def built_ids(app: App) -> list[str]:
    """The images the kit noted building for this app, oldest first."""
    return [image_id for image_id, name in noted_builds(app).items() if name == app.settings.name]


def forget_built(app: App, gone: set[str]) -> None:
    """Drop the notes of the images ``gone`` (removed, or no longer on the daemon)."""
    path = app.state_path(BUILT)
    notes = noted_builds(app)
    try:
        path.write_text(core.format_built({i: name for i, name in notes.items() if i not in gone}))
    except OSError as exc:
        app.warn(f"could not update {path} ({exc.strerror}): it may name images that are gone (harmless)")


def tag_built(app: App, planned: Planned, iidfile: Path) -> None:
    """Give the image an untagged build made (its ID in ``iidfile``) the tag its inputs give."""
    env = build_env(app)
    built = read_iid(iidfile)
    if not built:
        raise KitError(f"image {planned.ref}: docker build wrote no image ID to {iidfile}",
                       hint="run again; if it persists, check the docker CLI (docker build --iidfile)", code=1)
    remember(app, built)
    tag_image(app, built, planned.ref, env)


def explain_failure(planned: Planned, result: Any, env: dict[str, str]) -> None:
    """A failed `docker build`: a daemon that is gone or went away mid-build, else the step that failed."""
    during = f"the build of {planned.ref}: docker tags only a finished build, so {planned.ref} was not made"
    check_daemon_result(result, during=during)
    check_daemon_lost(result, during, env)
    step, output = core.build_failure((result.stdout or "") + "\n" + (result.stderr or ""))
    raise KitError(f"image {planned.image.name}: docker build failed" + (f" at {step}" if step else ""), evidence=output,
                   hint="fix the failing step; the previous image and its tag are untouched", code=1)


def build_argv(app: App, planned: Planned, no_cache: bool, iidfile: Path | None = None) -> list[str]:
    image = planned.image
    # No --label: the legacy builder makes each one a build step of its own. The kit notes what it built instead.
    named = ["--iidfile", str(iidfile)] if iidfile else ["--tag", planned.ref, "--iidfile", str(build_iidfile(app, image))]
    argv = ["docker", "build", *named, "--file", str(image.dockerfile)]
    for key, value in sorted(planned.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if image.target:
        argv += ["--target", image.target]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(image.context))
    return argv
