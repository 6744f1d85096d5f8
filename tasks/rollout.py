"""Rollout: wait until the workloads are ready, failing fast on hopeless states with the reason."""

from __future__ import annotations

import json
import time
from typing import Any

from tasks import image as images
from tasks.core import kube, render
from tasks.core.errors import KitError
from tasks.kit import App

WATCHED_KINDS = "deployments,statefulsets,daemonsets,jobs,replicasets,pods"
POLL_SECONDS = 0.3


def wanted_workloads(app: App, documents: list[dict[str, Any]]) -> list[str]:
    return [kube.normalise_workload(w) for w in app.settings.workloads] or render.workloads(documents)


def wait_ready(app: App, workloads: list[str], timeout: int | None = None) -> kube.Verdict:
    """Poll until every workload is ready; stop at once on a hopeless state; one deadline for all."""
    if app.c.config.run.dry:
        app.say(f"would wait for {', '.join(workloads) or 'nothing'} (--dry)")
        return kube.Verdict()
    deadline = time.monotonic() + (timeout or app.settings.timeout)
    ours = [render.image_repository(r) for r in images.built_refs(app).values()]
    argv = app.kubectl("get", WATCHED_KINDS, "-o", "json")
    app.say(f"$ {' '.join(argv)}    # polled every {POLL_SECONDS}s until ready")
    shown: set[str] = set()
    while True:
        result = app.run(argv, query=True, capture=True, check=False, quiet=True)
        if result.exited != 0:
            raise KitError("cannot read workload state from the cluster", evidence=result.stderr,
                           hint="check the cluster is up: inv doctor")
        verdict = kube.assess(json.loads(result.stdout).get("items", []), workloads, ours)
        for key, why in verdict.waiting.items():
            line = f"{key}: {why}"
            if line not in shown:
                shown.add(line)
                app.say(f"  waiting: {line}")
        if verdict.hopeless:
            raise KitError(explain(app, verdict.hopeless), code=1)
        if verdict.done:
            app.say(f"ready: {', '.join(verdict.ready)}")
            return verdict
        if time.monotonic() >= deadline:
            lines = [f"{k}: {v}" for k, v in verdict.waiting.items()] + [f"{m}: not found in the cluster" for m in verdict.missing]
            lines += [f"{p.workload} pod {p.pod}: {p.sentence}" for p in verdict.problems]
            lines += probe_messages(app, verdict)
            raise KitError(f"not ready after {timeout or app.settings.timeout}s:\n" + "\n".join(f"  - {x}" for x in lines),
                           hint="see `inv k8s.status`; raise app.timeout (or --timeout) if the app is just slow to start")
        time.sleep(POLL_SECONDS)


def explain(app: App, problems: list[kube.Problem]) -> str:
    lines = []
    for problem in problems:
        where = f"{problem.workload}" + (f" pod {problem.pod}" if problem.pod else "")
        lines.append(f"{where}: {problem.reason}: {problem.sentence}")
        if problem.wants_previous_log and problem.pod:
            log = app.run(app.kubectl("logs", problem.pod, "-c", problem.container, "--previous", "--tail", "10"),
                          query=True, capture=True, check=False)
            lines += [f"    | {line}" for line in (log.stdout or log.stderr).rstrip().splitlines()]
        elif problem.reason == "JobFailed":
            log = app.run(app.kubectl("logs", problem.workload, "--tail", "10"), query=True, capture=True, check=False)
            lines += [f"    | {line}" for line in (log.stdout or log.stderr).rstrip().splitlines()]
    return "rollout failed:\n" + "\n".join(f"  {line}" for line in lines)


def probe_messages(app: App, verdict: kube.Verdict) -> list[str]:
    pods = {p.pod for p in verdict.problems if p.pod}
    if not pods:
        return []
    result = app.run(app.kubectl("get", "events", "-o", "json"), query=True, capture=True, check=False)
    if result.exited != 0:
        return []
    messages = []
    for event in json.loads(result.stdout).get("items", []):
        obj = event.get("involvedObject") or {}
        if obj.get("name") in pods and event.get("type") == "Warning":
            line = f"pod {obj['name']}: {event.get('reason')}: {str(event.get('message', '')).strip()}"
            if line not in messages:
                messages.append(line)
    return messages[-6:]


