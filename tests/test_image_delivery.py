"""Delivery per provider and runtime: exact commands (strict mock context), then the real funnel with the
minikube and kind stand-ins on PATH recording what they were asked, building on the real Docker engine."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKES, built_here, docker_ok
from invoke import Config, Context, Exit
from strict import StrictContext, fail, ok, rx

from devloop import docker_api, image, k8s
from devloop.build import build_one
from devloop.core import images as core
from devloop.core.config import DEFAULTS
from devloop.delivery import deliver_one
from devloop.kit import App

RUNTIME = "kubectl --context minikube get nodes -o 'jsonpath={.items[0].status.nodeInfo.containerRuntimeVersion}'"
DOCKER_ENV = "minikube -p minikube docker-env --shell none"
NODE_LS = "minikube -p minikube image ls --format json"
IMAGE_ID = "sha256:" + "ab" * 32
OLD_ID = "sha256:" + "cd" * 32


@pytest.fixture(autouse=True)
def docker_cli_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock context scripts `docker image inspect`: the daemon's API is not asked."""
    monkeypatch.setattr(docker_api, "daemon_url", lambda env: None)


ASK_DAEMON_API = docker_api.daemon_url  # what the `real` tests use: the real engine answers over its socket


def make_shop(root: Path, content: str = "hello\n") -> Path:
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "hello.txt").write_text(content)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY app/ /app/\n")
    (root / ".dockerignore").write_text(".kit/\n")
    return root


def settings(root: Path, name: str = "shop", **cluster: Any) -> dict[str, Any]:
    return {"root": str(root), "name": name, "images": {name: {}},
            "cluster": dict({"provider": "minikube", "context": "minikube", "ip": "127.0.0.1"}, **cluster)}


def tag_of(root: Path) -> str:
    return core.build_inputs(root, root / "Dockerfile", {}).tag


def inspect(ref: str) -> str:
    return f"docker image inspect --format '{{{{.Id}}}}' {ref}"


def node_listing(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"id": i.split(":")[-1], "repoDigests": [], "repoTags": [core.qualified_ref(r)], "size": "1"}
                       for r, i in pairs])


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop")


# -- exact commands --------------------------------------------------------------------------------


def test_minikube_docker_runtime_builds_in_minikubes_daemon_and_moves_nothing(shop: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    build = (f"docker build --tag {ref} --iidfile {shop}/.kit/build-shop-{os.getpid()}.iid --file {shop}/Dockerfile "
             f"{shop}")
    c = StrictContext({RUNTIME: [ok("docker://24.0.7")] * 2,
                       DOCKER_ENV: ok("DOCKER_TLS_VERIFY=1\nDOCKER_HOST=tcp://192.168.49.2:2376\n"
                                      "DOCKER_CERT_PATH=/home/u/.minikube/certs\nMINIKUBE_ACTIVE_DOCKERD=minikube\n"),
                       inspect(ref): fail(1, stderr="Error: No such image"), build: ok()},
                      app=settings(shop), repeat=False)
    image.build(c)
    image.load(c)
    assert c.commands == [RUNTIME, DOCKER_ENV, inspect(ref), build, RUNTIME]
    err = capsys.readouterr().err
    assert (f"$ DOCKER_TLS_VERIFY=1 DOCKER_HOST=tcp://192.168.49.2:2376 DOCKER_CERT_PATH=/home/u/.minikube/certs "
            f"docker build --tag {ref}") in err
    assert f"image {ref}: building in minikube's Docker daemon" in err
    assert f"image {ref}: nothing to move — built directly in minikube's Docker daemon (runtime docker): 0 bytes" in err


LOAD_FAILED = ("X  Exiting due to GUEST_IMAGE_LOAD: Failed to load image: save to dir: caching images: write: "
               "no space left on device")


@pytest.mark.parametrize(("case", "node", "load_result", "after", "expected", "words"), [
    ("new", node_listing(), ok(), "listed", ["ls", "load", "ls"],
     ["does not have it", "on the node now (minikube image ls: image ID ababababab"]),
    ("same image already there", "listed", None, None, ["ls"],
     ["0 bytes moved — `minikube image ls` shows the node already has it with the same image ID ababababab"]),
    ("same tag, other content", "old", ok(), "listed", ["ls", "load", "ls"],
     ["the node (runtime containerd, which cannot use the host's daemon) has this tag with a different image ID"]),
], ids=lambda v: v if isinstance(v, str) and " " in v or v == "new" else "")
def test_minikube_containerd_loads_only_what_the_node_lacks_and_verifies(shop: Path, capsys: pytest.CaptureFixture[str],
                                                                         case: str, node: str, load_result: Any,
                                                                         after: str | None, expected: list[str],
                                                                         words: list[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    listings = {"listed": node_listing((ref, IMAGE_ID)), "old": node_listing((ref, OLD_ID))}
    results: dict[str, Any] = {RUNTIME: ok("containerd://1.7.2"), inspect(ref): ok(IMAGE_ID + "\n"),
                               NODE_LS: [ok(listings.get(node, node))] + ([ok(listings[after])] if after else [])}
    if load_result is not None:
        results[f"minikube -p minikube image load {ref}"] = load_result
    c = StrictContext(results, app=settings(shop), repeat=False)
    image.load(c)
    steps = {"ls": NODE_LS, "load": f"minikube -p minikube image load {ref}"}
    assert c.commands == [RUNTIME, inspect(ref)] + [steps[s] for s in expected]
    err = capsys.readouterr().err
    for word in words:
        assert word in err


@pytest.mark.parametrize(("load_result", "after", "words"), [
    (fail(80, stderr="* Loading image\n" + LOAD_FAILED), None,
     ["`minikube image load shop:", "failed (exit 80)", "no space left on device",
      "fix: check `minikube status` and the node's free disk"]),
    (ok(), node_listing(), ["`minikube image load` finished but the node does not list shop:", "(no images listed)",
                            "image load shop:"]),
    (ok(), "old", ["the node still has an older shop:", "minikube image rm shop:"]),
])
def test_minikube_load_problems_are_explained(shop: Path, load_result: Any, after: str | None, words: list[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    after_listing = node_listing((ref, OLD_ID)) if after == "old" else after
    c = StrictContext({RUNTIME: ok("containerd://1.7.2"), inspect(ref): ok(IMAGE_ID),
                       NODE_LS: [ok("[]")] + ([ok(after_listing)] if after_listing else []),
                       f"minikube -p minikube image load {ref}": load_result}, app=settings(shop), repeat=False)
    with pytest.raises(Exit) as err:
        image.load(c)
    message = str(err.value.message)
    for word in words:
        assert word in message
    assert err.value.code == 1


def test_minikube_containerd_needs_the_image_built_first(shop: Path) -> None:
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({RUNTIME: ok("cri-o://1.28"), inspect(ref): fail(1, stderr="Error: No such image")},
                      app=settings(shop))
    with pytest.raises(Exit) as err:
        image.load(c)
    assert f"image {ref} is not in the local Docker daemon, so there is nothing to load" in str(err.value.message)
    assert "inv image.build" in str(err.value.message)


def test_dry_load_prints_the_load_and_verifies_nothing(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({RUNTIME: ok("containerd://1.7.2"), inspect(ref): fail(1, stderr="Error: No such image"),
                       NODE_LS: ok("[]")}, app=settings(shop), dry=True)
    image.load(c)
    assert f"$ minikube -p minikube image load {ref}    # --dry: not run" in capsys.readouterr().err
    assert c.commands == [RUNTIME, inspect(ref), NODE_LS]


@pytest.mark.parametrize(("stderr", "exited", "words"), [
    ('Image: "{ref}" with ID "sha256:ab" not yet present on node "dev-control-plane", loading...', 0,
     ["loaded into kind cluster 'dev' (dev-control-plane)"]),
    ('Image: "{ref}" with ID "sha256:ab" found to be already present on all nodes.', 0,
     ["0 bytes moved — kind found the same image ID on every node of 'dev'"]),
    ('ERROR: no nodes found for cluster "dev"', 1, ["kind could not load", "kind create cluster --name dev"]),
    ('ERROR: image: "{ref}" not present locally', 1, ["kind could not load", "build it first (inv image.build)"]),
])
def test_kind_loads_with_kind_and_relays_its_verdict(shop: Path, capsys: pytest.CaptureFixture[str], stderr: str,
                                                    exited: int, words: list[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    command = f"kind load docker-image {ref} --name dev"
    result = ok(stderr=stderr.format(ref=ref)) if exited == 0 else fail(exited, stderr=stderr.format(ref=ref))
    c = StrictContext({command: result}, app=settings(shop, provider="kind", kind_name="dev"))
    if exited:
        with pytest.raises(Exit) as err:
            image.load(c)
        text = str(err.value.message)
    else:
        image.load(c)
        text = capsys.readouterr().err
    assert c.commands == [command]
    for word in words:
        assert word in text


def test_a_cluster_on_the_same_daemon_only_needs_the_image_there(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({inspect(ref): [ok(IMAGE_ID), fail(1, stderr="Error: No such image")]},
                      app=settings(shop, provider="docker"), repeat=False)
    image.load(c)
    assert c.commands == [inspect(ref)]
    assert f"image {ref}: nothing to move — the cluster runs on this Docker daemon (provider docker), which has it " \
           "(image ID abababababab): 0 bytes" in capsys.readouterr().err
    with pytest.raises(Exit) as err:
        image.load(c)
    assert f"image {ref} is not in the local Docker daemon" in str(err.value.message)


def test_registry_tags_and_pushes(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    pushed = f"registry.example.com/team/{ref}"
    c = StrictContext({f"docker tag {ref} {pushed}": ok(), f"docker push {pushed}": ok()},
                      app=settings(shop, provider="registry", registry="registry.example.com/team"))
    image.load(c)
    assert c.commands == [f"docker tag {ref} {pushed}", f"docker push {pushed}"]
    assert f"image {pushed}: pushing to registry.example.com/team" in capsys.readouterr().err


@pytest.mark.parametrize(("registry", "push", "words", "code"), [
    ("", None, ["provider is 'registry' but app.cluster.registry is not set", "INVOKE_APP_CLUSTER_REGISTRY"], 2),
    ("registry.example.com/team", fail(1, stderr="denied: requested access to the resource is denied"),
     ["docker push to registry.example.com/team failed: access denied", "docker login registry.example.com"], 1),
    ("registry.example.com/team", fail(1, stderr="unauthorized: authentication required"),
     ["access denied", "(docker login registry.example.com) with an account that may push to registry.example.com/team"], 1),
    ("localhost:5000", fail(1, stderr="Get \"http://localhost:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"),
     ["docker push to localhost:5000 failed", "connection refused", "check that localhost:5000 is reachable"], 1),
])
def test_registry_problems_name_the_registry_and_the_fix(shop: Path, registry: str, push: Any, words: list[str],
                                                         code: int) -> None:
    ref = f"shop:{tag_of(shop)}"
    results = {re.compile(r"^docker tag "): ok()}
    if push is not None:
        results[f"docker push {registry}/{ref}"] = push
    c = StrictContext(results, app=settings(shop, provider="registry", registry=registry))
    with pytest.raises(Exit) as err:
        image.load(c)
    for word in words:
        assert word in str(err.value.message)
    assert err.value.code == code


def test_a_daemon_lost_mid_build_is_named_with_its_fix_not_the_step(shop: Path) -> None:
    ref = f"shop:{tag_of(shop)}"
    build = f"docker build --tag {ref} --iidfile {shop}/.kit/build-shop-{os.getpid()}.iid --file {shop}/Dockerfile {shop}"
    lost = ("#5 [2/3] COPY app/ /app/\n#6 [3/3] RUN make\nERROR: failed to receive status: rpc error: code = "
            "Unavailable desc = error reading from server: EOF\n")
    c = StrictContext({inspect(ref): fail(1, stderr="Error: No such image"), build: fail(1, stderr=lost)},
                      app=settings(shop, provider="docker"))
    with pytest.raises(Exit) as err:
        image.build(c)
    message = str(err.value.message)
    assert message.startswith(f"error: the connection to the local Docker daemon was lost during the build of {ref}: "
                              f"docker tags only a finished build, so {ref} was not made")
    assert "error reading from server: EOF" in message  # the evidence
    assert "docker info; sudo systemctl status docker" in message and "fix the failing step" not in message
    assert err.value.code == 1


# -- an identical rebuild: the deployed reference stays ---------------------------------------------


OLD = "shop:0ld0ld0ld0ld"
DEPLOYED = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      containers:
        - {{name: web, image: {ref}}}
        - {{name: proxy, image: "nginx:1.27"}}
"""


def deployed(root: Path, ref: str = OLD) -> None:
    (root / ".kit").mkdir(exist_ok=True)
    (root / ".kit" / "rendered-dev.yaml").write_text(DEPLOYED.format(ref=ref))


@pytest.mark.parametrize(("case", "old_id", "expected"), [
    ("same image ID", IMAGE_ID, "old"),
    ("other image ID", OLD_ID, "new"),
    ("old tag gone", None, "new"),
])
def test_the_deployed_reference_stays_while_the_built_image_is_the_same(shop: Path, capsys: pytest.CaptureFixture[str],
                                                                        case: str, old_id: str | None,
                                                                        expected: str) -> None:
    deployed(shop)
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({inspect(ref): ok(IMAGE_ID + "\n"),
                       inspect(OLD): ok(old_id + "\n") if old_id else fail(1, stderr="Error: No such image")},
                      app=settings(shop, provider="docker"), repeat=False)
    kit = App.load(c)
    chosen = k8s.image_refs(kit)
    assert chosen == {"shop": OLD if expected == "old" else ref}
    assert k8s.image_refs(kit) == chosen  # decided once per run (once per watch cycle)
    assert c.commands == [inspect(ref), inspect(OLD)]
    line = f"image shop: same content as the deployed {OLD} (image ID abababababab): nothing to roll out"
    assert (line in capsys.readouterr().err) == (expected == "old")


@pytest.mark.parametrize("case", ["nothing deployed yet", "the same tag deployed"])
def test_no_image_is_compared_when_there_is_nothing_to_keep(shop: Path, case: str) -> None:
    ref = f"shop:{tag_of(shop)}"
    if case != "nothing deployed yet":
        deployed(shop, ref)
    c = StrictContext({}, app=settings(shop, provider="docker"))
    assert k8s.image_refs(App.load(c)) == {"shop": ref}
    assert c.commands == []


@pytest.mark.parametrize("built", [True, False])
def test_containers_with_synced_files_get_the_new_image_only_once_it_is_built(
        shop: Path, built: bool, capsys: pytest.CaptureFixture[str]) -> None:
    ref = f"shop:{tag_of(shop)}"
    deployed(shop, OLD)
    (shop / ".kit" / "live-dev.json").write_text(json.dumps({"0c1f-uid/web": "shop"}))
    c = StrictContext({inspect(ref): ok(IMAGE_ID + "\n") if built else fail(1, stderr="Error: No such image")},
                      app=settings(shop, provider="docker"))
    assert k8s.image_refs(App.load(c)) == {"shop": ref if built else OLD}
    assert c.commands == [inspect(ref)]  # never compared with the deployed one: the synced files must go
    assert ("is not built: keeping the deployed" in capsys.readouterr().err) == (not built)


@pytest.mark.parametrize("builds", [True, False])
def test_a_dry_run_shows_the_reference_the_real_run_would_apply(shop: Path, builds: bool,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`inv up --dry` would build the new tag, so it shows it; `inv k8s.apply --dry` would not: it keeps the
    deployed one, as the real apply does, and says so."""
    ref = f"shop:{tag_of(shop)}"
    deployed(shop, OLD)
    c = StrictContext({inspect(ref): fail(1, stderr="Error: No such image"), rx(r"^docker build "): ok()},
                      app=settings(shop, provider="docker"), dry=True)
    kit = App.load(c)
    if builds:
        deliver_one(kit, build_one(kit, kit.settings.images[0]))
    assert k8s.image_refs(kit) == {"shop": ref if builds else OLD}
    assert ("is not built: keeping the deployed" in capsys.readouterr().err) == (not builds)


def test_with_a_registry_a_tag_missing_here_is_not_called_unbuilt(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployed(shop, f"reg.example/{OLD}")
    c = StrictContext({rx(r"^docker image inspect "): fail(1, stderr="Error: No such image")},
                      app=settings(shop, provider="registry", registry="reg.example"))
    refs = k8s.image_refs(App.load(c))
    assert refs == {"shop": f"reg.example/shop:{tag_of(shop)}"}  # the registry may have it, pushed from elsewhere
    assert "is not built" not in capsys.readouterr().err


def test_an_identical_rebuild_renders_the_deployed_reference_and_image_tag_still_prints_the_inputs_tag(
        shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployed(shop)
    (shop / "k8s").mkdir()
    (shop / "k8s" / "web.yaml").write_text(DEPLOYED.format(ref="shop"))
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({inspect(ref): ok(IMAGE_ID), inspect(OLD): ok(IMAGE_ID)}, app=settings(shop, provider="docker"))
    documents = k8s.rendered(App.load(c))
    assert [c["image"] for c in documents[0]["spec"]["template"]["spec"]["containers"]] == [OLD, "nginx:1.27"]
    image.tag(c)
    assert capsys.readouterr().out == ref + "\n"


def test_with_a_registry_the_pushed_reference_stays_and_is_pushed_again(shop: Path) -> None:
    registry = "registry.example.com/team"
    deployed(shop, f"{registry}/{OLD}")
    ref = f"shop:{tag_of(shop)}"
    steps = [f"docker tag {ref} {registry}/{ref}", f"docker push {registry}/{ref}",
             inspect(ref), inspect(f"{registry}/{OLD}"),
             f"docker tag {ref} {registry}/{OLD}", f"docker push {registry}/{OLD}"]
    c = StrictContext({inspect(ref): ok(IMAGE_ID), inspect(f"{registry}/{OLD}"): ok(IMAGE_ID),
                       re.compile(r"^docker (tag|push) "): ok()}, app=settings(shop, provider="registry", registry=registry))
    image.load(c)
    assert c.commands == steps  # the node pulls the deployed reference: the registry has it (layers not sent again)
    assert k8s.image_refs(App.load(c)) == {"shop": f"{registry}/{OLD}"}


def test_kind_also_gets_the_deployed_reference(shop: Path) -> None:
    deployed(shop)
    ref = f"shop:{tag_of(shop)}"
    c = StrictContext({inspect(ref): ok(IMAGE_ID), inspect(OLD): ok(IMAGE_ID), re.compile(r"^kind load "): ok()},
                      app=settings(shop, provider="kind", kind_name="dev"))
    image.load(c)
    assert c.commands == [f"kind load docker-image {ref} --name dev", inspect(ref), inspect(OLD),
                          f"kind load docker-image {OLD} --name dev"]


def test_prune_keeps_the_deployed_tag(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployed(shop)
    ref = f"shop:{tag_of(shop)}"
    listed = "\n".join(json.dumps({"Repository": "shop", "Tag": tag, "ID": IMAGE_ID[7:19],
                                    "CreatedAt": f"2024-05-0{day} 10:00:00 +0000 UTC", "CreatedSince": "", "Size": "1"})
                       for tag, day in ((ref.split(":")[1], 9), ("t3", 8), ("t2", 7), (OLD.split(":")[1], 1)))
    c = StrictContext({re.compile(r"^docker image ls "): ok(listed), re.compile(r"^docker image rm "): ok()},
                      app=settings(shop, provider="docker"))
    image.prune(c, keep=1)
    assert c.commands[-1] == "docker image rm shop:t2"
    assert f"  keep    {OLD}  (; deployed: the reference the cluster runs)" in capsys.readouterr().err


# -- the real funnel, stand-ins on PATH, the real Docker engine ------------------------------------


KUBECTL_STANDIN = """#!/bin/sh
# Stand-in for kubectl in tests: answers only the node's container runtime ($FAKE_NODE_RUNTIME).
case "$*" in
  *containerRuntimeVersion*) printf '%s' "$FAKE_NODE_RUNTIME" ;;
  *) echo "kubectl stand-in: not scripted: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A uniquely named app on the real engine, minikube/kind stand-ins first on PATH; images removed after."""
    if not docker_ok():
        pytest.skip("no reachable Docker daemon")
    monkeypatch.setattr(docker_api, "daemon_url", ASK_DAEMON_API)
    name = f"kit-image-d{uuid.uuid4().hex[:10]}"
    root = make_shop(tmp_path / "app", content=f"{name}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(KUBECTL_STANDIN)
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for var, value in {"FAKE_MINIKUBE_LOG": tmp_path / "minikube.log", "FAKE_MINIKUBE_STATE": tmp_path / "minikube",
                       "FAKE_KIND_LOG": tmp_path / "kind.log", "FAKE_KIND_STATE": tmp_path / "kind"}.items():
        monkeypatch.setenv(var, str(value))
    yield root, name
    ids = built_here(root) + subprocess.run(["docker", "image", "ls", "-q", "--filter", f"reference={name}"],
                                            capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "image", "rm", "-f", *sorted(set(ids))], capture_output=True)


def context(app: dict[str, Any]) -> Context:
    merged = copy.deepcopy(DEFAULTS)
    merged.update(app)
    return Context(Config(overrides={"app": merged}))


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def local_id(ref: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True,
                          text=True).stdout.strip()


def test_real_minikube_docker_runtime_builds_with_docker_env_and_loads_nothing(real, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, name = real
    monkeypatch.setenv("FAKE_MINIKUBE_RUNNING", "1")
    monkeypatch.setenv("FAKE_NODE_RUNTIME", "docker://24.0.7")
    c = context(settings(root, name))
    image.build(c)
    image.load(c)
    ref = f"{name}:{tag_of(root)}"
    err = capsys.readouterr().err
    assert f"$ DOCKER_HOST=unix:///var/run/docker.sock docker build --tag {ref}" in err  # minikube's daemon, shown
    assert f"· docker API: image inspect {ref} (unix:///var/run/docker.sock): no such image" \
        in err.splitlines()  # the existence check, without spawning the CLI
    assert not any(line.startswith("$ ") and "image inspect" in line for line in err.splitlines())  # no CLI was run
    assert f"image {ref}: nothing to move — built directly in minikube's Docker daemon" in err
    assert local_id(ref).startswith("sha256:")
    assert calls(tmp_path / "minikube.log") == [["-p", "minikube", "docker-env", "--shell", "none"]]


def test_real_minikube_containerd_loads_verifies_then_moves_nothing(real, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root, name = real
    monkeypatch.setenv("FAKE_MINIKUBE_RUNNING", "1")
    monkeypatch.setenv("FAKE_MINIKUBE_RUNTIME", "containerd")
    monkeypatch.setenv("FAKE_NODE_RUNTIME", "containerd://1.7.2")
    c = context(settings(root, name))
    image.build(c)
    ref = f"{name}:{tag_of(root)}"
    assert f"image {ref}: building in the local Docker daemon" in capsys.readouterr().err
    image.load(c)
    listing = ["-p", "minikube", "image", "ls", "--format", "json"]
    assert calls(tmp_path / "minikube.log") == [listing, ["-p", "minikube", "image", "load", ref], listing]
    assert f"image {ref}: on the node now (minikube image ls: image ID {local_id(ref)[7:19]})" in capsys.readouterr().err

    image.load(c)  # unchanged: one listing, nothing loaded
    assert calls(tmp_path / "minikube.log")[3:] == [listing]
    assert f"image {ref}: 0 bytes moved — `minikube image ls` shows the node already has it with the same image ID " \
           f"{local_id(ref)[7:19]}" in capsys.readouterr().err

    (root / "app" / "hello.txt").write_text("changed\n")
    c = context(settings(root, name))
    image.build(c)
    image.load(c)
    new_ref = f"{name}:{tag_of(root)}"
    assert new_ref != ref and ["-p", "minikube", "image", "load", new_ref] in calls(tmp_path / "minikube.log")


def test_real_minikube_load_failure_shows_its_output_and_a_hint(real, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root, name = real
    monkeypatch.setenv("FAKE_NODE_RUNTIME", "containerd://1.7.2")  # and no minikube profile: every call fails
    c = context(settings(root, name))
    image.build(c)
    with pytest.raises(Exit) as err:
        image.load(c)
    message = str(err.value.message)
    assert f"`minikube image load {name}:{tag_of(root)}` failed (exit 85)" in message
    assert 'Profile "minikube" not found' in message and "fix: check `minikube status`" in message


def test_real_kind_load_then_nothing_to_move(real, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                             capsys: pytest.CaptureFixture[str]) -> None:
    root, name = real
    monkeypatch.setenv("FAKE_KIND_CLUSTERS", "dev")
    c = context(settings(root, name, provider="kind", kind_name="dev"))
    image.build(c)
    image.load(c)
    image.load(c)
    ref = f"{name}:{tag_of(root)}"
    assert calls(tmp_path / "kind.log") == [["load", "docker-image", ref, "--name", "dev"]] * 2
    err = capsys.readouterr().err
    assert f"image {ref}: loaded into kind cluster 'dev' (dev-control-plane)" in err
    assert f"image {ref}: 0 bytes moved — kind found the same image ID on every node of 'dev'" in err

    monkeypatch.setenv("FAKE_KIND_CLUSTERS", "other")
    with pytest.raises(Exit) as failed:
        image.load(c)
    assert 'no nodes found for cluster "dev"' in str(failed.value.message)
    assert "kind create cluster --name dev" in str(failed.value.message)
