"""Rendering: strict placeholders, unsafe values, parse errors, image tags, labels, stable order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devloop.core import render
from devloop.core.errors import KitError
from devloop.core.render import Source


def src(text: str, name: str = "k8s/a.yaml") -> Source:
    return Source(Path(name), text)


def test_declared_placeholders_are_filled_and_others_left_alone() -> None:
    sources = [src("host: app.${MINIKUBE_IP}.nip.io\ncmd: echo ${HOME} $PATH $${X}\n")]
    out = render.substitute(sources, {"MINIKUBE_IP"}, {"MINIKUBE_IP": "192.168.49.2"})
    assert out[0].text == "host: app.192.168.49.2.nip.io\ncmd: echo ${HOME} $PATH $${X}\n"


def test_every_undefined_placeholder_reported_with_file_and_line() -> None:
    sources = [src("a: ${A}\nb: ${B}\n", "k8s/one.yaml"), src("\n\nc: ${C} ${A}\n", "k8s/two.yaml")]
    with pytest.raises(KitError) as err:
        render.substitute(sources, {"A", "B", "C"}, {"B": "ok"})
    text = err.value.message
    assert "k8s/one.yaml:1: ${A} is not defined" in text
    assert "k8s/two.yaml:3: ${C} is not defined" in text
    assert "k8s/two.yaml:3: ${A} is not defined" in text
    assert "${B}" not in text
    assert "--set" in err.value.hint


@pytest.mark.parametrize("value,reason", [
    ("a\nb", "line break"), ("x: y", "mapping"), ("v #c", "comment"), ("*anchor", "indicator"),
    ('say "hi"', "quote"), (" padded", "space"), ("[1,2]", "indicator"), ("a,b{", "flow"),
])
def test_unsafe_values_are_rejected_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(KitError) as err:
        render.substitute([src("k: ${V}\n")], {"V"}, {"V": value}, {"V": "--set"})
    assert "the value of V (from --set)" in err.value.message
    assert reason in err.value.message


@pytest.mark.parametrize("value", ["192.168.49.2", "registry.local:5000/app", "a/b&c", "p@ss=w0rd~%", "x:y"])
def test_values_sed_would_break_on_render_fine(value: str) -> None:
    out = render.substitute([src("k: pre-${V}-post\n")], {"V"}, {"V": value})
    assert yaml.safe_load(out[0].text) == {"k": f"pre-{value}-post"}


def test_resolve_takes_the_first_layer_and_asks_the_cluster_last_and_lazily() -> None:
    asked: list[str] = []

    def facts(name: str) -> str | None:
        asked.append(name)
        return "10.0.0.1" if name == "MINIKUBE_IP" else None

    values, origin = render.resolve(["A", "B", "MINIKUBE_IP", "Z"],
                                    [("--set", {"A": "set"}), ("env", {"A": "env", "B": "env"}), ("vars", {"B": "v"})],
                                    facts)
    assert values == {"A": "set", "B": "env", "MINIKUBE_IP": "10.0.0.1"}
    assert origin["A"] == "--set" and origin["MINIKUBE_IP"] == "cluster"
    assert asked == ["MINIKUBE_IP", "Z"]


def test_parse_error_names_file_line_and_parser_words() -> None:
    with pytest.raises(KitError) as err:
        render.parse([src("kind: A\nmetadata:\n  name: x\n   bad: indent\n", "k8s/broken.yaml")])
    assert err.value.message.startswith("k8s/broken.yaml:4:")
    assert "mapping values are not allowed" in err.value.message


def test_tab_indented_manifest_gets_tab_hint() -> None:
    with pytest.raises(KitError) as err:
        render.parse([src("kind: A\nmetadata:\n\tname: x\n")])
    assert "tabs" in err.value.hint


def test_parse_multi_document_and_lists_and_rejects_non_objects() -> None:
    docs = render.parse([src("kind: A\n---\n---\nkind: List\nitems:\n- kind: B\n- kind: C\n")])
    assert [d["kind"] for d in docs] == ["A", "B", "C"]
    with pytest.raises(KitError, match="not a Kubernetes object"):
        render.parse([src("just: data\n")])


def test_manifest_files_sorted_recursive_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("")
    (tmp_path / "a.yml").write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yaml").write_text("")
    assert [p.relative_to(tmp_path).as_posix() for p in render.manifest_files(tmp_path)] == ["a.yml", "b.yaml", "sub/c.yaml"]
    with pytest.raises(KitError, match="does not exist"):
        render.manifest_files(tmp_path / "nope")


WORKLOADS = """
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers: [{name: migrate, image: demoapp}]
      containers: [{name: web, image: "demoapp:0.0.1"}, {name: proxy, image: nginx:1.25}]
---
kind: CronJob
metadata: {name: nightly}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: demoapp:latest}]}}}}}
---
kind: Job
metadata: {name: setup}
spec: {template: {spec: {containers: [{name: c, image: "demoapp@sha256:abc"}]}}}
---
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c, image: mysql:5.7}]}
"""


def test_our_image_gets_the_built_tag_everywhere_and_third_party_is_untouched() -> None:
    docs = render.parse([src(WORKLOADS)])
    changes = render.set_images(docs, {"demoapp": "demoapp:3f2a1b"})
    images = [(c["name"], c["image"], c.get("imagePullPolicy")) for d in docs for c in render.containers(d)]
    assert images == [
        ("migrate", "demoapp:3f2a1b", "IfNotPresent"), ("web", "demoapp:3f2a1b", "IfNotPresent"),
        ("proxy", "nginx:1.25", None), ("c", "demoapp:3f2a1b", "IfNotPresent"),
        ("c", "demoapp:3f2a1b", "IfNotPresent"), ("c", "mysql:5.7", None),
    ]
    assert len(changes) == 4


def test_registry_qualified_reference_replaces_the_plain_name() -> None:
    docs = render.parse([src(WORKLOADS)])
    render.set_images(docs, {"demoapp": "registry.local:5000/team/demoapp:abc"})
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local:5000/team/demoapp:abc"


@pytest.mark.parametrize("ref,repo", [("demoapp", "demoapp"), ("demoapp:1", "demoapp"),
                                      ("reg:5000/a/b:2", "reg:5000/a/b"), ("reg:5000/a", "reg:5000/a"),
                                      ("a@sha256:00", "a")])
def test_image_repository(ref: str, repo: str) -> None:
    assert render.image_repository(ref) == repo


def test_labels_and_namespace_skip_cluster_scoped_objects() -> None:
    docs = [{"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "x"}}},
            {"kind": "Namespace", "metadata": {"name": "ns"}}]
    render.label(docs, "demo", "qa", "demo-qa")
    assert docs[0]["metadata"] == {"name": "c", "labels": {"app": "x", render.LABEL: "demo", render.ENV_LABEL: "qa"},
                                   "namespace": "demo-qa"}
    assert "namespace" not in docs[1]["metadata"]


def test_workloads_listed_in_order() -> None:
    docs = render.parse([src(WORKLOADS)])
    assert render.workloads(docs) == ["deployment/web", "job/setup"]


def test_ingress_host_and_tls_secret_differ_per_environment() -> None:
    assert render.ingress_host("demoapp", "dev", "192.168.49.2") == "demoapp.192.168.49.2.nip.io"
    assert render.ingress_host("demoapp", "qa", "192.168.49.2") == "demoapp-qa.192.168.49.2.nip.io"
    assert render.ingress_host("d", "qa", "1.2.3.4", "x.${MINIKUBE_IP}.nip.io") == "x.1.2.3.4.nip.io"
    assert render.tls_secret("demoapp", "dev") != render.tls_secret("demoapp", "staging")


def test_undeclared_uppercase_placeholders_found_for_warnings() -> None:
    found = render.undeclared([src("a: ${MINIKUBE_PI}\n# ${IGNORED_IN_COMMENT}\n")], {"MINIKUBE_IP"})
    assert [(u.name, u.line) for u in found] == [("MINIKUBE_PI", 1)]
