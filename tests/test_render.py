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


def test_a_duplicate_key_in_a_manifest_names_both_lines() -> None:
    text = "kind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  replicas: 3\n"
    with pytest.raises(KitError) as err:
        render.parse([src(text)])
    assert err.value.message == "k8s/a.yaml:6:3: duplicate key 'replicas': at line 5 and again at line 6"


def test_a_duplicate_key_in_a_flow_mapping_on_one_line_is_found() -> None:
    with pytest.raises(KitError, match="duplicate key 'name': at line 2 and again at line 2"):
        render.parse([src("kind: ConfigMap\nmetadata: {name: a, name: b}\n")])


def test_merge_keys_and_plain_aliases_still_load() -> None:
    text = ("kind: ConfigMap\nmetadata: {name: a}\nx: &base {a: 1, b: 2}\ndata:\n  <<: *base\n  b: 3\n"
            "again: *base\n")
    [doc] = render.parse([src(text)])
    assert doc["data"] == {"a": 1, "b": 3} and doc["again"] == {"a": 1, "b": 2}


def test_an_alias_bomb_is_refused_naming_the_file() -> None:
    levels = "".join(f"{new}: &{new} [{', '.join(['*' + old] * 9)}]\n" for old, new in zip("abcdefgh", "bcdefghi", strict=True))
    text = "kind: ConfigMap\nmetadata: {name: a}\na: &a [x, x, x, x, x, x, x, x, x]\n" + levels
    with pytest.raises(KitError) as err:
        render.parse([src(text, "k8s/bomb.yaml")])
    assert err.value.message.startswith("k8s/bomb.yaml:1:1: its aliases expand it by")
    assert "alias bomb" in err.value.message and err.value.code == 2


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(KitError, match="k8s/a.yaml:3:4: an alias refers to a value that contains it"):
        render.parse([src("kind: ConfigMap\nmetadata: {name: a}\nx: &x [1, *x]\n")])


def test_a_manifest_file_over_the_size_limit_is_refused_before_parsing() -> None:
    big = "kind: ConfigMap\nmetadata: {name: big}\ndata: {k: " + "x" * render.MAX_MANIFEST_BYTES + "}\n"
    with pytest.raises(KitError) as err:
        render.parse([src(big, "k8s/big.yaml")])
    assert err.value.message == "k8s/big.yaml: 4.0 MB, more than the 4 MB the kit parses in one manifest file"
    assert "split it" in err.value.hint
    assert render.parse([src("kind: ConfigMap\nmetadata: {name: small}\n")])  # a normal file is parsed


def test_an_explicit_namespace_replaced_by_the_environments_is_warned_once_per_object() -> None:
    origins: dict[int, Path] = {}
    docs = render.parse([src("kind: Service\nmetadata: {name: web, namespace: legacy}\n---\n"
                             "kind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\n---\n"
                             "kind: Secret\nmetadata: {name: s}\n", "k8s/web.yaml")], origins)
    warnings = render.label(docs, "shop", "dev", "shop", origins)
    assert warnings == ["k8s/web.yaml: Service/web says namespace 'legacy'; the environment's namespace 'shop' is used "
                        "instead (every object goes to the environment's namespace)"]
    assert [d["metadata"]["namespace"] for d in docs] == ["shop", "shop", "shop"]


def test_without_an_environment_namespace_an_explicit_one_is_kept_silently() -> None:
    docs = render.parse([src("kind: Service\nmetadata: {name: web, namespace: legacy}\n")])
    assert render.label(docs, "shop", "dev") == []
    assert docs[0]["metadata"]["namespace"] == "legacy"


# -- mutation gaps (#13 item 30): each test fails on a code change that gives a wrong result --------------


def test_retagging_goes_on_past_a_third_party_container_listed_first() -> None:
    docs = render.parse([src("kind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: wait, image: busybox:1}]\n"
                             "  containers: [{name: proxy, image: 'nginx:1.25'}, {name: web, image: demoapp},"
                             " {name: sidecar, image: 'redis:7'}, {name: worker, image: 'demoapp:old'}]\n")])
    changes = render.set_images(docs, {"demoapp": "demoapp:abc"})
    assert [c["image"] for c in render.containers(docs[0])] == ["busybox:1", "nginx:1.25", "demoapp:abc", "redis:7",
                                                                 "demoapp:abc"]
    assert changes == ["Pod/p web: demoapp:abc", "Pod/p worker: demoapp:abc"]


def test_a_manifest_already_naming_the_registry_is_retargeted() -> None:
    docs = render.parse([src("kind: Pod\nmetadata: {name: p}\n"
                             "spec: {containers: [{name: web, image: 'registry.local:5000/team/demoapp:old'}]}\n")])
    changes = render.set_images(docs, {"demoapp": "registry.local:5000/team/demoapp:abc"})
    assert docs[0]["spec"]["containers"][0] == {"name": "web", "image": "registry.local:5000/team/demoapp:abc",
                                                "imagePullPolicy": "IfNotPresent"}
    assert changes == ["Pod/p web: registry.local:5000/team/demoapp:abc"]
    other = render.parse([src("kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: web, image: 'quay.io/x/demoapp:1'}]}\n")])
    assert render.set_images(other, {"demoapp": "registry.local:5000/team/demoapp:abc"}) == []


def test_every_workload_kind_is_waited_for_in_order() -> None:
    docs = [{"kind": "StatefulSet", "metadata": {"name": "db"}}, {"kind": "ConfigMap", "metadata": {"name": "c"}},
            {"kind": "DaemonSet", "metadata": {"name": "agent"}}, {"kind": "Deployment", "metadata": {"name": "web"}},
            {"kind": "Job", "metadata": {"name": "setup"}}, {"kind": "Deployment", "metadata": {}},
            {"kind": "CronJob", "metadata": {"name": "nightly"}}]
    assert render.workloads(docs) == ["statefulset/db", "daemonset/agent", "deployment/web", "job/setup"]


@pytest.mark.parametrize("kind", sorted(render.CLUSTER_SCOPED))
def test_cluster_scoped_kinds_get_no_namespace(kind: str) -> None:
    docs = [{"kind": kind, "metadata": {"name": "x"}}]
    assert render.label(docs, "demo", "dev", "demo-dev") == [] and "namespace" not in docs[0]["metadata"]


def test_cluster_scoped_kinds_are_all_listed() -> None:
    assert {
        "Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "CustomResourceDefinition",
        "IngressClass", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
        "Node", "CSIDriver", "RuntimeClass"} == render.CLUSTER_SCOPED


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"])
def test_the_pods_of_every_pod_owner_are_labelled_keeping_their_own_labels(kind: str) -> None:
    docs = [{"kind": kind, "metadata": {"name": "w"},
             "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}}},
            {"kind": kind, "metadata": {"name": "bare"}, "spec": {"template": {"spec": {}}}}]
    render.label(docs, "demo", "qa")
    assert docs[0]["spec"]["template"]["metadata"]["labels"] == {"app": "web", render.LABEL: "demo",
                                                                  render.ENV_LABEL: "qa"}
    assert docs[1]["spec"]["template"]["metadata"]["labels"] == {render.LABEL: "demo", render.ENV_LABEL: "qa"}


def test_a_jobs_pod_template_is_left_alone() -> None:
    docs = [{"kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}]
    render.label(docs, "demo", "dev")
    assert docs[0]["spec"]["template"]["metadata"]["labels"] == {"a": "b"}


def test_tls_secret_names_per_environment() -> None:
    assert render.tls_secret("demo", "dev") == "demo-tls"
    assert render.tls_secret("demo", "qa") == "demo-qa-tls"
    assert render.tls_secret("demo", "qa", "mine") == "mine"


def test_secret_document_and_masking() -> None:
    secret = render.secret_document("db", {"PASSWORD": "s3cret"})
    assert secret == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque",
                      "stringData": {"PASSWORD": "s3cret"}}
    encoded = {"kind": "Secret", "metadata": {"name": "e"}, "data": {"TOKEN": "czNjcmV0"}}
    shown = render.masked([secret, encoded, {"kind": "ConfigMap", "data": {"a": "1"}}])
    assert shown[0]["stringData"] == {"PASSWORD": "****"} and shown[1]["data"] == {"TOKEN": "****"}
    assert shown[2]["data"] == {"a": "1"} and secret["stringData"] == {"PASSWORD": "s3cret"}


def test_a_manifest_exactly_at_the_size_limit_is_read() -> None:
    render.check_size(src("a" * 10), limit=10)
    with pytest.raises(KitError):
        render.check_size(src("a" * 11), limit=10)


def test_every_builtin_placeholder_is_declared_and_filled() -> None:
    text = "host: ${INGRESS_HOST}\nip: ${MINIKUBE_IP}\nsecretName: ${TLS_SECRET}\n"
    assert render.undeclared([src(text)], render.BUILTIN_VARS) == []
    values = {"INGRESS_HOST": "demo.1.2.3.4.nip.io", "MINIKUBE_IP": "1.2.3.4", "TLS_SECRET": "demo-tls"}
    [out] = render.substitute([src(text)], render.BUILTIN_VARS, values)
    assert yaml.safe_load(out.text) == {"host": "demo.1.2.3.4.nip.io", "ip": "1.2.3.4", "secretName": "demo-tls"}


def test_dump_keeps_the_manifests_key_order_in_block_style() -> None:
    docs = render.parse([src("kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\ndata: {b: '2', a: '1'}\n---\n"
                             "kind: Secret\nmetadata: {name: s}\n")])
    assert render.dump(docs) == ("kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: c\ndata:\n  b: '2'\n  a: '1'\n"
                                 "---\nkind: Secret\nmetadata:\n  name: s\n")


# -- a ConfigMap or Secret change rolls the pods that read it --------------------------------------


def config_map(name: str, **data: str) -> dict:
    return {"kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def workload(kind: str, name: str, pod: dict) -> dict:
    return {"kind": kind, "metadata": {"name": name}, "spec": {"template": {"metadata": {"labels": {"app": name}},
                                                                         "spec": pod}}}


def env_from(name: str) -> dict:
    return {"containers": [{"name": "main", "envFrom": [{"configMapRef": {"name": name}}]}]}


def config_hash(doc: dict) -> str | None:
    return (doc["spec"]["template"].get("metadata") or {}).get("annotations", {}).get(render.CONFIG_HASH)


def test_a_workload_reading_a_config_map_of_the_set_carries_a_hash_of_its_content() -> None:
    first = [config_map("settings", GREETING="hi"), workload("Deployment", "web", env_from("settings"))]
    same = [config_map("settings", GREETING="hi"), workload("Deployment", "web", env_from("settings"))]
    changed = [config_map("settings", GREETING="hello"), workload("Deployment", "web", env_from("settings"))]
    for documents in (first, same, changed):
        render.hash_config(documents)
    assert config_hash(first[1]) == config_hash(same[1]) and len(config_hash(first[1]) or "") == 16
    assert config_hash(changed[1]) != config_hash(first[1])
    assert first[1]["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # the rest is kept


@pytest.mark.parametrize("pod", [
    {"containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}}]}]},
    {"initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cfg"}}]}], "containers": [{"name": "c"}]},
    {"containers": [{"name": "c"}], "volumes": [{"name": "v", "configMap": {"name": "cfg"}}]},
    {"containers": [{"name": "c"}], "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": "cfg"}}]}}]},
])
def test_every_way_a_pod_reads_a_config_map_counts(pod: dict) -> None:
    assert render.config_reads(pod) == {("ConfigMap", "cfg")}


def test_a_secret_change_rolls_its_readers_and_its_value_is_not_written() -> None:
    def documents(password: str) -> list[dict]:
        secret = {"kind": "Secret", "metadata": {"name": "db"}, "stringData": {"PASSWORD": password}}
        pod = {"containers": [{"name": "c", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "PASSWORD"}}}]}],
               "volumes": [{"name": "v", "secret": {"secretName": "db"}}]}
        return [secret, workload("StatefulSet", "db", pod)]

    old, new = documents("s3cret-one"), documents("s3cret-two")
    render.hash_config(old)
    render.hash_config(new)
    assert config_hash(old[1]) != config_hash(new[1])
    assert "s3cret" not in yaml.safe_dump(old[1])


def test_malformed_fields_and_odd_keys_do_not_stop_the_hash() -> None:
    odd = {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {1: "a", "b": None}}
    pod = {"containers": [{"name": "c", "env": 5, "envFrom": True}, "not a container"], "volumes": 1,
           "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cfg"}}]}]}
    documents = [odd, workload("DaemonSet", "agent", pod)]
    render.hash_config(documents)
    assert config_hash(documents[1])


def test_jobs_workloads_reading_nothing_and_objects_outside_the_set_get_no_hash() -> None:
    documents = [config_map("settings", A="1"), workload("Job", "migrate", env_from("settings")),
                 workload("Deployment", "plain", {"containers": [{"name": "c"}]}),
                 workload("Deployment", "elsewhere", env_from("made-by-hand")),
                 {"kind": "Deployment", "metadata": {"name": "broken"}, "spec": None}]
    render.hash_config(documents)
    assert [config_hash(d) for d in documents[1:4]] == [None, None, None]
    assert documents[4]["spec"] is None
