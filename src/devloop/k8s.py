"""Manifests on the cluster: render, apply, wait until ready (failing fast with the reason), delete."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

from invoke import Collection, Context

from devloop import image as images
from devloop import rollout, shell, tls
from devloop.core import converge, kube, lint, render
from devloop.core.errors import KitError
from devloop.environment import NAMESPACE_SEEN, builtin_var, ensure_namespace, secret_documents
from devloop.kit import STATE_DIR, App, kit_task, shown_path


def parse_sets(sets: list[str] | None) -> dict[str, str]:
    values = {}
    for item in sets or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise KitError(f"--set {item!r} is not NAME=VALUE", hint="write --set MINIKUBE_IP=192.168.49.2", code=2)
        values[name.strip()] = value
    return values


def sources(app: App, path: str | None = None) -> list[render.Source]:
    """Manifest texts in a stable order; a folder with kustomization.yaml goes through `kubectl kustomize`."""
    folders = [Path(path).resolve()] if path else list(app.settings.manifests)
    found: list[render.Source] = []
    for folder in folders:
        if (folder / "kustomization.yaml").is_file() or (folder / "kustomization.yml").is_file():
            result = app.run(["kubectl", "kustomize", str(folder)], query=True, capture=True, check=False)
            if result.exited != 0:
                raise KitError(f"kustomize failed for {folder}", evidence=result.stderr,
                               hint="fix the kustomization (kubectl kustomize <folder> shows the same error)", code=2)
            found.append(render.Source(folder / "kustomization.yaml", result.stdout))
            continue
        for file in render.manifest_files(folder):
            try:
                found.append(render.Source(file, file.read_text(encoding="utf-8")))
            except UnicodeDecodeError as exc:
                raise KitError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                               hint="save the manifest as UTF-8", code=2) from None
    if not found:
        raise KitError(f"no manifests (*.yaml) in {', '.join(str(f) for f in folders)}",
                       hint="put your Kubernetes YAML there, or point app.manifests at it", code=2)
    return found


def image_refs(app: App, strict: bool = True) -> dict[str, str]:
    """Our image name -> the reference to run: the tag its inputs give, or the deployed reference while that is the
    same image (images.run_ref: nothing rolls). ``strict=False`` (render, lint, diff) lets an image whose
    Dockerfile or context is not there yet render with the tag ``unbuilt``, with a warning."""
    def compute() -> dict[str, str]:
        refs = {}
        for image in app.settings.images:
            if not strict and not (image.context.is_dir() and image.dockerfile.is_file()):
                app.warn(f"image {image.name}: {image.dockerfile} not found; rendering it as {image.name}:unbuilt "
                        "(inv up needs the Dockerfile)")
                refs[image.name] = f"{image.name}:unbuilt"
            else:
                refs[image.name] = images.run_ref(app, images.plan(app, image))
        return refs

    return dict(app.fact(f"plan:refs:{strict}", compute))  # "plan:" so a watch cycle computes them again


def tag_vars(refs: dict[str, str]) -> dict[str, str]:
    """${IMAGE_TAG} (when there is one image) and ${IMAGE_TAG_<NAME>}: e.g. for a Job named per version."""
    values = {"IMAGE_TAG_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper(): ref.rsplit(":", 1)[-1] for name, ref in refs.items()}
    if len(refs) == 1:
        values["IMAGE_TAG"] = next(iter(values.values()))
    return values


def rendered(app: App, sets: dict[str, str] | None = None, path: str | None = None,
             strict: bool = True) -> list[dict[str, Any]]:
    """The objects `apply` sends: placeholders filled, our images tagged, labelled, namespaced."""
    srcs = sources(app, path)
    refs = image_refs(app, strict)
    tags = tag_vars(refs)
    declared = set(app.settings.vars) | set(render.BUILTIN_VARS) | set(tags)
    undeclared = [u for u in render.undeclared(srcs, declared) if u.name.isupper()]
    app.undeclared = [f"{u.path}:{u.line}: ${{{u.name}}}" for u in undeclared]
    for use in undeclared:
        near = difflib.get_close_matches(use.name, sorted(declared), n=1)
        guess = f" (did you mean ${{{near[0]}}}?)" if near else ""
        app.warn(f"{use.path}:{use.line}: ${{{use.name}}} is not declared in app.vars; left as it is{guess}")
    wanted = {u.name for u in render.uses(srcs, declared)}
    for name in sorted(set(sets or {}) - declared):
        app.warn(f"--set {name}=…: no manifest declares ${{{name}}} (app.vars); it changes nothing")
    layers: list[tuple[str, Any]] = [("--set", sets or {}), ("the environment (.env or shell)", os.environ),
                                     ("app.vars", app.settings.vars)]

    def minikube_ip() -> str:  # a --set / .env MINIKUBE_IP wins over asking the cluster
        given = next((str(layer["MINIKUBE_IP"]) for _, layer in layers if layer.get("MINIKUBE_IP") is not None), None)
        return str(app.fact("minikube_ip", lambda: given)) if given is not None else app.minikube_ip()

    def fact(name: str) -> str | None:
        return builtin_var(app, name, minikube_ip)

    layers.insert(1, ("the built image", tags))
    values, origin = render.resolve(wanted, layers, fact)
    documents = render.parse(render.substitute(srcs, declared, values, origin), app.origins)
    documents += secret_documents(app) + tls.tls_documents(app)
    render.set_images(documents, refs)
    for warning in render.label(documents, app.settings.name, app.settings.env, app.settings.namespace, app.origins):
        app.warn(warning)
    render.hash_config(documents)
    return documents


def write_rendered(app: App, documents: list[dict[str, Any]], even_dry: bool = False, name: str = "rendered") -> Path:
    """Keep the rendered set in .kit/ (owner-only: it may hold Secrets); under --dry, write nothing
    unless a read-only command needs the file (``even_dry``: `k8s.diff`, the server-side dry run)."""
    if shell.is_dry(app.c) and not even_dry:
        return app.settings.root / STATE_DIR / f"{name}-{app.settings.env}.yaml"
    target = app.state_dir / f"{name}-{app.settings.env}.yaml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # also when an older file had a wider mode
        handle.write(render.dump(documents))
    return target


def apply_documents(app: App, documents: list[dict[str, Any]]) -> None:
    """`kubectl apply` the rendered set; a refusal by the API server is explained one line per object.

    The namespace is not looked up first: an apply that fails for want of it creates it and applies again (one
    kubectl less on every apply). A --dry run shows the lookup and the create instead."""
    target = write_rendered(app, documents)
    if shell.is_dry(app.c):
        ensure_namespace(app)
    argv = app.kubectl("apply", "-f", shown_path(target))
    result = app.run(argv, capture=True, check=False)
    if result.exited != 0 and converge.missing_namespace(result.stderr or "", app.settings.namespace):
        if result.stdout:  # what the first attempt applied (objects outside the namespace)
            print(shell.mask(result.stdout), end="", flush=True)
        app.say(f"namespace {app.settings.namespace} does not exist: making it, then applying again")
        app.forget(NAMESPACE_SEEN)  # a run that made it before may see it deleted since
        ensure_namespace(app)
        result = app.run(argv, capture=True, check=False)
    if result.stdout:
        print(shell.mask(result.stdout), end="", flush=True)
    if result.exited != 0:
        raise refusal(app, argv, result, documents)


def refusal(app: App, argv: list[str], result: Any, documents: list[dict[str, Any]], dry_run: bool = False) -> KitError:
    """kubectl's failure in the user's terms: each refused object, field, file and fix; never the server's struct dump.

    A cluster that does not answer refused nothing: that is said as such. Who refused is named: the API server, or
    kubectl's own check against the cluster's schema (an unknown or misspelt field), which stops at that object."""
    stderr = result.stderr or ""
    if kube.unreachable(stderr):
        return no_answer(app, "a dry run" if dry_run else "apply", stderr,
                         "the rendered file is kept; run again once it answers")
    ending = converge.namespace_ending(stderr)
    if ending:
        return KitError(f"namespace {ending} is being deleted: nothing can be created in it until it is gone",
                        hint=f"wait until `inv k8s.kubectl -- get namespace {ending}` finds none, then run again", code=1)
    refused = located(app, converge.rejections(stderr, documents), documents)
    if not refused:
        return shell.failure(argv, result.exited, converge.short_output(stderr or result.stdout or ""),
                             "the rendered file is kept for inspection; `inv k8s.render` prints it")
    checkers = {"kubectl's schema check" if r.by_kubectl else "the API server" for r in refused}
    if dry_run:
        done = "a dry run: nothing was changed"
    elif "kubectl's schema check" in checkers:
        done = "kubectl stops at the first object its schema check refuses: those before it were applied, those " \
               "after it were not"
    else:
        done = "the other objects were applied"
    return KitError(f"{' and '.join(sorted(checkers, reverse=True))} refused {len(refused)} change(s) ({done}):\n"
                    + "\n".join(f"  {r}" for r in refused),
                    hint="fix them and run again (`inv k8s.lint` asks the server without applying)", code=1)


def located(app: App, refused: list[converge.Rejection], documents: list[dict[str, Any]]) -> list[converge.Rejection]:
    """Each refusal with the manifest file its object came from."""
    files = {f"{str(d.get('kind')).lower()}/{(d.get('metadata') or {}).get('name')}": shown_path(app.origins[id(d)])
             for d in documents if id(d) in app.origins}
    return [dataclasses.replace(r, origin=files.get(r.ref, "")) for r in refused]


def selector(app: App) -> str:
    """The kit's labels for this app and environment, as a label selector."""
    return f"{render.LABEL}={app.settings.name},{render.ENV_LABEL}={app.settings.env}"


def needs_live(documents: list[dict[str, Any]]) -> bool:
    """Whether lint compares with live objects: a Job, or a Deployment switching to Recreate."""
    return any(d.get("kind") == "Job" or (d.get("kind") == "Deployment" and
               ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate") for d in documents)


CONVERGED = "converged"  # the converged_key of this run's last complete converge (a watch session's next cycle)


def live_items(app: App, documents: list[dict[str, Any]], prune: bool = True,
               volumes: bool = False) -> list[dict[str, Any]] | None:
    """The live objects carrying the kit's labels for this app and environment (None: the cluster cannot be read)."""
    if not prune and not needs_live(documents):
        return []
    try:
        argv = app.kubectl("get", converge.listing_kinds(volumes), "-l", selector(app), "-o", "json")
    except KitError:  # no usable kube context: lint what can be linted without the cluster
        return None
    result = app.run(argv, query=True, capture=True, check=False)
    if result.exited != 0:
        return None
    return list(json.loads(result.stdout or "{}").get("items", []))


def policy(app: App, prune: bool = True, volumes: bool = False) -> converge.Policy:
    s = app.settings
    source = ", ".join(f"{os.path.relpath(m, s.root)}/" for m in s.manifests)
    secret = str(builtin_var(app, "TLS_SECRET"))
    try:
        kept_tls = "" if tls.files_for(app, secret).present() else secret  # no copy here: not a reason to delete it
    except KitError:  # not a valid Secret name: tls.cert could not have made it
        kept_tls = ""
    return converge.Policy(s.name, s.env, source, prune=prune, volumes=volumes, job_keep=s.job_keep,
                           rerun_jobs=s.rerun_jobs, namespace=s.namespace, tls_secret=kept_tls)


def check(app: App, documents: list[dict[str, Any]], strict: bool = False, prune: bool = True,
          volumes: bool = False, ask_server: bool = False) -> tuple[converge.Plan, list[lint.Finding]]:
    """Lint against the live objects and plan what converging deletes; raise on what the server would refuse.

    ``ask_server`` (`inv k8s.lint`): a server-side dry run of every object, whenever the cluster can be read.
    A watch session's cycle that converges the very objects its last cycle did reads nothing: no lint rule needs the
    live objects (see needs_live) and nothing is left to prune."""
    rules = policy(app, prune, volumes)
    key = converge.converged_key(documents, rules)
    if prune and not needs_live(documents) and app.fact(CONVERGED, str) == key:
        app.say(f"converge: the same {len(documents)} object(s) as this session's last apply: nothing to prune")
        return converge.Plan(covers=key), lint_documents(app, documents, strict=strict)
    items = live_items(app, documents, prune, volumes)
    if items is None:
        app.say("lint: the cluster could not be read; checks against live objects skipped, nothing pruned")
    plan = converge.plan(documents, items or [], rules)
    plan.covers = key if prune and items is not None else ""
    live = converge.live_map(items or [], app.settings.namespace, plan.rerun_refs)
    return plan, lint_documents(app, documents, live, strict, plan.rerun_refs, ask_server and items is not None)


def lint_documents(app: App, documents: list[dict[str, Any]], live: dict[str, Any] | None = None,
                   strict: bool = False, rerun: set[str] | None = None, ask_server: bool = False) -> list[lint.Finding]:
    """Run the checks; print warnings; raise on errors (so `up` stops before apply); ``strict``: on warnings too."""
    refs = image_refs(app, strict=False)
    findings = lint.lint(documents, app.origins, [render.image_repository(r) for r in refs.values()], refs, live)
    findings = confirmed(app, documents, findings, rerun or set(), ask_server)
    for finding in findings:
        if not finding.error:
            app.say(str(finding))
    errors = [f for f in findings if f.error or strict]
    if errors:
        raise KitError(f"lint found {len(errors)} problem(s) in the manifests:\n" + "\n".join(str(f) for f in errors),
                       hint="fix them and run again (`inv k8s.lint` checks without applying)", code=1)
    return findings


def confirmed(app: App, documents: list[dict[str, Any]], findings: list[lint.Finding],
              rerun: set[str], ask: bool = False) -> list[lint.Finding]:
    """Guesses from the live objects, asked of the API server (a server-side dry run) before they are called errors;
    with ``ask``, the dry run is made anyway, and what kubectl or the server refuses is an error too."""
    if not ask and not any(f.live and f.error for f in findings):
        return findings
    sent = [d for d in documents if f"{str(d.get('kind')).lower()}/{(d.get('metadata') or {}).get('name')}" not in rerun]
    target = write_rendered(app, sent, even_dry=True, name="dry-run")
    argv = app.kubectl("apply", "--dry-run=server", "-f", shown_path(target))
    result = app.run(argv, query=True, capture=True, check=False)
    if result.exited != 0 and converge.missing_namespace(result.stderr or "", app.settings.namespace):
        app.say(f"lint: namespace {app.settings.namespace} does not exist yet (the apply makes it): the server could "
                "not check the objects in it")
        return findings
    refused = located(app, converge.rejections(result.stderr or "", sent), sent) if result.exited != 0 else []
    if result.exited != 0 and not refused:
        raise refusal(app, argv, result, sent, dry_run=True)
    if ask and not refused:
        unsent = f"; {len(documents) - len(sent)} Job(s) to rerun not sent" if len(sent) < len(documents) else ""
        app.say(f"lint: the API server accepts the {len(sent)} object(s) sent (server-side dry run{unsent})")
    findings, accepted = lint.confirm(findings, refused, lint.places(documents, app.origins))
    for guess in accepted:
        app.say(f"lint: {guess.ref}: the API server accepts the change (server-side dry run), so this is no error: "
                f"{guess.message}")
    return findings


def rerun_jobs(app: App, plan: converge.Plan) -> None:
    """Delete the changed Jobs and their pods (and wait until they are gone), so the apply runs them again."""
    if not plan.rerun:
        return
    for action in plan.rerun:
        app.say(f"rerun {action.ref}: {action.reason}; deleting it with its pods, the apply creates it again")
    app.run(app.kubectl("delete", "job", *[a.name for a in plan.rerun], "--cascade=foreground", "--wait=true",
                        f"--timeout={app.settings.timeout}s", "--ignore-not-found"))


def prune(app: App, plan: converge.Plan) -> None:
    """Delete what the render no longer has (after the apply), each with the reason."""
    if not plan.prune:
        return
    app.run(app.kubectl("delete", *[a.ref for a in plan.prune], "--ignore-not-found", "--wait=false"))
    done = "would prune (--dry)" if shell.is_dry(app.c) else "pruned"
    for action in plan.prune:
        app.say(f"{done} {action.ref}: {action.reason}")


def apply_converged(app: App, documents: list[dict[str, Any]], plan: converge.Plan) -> None:
    """Rerun changed Jobs, apply, then prune: the cluster ends up holding what the render holds."""
    app.forget(CONVERGED)
    rerun_jobs(app, plan)
    apply_documents(app, documents)
    prune(app, plan)
    if plan.covers and not shell.is_dry(app.c):
        app.fact(CONVERGED, lambda: plan.covers)


def delete_applied(app: App, volumes: bool = False) -> None:
    kinds = ",".join(converge.NAMESPACED_KINDS) + (",persistentvolumeclaims" if volumes else "")
    argv = app.kubectl("delete", kinds, "-l", selector(app), "--ignore-not-found", "--wait=false")
    result = app.run(argv, capture=True, check=False)  # captured: an unreachable cluster's retries are not shown
    if result.stdout:
        print(shell.mask(result.stdout), end="", flush=True)
    if result.exited != 0 and kube.unreachable(result.stderr or ""):
        raise no_answer(app, "delete", result.stderr or "", "run again once it answers")
    if result.exited != 0:
        raise shell.failure(argv, result.exited, converge.short_output(result.stderr or result.stdout or ""))
    if not shell.is_dry(app.c):  # nothing of it runs now: image.prune no longer keeps its images as "deployed"
        (app.settings.root / STATE_DIR / f"rendered-{app.settings.env}.yaml").unlink(missing_ok=True)


def no_answer(app: App, doing: str, stderr: str, after: str) -> KitError:
    """kubectl could not reach the cluster: which one and why, in one line."""
    return KitError(f"cannot {doing}: {rollout.which_cluster(app, stderr)} does not answer ({kube.unreachable(stderr)})",
                    hint=f"check the cluster is up: inv doctor ({after})", code=1)


# -- tasks --------------------------------------------------------------------------------------


@kit_task(iterable=["set"], help={"path": "render this folder instead",
                                  "show_secrets": "print Secret values instead of ****"})
def render_(c: Context, env: str | None = None, path: str | None = None, set: list[str] | None = None,
            show_secrets: bool = False) -> None:
    """Print the rendered YAML, exactly what apply sends."""
    app = App.load(c, env)
    documents = rendered(app, parse_sets(set), path, strict=False)
    text = render.dump(documents if show_secrets else render.masked(documents))
    print(text if show_secrets else shell.mask(text), end="")  # values from .env can sit in any object


CONVERGE_HELP = {
    "no_prune": "keep objects the manifests no longer have (by default they are deleted)",
    "volumes": "also prune PersistentVolumeClaims the manifests no longer have (their data is lost)",
}


@kit_task(iterable=["set"], help=CONVERGE_HELP)
def apply(c: Context, env: str | None = None, set: list[str] | None = None, no_prune: bool = False,
          volumes: bool = False, allow_context: bool = False) -> None:
    """Lint, apply, prune what the manifests dropped."""
    app = App.load(c, env, allow_context)
    documents = rendered(app, parse_sets(set))
    plan, _ = check(app, documents, prune=not no_prune, volumes=volumes)
    apply_converged(app, documents, plan)


@kit_task(help={"timeout": "seconds to wait in all (default app.timeout)"})
def wait(c: Context, env: str | None = None, timeout: int | None = None, allow_context: bool = False) -> None:
    """Wait until every workload is ready; fail fast with why."""
    app = App.load(c, env, allow_context)
    documents = rendered(app, strict=False)
    rollout.wait_ready(app, rollout.wanted_workloads(app, documents), timeout)


@kit_task(help={"volumes": "also delete PersistentVolumeClaims (data!)"})
def delete(c: Context, env: str | None = None, volumes: bool = False, allow_context: bool = False) -> None:
    """Delete what the kit applied, found by its label."""
    app = App.load(c, env, allow_context)
    delete_applied(app, volumes)


@kit_task(iterable=["set"], help={"live": "also compare with the live objects in the cluster (default on)"})
def lint_(c: Context, env: str | None = None, set: list[str] | None = None, live: bool = True) -> None:
    """Check the rendered manifests before apply."""
    app = App.load(c, env)
    documents = rendered(app, parse_sets(set), strict=False)
    plan, findings = check(app, documents, ask_server=True) if live else (converge.Plan(), lint_documents(app, documents))
    for action in plan.rerun:
        app.say(f"lint: apply would rerun {action.ref}: {action.reason}")
    for action in plan.prune:
        app.say(f"lint: apply would prune {action.ref}: {action.reason}")
    warnings = len(findings) + app.warnings  # and what the render warned of (placeholders, namespaces…)
    app.say(f"lint: {len(documents)} object(s) checked, {warnings} warning(s), no errors")


@kit_task(iterable=["set"])
def diff(c: Context, env: str | None = None, set: list[str] | None = None, allow_context: bool = False) -> None:
    """Show what apply would change in the cluster."""
    app = App.load(c, env, allow_context)
    # Its own file: .kit/rendered-<env>.yaml records what the cluster was last given (image.prune keeps its images)
    target = write_rendered(app, rendered(app, parse_sets(set), strict=False), even_dry=True, name="diff")
    namespace = app.settings.namespace
    if namespace and app.run(app.kubectl("get", "namespace", namespace, "-o", "name", namespaced=False), query=True,
                             capture=True, check=False).exited != 0:
        raise KitError(f"namespace {namespace} does not exist yet: apply would create it and everything in it",
                       hint="inv up (or inv k8s.apply) creates it", code=1)
    result = app.run(app.kubectl("diff", "-f", shown_path(target)), query=True, check=False)
    if result.exited > 1:  # kubectl diff: 0 = same, 1 = differences, more = an error
        raise KitError("kubectl diff failed", evidence=result.stderr, hint="check the cluster is reachable: inv doctor")
    if result.exited == 1:  # like kubectl diff, so scripts and CI can tell
        raise KitError("the cluster differs from the rendered manifests (shown above: - live, + rendered)",
                       hint="inv k8s.apply (or inv up) makes them the same", code=1)
    app.say("no differences")


ns = Collection("k8s")
ns.add_task(render_, name="render")
ns.add_task(lint_, name="lint")
ns.add_task(diff)
for _t in (apply, wait, delete):
    ns.add_task(_t)
