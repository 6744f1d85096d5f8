"""Configuration: file checks with line numbers, unknown keys, typed settings, .env parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.core.config import DEFAULTS, check_yaml_file, read_dotenv, settings_from, unknown_keys
from devloop.core.errors import KitError


@pytest.mark.parametrize(("text", "said"), [
    # a bracket left open: the line it opens on, and where the parser stopped
    ("app:\n  name: x\n  images: [a\n  bad: : :\n", "3:11: invalid YAML: while parsing a flow sequence that starts "
     "here: expected ',' or ']', but got ':' (line 4, column 6)"),
    ("app:\n  name: x\n  timeout: 3\n manifests: [k8s]\n", "4:2: invalid YAML:"),  # not where the mapping began
    ("app:\n  name: x\n    images: {}\n", "3:11: invalid YAML: mapping values are not allowed here"),
])
def test_malformed_yaml_names_file_line_and_column(tmp_path: Path, text: str, said: str) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text(text)
    with pytest.raises(KitError) as err:
        check_yaml_file(config)
    assert f"{config}:{said}" in err.value.message


def test_tab_indentation_gets_the_tab_hint(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n\tname: x\n")
    with pytest.raises(KitError) as err:
        check_yaml_file(config)
    assert ":2:" in err.value.message
    assert "tabs" in err.value.hint


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("- a\n- b\n")
    with pytest.raises(KitError, match="expected a mapping"):
        check_yaml_file(config)


def test_missing_config_file_is_empty(tmp_path: Path) -> None:
    assert check_yaml_file(tmp_path / "invoke.yaml") == {}


def test_unknown_keys_with_suggestions_at_every_level() -> None:
    found = dict(unknown_keys({"imgaes": {}, "cluster": {"provder": "kind", "minikube": {"cpu": 2}},
                               "images": {"web": {"dockerfil": "x"}}}))
    assert "app.imgaes" in found and "images" in found["app.imgaes"]
    assert "provider" in found["app.cluster.provder"]
    assert "cpus" in found["app.cluster.minikube.cpu"]
    assert "dockerfile" in found["app.images.web.dockerfil"]


def test_user_named_mappings_are_not_config_keys() -> None:
    assert unknown_keys({"vars": {"ANYTHING": 1}, "images": {"any-name": {}},
                         "environments": {"qa": {"namespace": "x"}}, "secrets": {"s": "f.env"}}) == []


def test_unknown_key_error_names_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n  name: x\n  timout: 3\n")
    with pytest.raises(KitError) as err:
        settings_from({"name": "x", "timout": 3}, tmp_path, config)
    assert f"{config}:3: unknown config key app.timout; did you mean 'timeout'?" in err.value.message
    assert err.value.code == 2


def test_a_bad_value_from_an_environment_variable_names_the_variable_not_the_line_it_overrides(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n  name: x\n  timeout: 30\n  cluster:\n    provider: minikube\n")
    app = {"name": "x", "timeout": -5, "cluster": {"provider": "kinda"}}
    with pytest.raises(KitError) as err:
        settings_from(app, tmp_path, config, from_env={"app.timeout": "INVOKE_APP_TIMEOUT",
                                                       "app.cluster.provider": "INVOKE_APP_CLUSTER_PROVIDER"})
    lines = err.value.message.splitlines()
    assert lines[0] == "the configuration has 2 problem(s):"  # neither is invoke.yaml's
    assert "  - INVOKE_APP_TIMEOUT (in the shell or .env): app.timeout must be greater than 0, got -5" in lines
    assert any(line.startswith("  - INVOKE_APP_CLUSTER_PROVIDER (in the shell or .env): app.cluster.provider is 'kinda'")
               for line in lines)
    assert not any(f"{config}:3:" in line or f"{config}:5:" in line for line in lines)


def test_misspelt_keys_inside_live_update_are_reported_with_the_rest_and_their_lines(tmp_path: Path) -> None:
    from devloop.core.schema import key_line

    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n  images:\n    web:\n      dockerfil: Dockerfile\n      live_update:\n        synk: []\n"
                      "        sync:\n          - {src: app, dst: /app}\n")
    app = {"images": {"web": {"dockerfil": "Dockerfile", "live_update": {"synk": [], "sync": [{"src": "app", "dst": "/app"}]}}}}
    found = unknown_keys(app)
    assert [key for key, _ in found] == ["app.images.web.dockerfil", "app.images.web.live_update.synk",
                                         "app.images.web.live_update.sync[0].dst"]
    assert [key_line(config, key) for key, _ in found] == [4, 6, 8]
    assert key_line(config, "app.images.web.live_update.sync[3]") is None


def test_bad_numbers_provider_driver_and_memory_all_reported_at_once(tmp_path: Path) -> None:
    app = {"timeout": "soon", "cluster": {"provider": "minikub", "minikube": {"cpus": "two", "driver": "hyperkitt",
                                                                           "memory": "lots"}}}
    with pytest.raises(KitError) as err:
        settings_from(app, tmp_path)
    text = err.value.message
    assert "app.timeout must be a whole number, got 'soon'" in text
    assert "app.cluster.minikube.cpus must be a whole number, got 'two'" in text
    assert "'minikube'" in text  # did-you-mean for the provider
    assert "driver 'hyperkitt' is not a minikube driver; did you mean 'hyperkit'?" in text
    assert "memory must be a size" in text


def test_settings_resolve_paths_relative_to_root(tmp_path: Path) -> None:
    s = settings_from({"name": "demo", "images": {"demo": {"context": "src", "build_args": {"A": 1}}},
                       "manifests": ["k8s", "more"]}, tmp_path)
    image = s.image("demo")
    assert image.context == (tmp_path / "src").resolve()
    assert image.dockerfile == (tmp_path / "src" / "Dockerfile").resolve()
    assert image.build_args == {"A": "1"}
    assert s.manifests == (tmp_path / "k8s", tmp_path / "more")
    assert s.selector == "app=demo"
    assert s.cluster.minikube.cpus == DEFAULTS["cluster"]["minikube"]["cpus"]


def test_environment_overrides_namespace_manifests_and_vars(tmp_path: Path) -> None:
    app = {"name": "demo", "vars": {"A": "1", "B": "2"},
           "environments": {"dev": {}, "qa": {"namespace": "demo-qa", "manifests": ["k8s-qa"], "vars": {"B": "3"}}}}
    s = settings_from(app, tmp_path, env="qa")
    assert (s.env, s.namespace, s.manifests, s.vars) == ("qa", "demo-qa", (tmp_path / "k8s-qa",), {"A": "1", "B": "3"})


def test_unknown_environment_is_named_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(KitError) as err:
        settings_from({"environments": {"dev": {}, "staging": {}}}, tmp_path, env="stagign")
    assert "unknown environment 'stagign'; did you mean 'staging'?" in err.value.message
    assert "dev, staging" in err.value.message


def test_unknown_image_lists_configured_ones(tmp_path: Path) -> None:
    s = settings_from({"images": {"web": {}}}, tmp_path)
    with pytest.raises(KitError, match="known: web"):
        s.image("wbe")


def test_context_allow_list_globs(tmp_path: Path) -> None:
    cluster = settings_from({}, tmp_path).cluster
    assert cluster.context_allowed("minikube")
    assert cluster.context_allowed("kind-dev")
    assert not cluster.context_allowed("gke_prod_cluster")


def test_dotenv_reports_unparseable_lines_by_number(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\nexport B='x y'\nthis is not a line\nC=\"q\"\n")
    parsed = read_dotenv(env)
    assert parsed.values == {"A": "1", "B": "x y", "C": "q"}
    assert len(parsed.errors) == 1 and f"{env}:3:" in parsed.errors[0]


def test_missing_dotenv_is_empty(tmp_path: Path) -> None:
    parsed = read_dotenv(tmp_path / ".env")
    assert (parsed.values, parsed.errors) == ({}, [])


@pytest.mark.parametrize("app,named", [
    ({"images": {"web": "x"}}, "app.images.web must be a mapping"),
    ({"environments": {"dev": "x"}}, "app.environments.dev must be a mapping"),
    ({"vars": ["a"]}, "app.vars must be a mapping"),
    ({"secrets": "s"}, "app.secrets must be a mapping"),
    ({"cluster": "kind"}, "app.cluster must be a mapping"),
    ({"cluster": {"minikube": 3}}, "app.cluster.minikube must be a mapping"),
])
def test_a_value_that_should_be_a_mapping_is_a_reported_problem(tmp_path: Path, app: dict, named: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(KitError) as err:
        settings_from(app, tmp_path)
    assert named in err.value.message


def test_lists_from_the_environment_split_on_commas_only(tmp_path: Path) -> None:
    s = settings_from({"forwards": "svc/web 3000:80, svc/db 3306"}, tmp_path)
    assert s.forwards == ("svc/web 3000:80", "svc/db 3306")


def test_a_relative_root_is_resolved_against_the_kit_folder(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    s = settings_from({"root": "sub"}, tmp_path)
    assert s.root == (tmp_path / "sub").resolve() and s.name == "sub"


def test_problems_from_every_section_are_reported_together(tmp_path: Path) -> None:
    app = {"environments": {"dev": {"vars": ["x"]}}, "images": {"web": {"build_args": ["A"]}}, "manifests": 3,
           "cluster": {"allowed_contexts": {"a": 1}, "minikube": {"addons": 5}}, "watch": {"debounce_ms": 0},
           "logs": "x", "workloads": {"a": 1}, "compose": ["x"]}
    with pytest.raises(KitError) as err:
        settings_from(app, tmp_path)
    lines = err.value.message.splitlines()
    assert lines[0] == "the configuration has 9 problem(s):"
    assert lines[1:] == [
        "  - app.images.web.build_args must be a mapping NAME: value, got ['A']",
        "  - app.manifests must be a list, got 3",
        "  - app.environments.dev.vars must be a mapping (key: value lines indented under it), got ['x']",
        "  - app.cluster.allowed_contexts must be a list, got {'a': 1}",
        "  - app.cluster.minikube.addons must be a list, got 5",
        "  - app.watch.debounce_ms must be greater than 0, got 0",
        "  - app.logs must be a mapping (key: value lines indented under it), got 'x'",
        "  - app.workloads must be a list, got {'a': 1}",
        "  - app.compose must be a mapping (key: value lines indented under it), got ['x']",
    ]


def test_a_duplicate_key_in_invoke_yaml_names_both_lines(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n  name: shop\n  timeout: 60\n  forwards: []\n  timeout: 120\n")
    with pytest.raises(KitError) as err:
        check_yaml_file(config)
    assert err.value.message == f"{config}:5:3: duplicate key 'timeout': at line 3 and again at line 5"
    assert "keep one" in err.value.hint


def test_yaml_merge_keys_are_no_duplicates(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("x-base: &base {timeout: 60, name: shop}\napp:\n  <<: *base\n  timeout: 120\n")
    assert check_yaml_file(config)["app"] == {"timeout": 120, "name": "shop"}


def test_a_latin1_env_file_names_line_column_and_byte_not_the_value(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"A=1\nPASSWORD=s\xe9cret\n")
    with pytest.raises(KitError) as err:
        read_dotenv(env)
    assert err.value.message == f"{env}:2:11: byte 0xe9 is not UTF-8 (the kit reads this file as UTF-8)"
    assert "cret" not in err.value.message and "iconv -f latin1 -t utf-8 .env" in err.value.hint
