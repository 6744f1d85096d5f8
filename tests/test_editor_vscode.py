"""`inv editor.vscode`: .vscode/tasks.json from the collection, VS Code's schema keys, problem matchers that
match the kit's real messages, and regeneration that keeps the user's own entries. Also shell completion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO, inv, make_app

from devloop.core import vscode as core
from devloop.core.config import check_yaml_file, settings_from
from devloop.core.errors import KitError

INFOS = [core.TaskInfo("k8s.render", "Print the rendered YAML."), core.TaskInfo("watch", "Rebuild on change."),
         core.TaskInfo("up", "Build, deliver, apply, wait."), core.TaskInfo("dev", "Up, logs and watch.")]


def by_label(doc: dict, label: str) -> dict:
    return next(t for t in doc["tasks"] if t["label"] == label)


def test_one_entry_per_task_up_is_the_default_build_task() -> None:
    doc = core.merge(None, core.generated_tasks(INFOS))
    assert doc["version"] == "2.0.0"
    assert [t["label"] for t in doc["tasks"]] == ["inv up", "inv dev", "inv watch", "inv k8s.render"]
    up = by_label(doc, "inv up")
    assert up["group"] == {"kind": "build", "isDefault": True}
    assert (up["type"], up["command"], up["args"]) == ("shell", "inv", ["up"])
    assert up["detail"] == f"Build, deliver, apply, wait. {core.MARK}"
    assert not core.schema_problems(doc)
    json.loads(core.render(doc))


def test_dev_and_watch_are_background_tasks_with_cycle_patterns() -> None:
    doc = core.merge(None, core.generated_tasks(INFOS))
    for label in ("inv dev", "inv watch"):
        task = by_label(doc, label)
        assert task["isBackground"] is True
        for matcher in task["problemMatcher"]:
            assert matcher["background"] == {"activeBegins": True, "beginsPattern": core.CYCLE_BEGINS,
                                             "endsPattern": core.CYCLE_ENDS}
    assert "isBackground" not in by_label(doc, "inv k8s.render")


def test_only_keys_of_vs_codes_schema_are_used() -> None:
    doc = core.merge(None, core.generated_tasks(INFOS, "${workspaceFolder}/examples/hello"))
    for task in doc["tasks"]:
        assert set(task) <= core.TASK_KEYS
        assert task["options"] == {"cwd": "${workspaceFolder}/examples/hello"}
        for matcher in task["problemMatcher"]:
            assert set(matcher) <= core.MATCHER_KEYS and set(matcher["pattern"]) <= core.PATTERN_KEYS
            assert matcher["fileLocation"] == ["autoDetect", "${workspaceFolder}/examples/hello"]
    bad = {"version": "2.0.0", "tasks": [dict(by_label(doc, "inv up"), runWhen="always", group={"kind": "build",
                                                                                                   "isDefault": True}),
                                         dict(by_label(doc, "inv dev"), group={"kind": "build", "isDefault": True})]}
    problems = core.schema_problems(bad)
    assert "inv up: key 'runWhen' is not in the schema" in problems and "more than one default build task" in problems


def location(line: str) -> tuple[str | None, str, str, str | None, str] | None:
    match = re.match(core.LOCATION_REGEXP, line)
    return match.groups() if match else None  # type: ignore[return-value]


def test_location_matcher_matches_the_kits_real_messages(tmp_path: Path) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text("app:\n  name: demo\n  imagez: {}\n")
    with pytest.raises(KitError) as caught:
        settings_from({"imagez": {}}, tmp_path, config)
    config_line = next(x for x in caught.value.render().splitlines() if "unknown config key" in x)
    assert location(config_line)[1:3] == (str(config), "3")

    broken = tmp_path / "k8s.yaml"
    broken.write_text("a: 1\n  b: [\n")
    with pytest.raises(KitError) as caught:
        check_yaml_file(broken)
    severity, file, line, column, message = location(caught.value.render().splitlines()[0])
    assert (severity, file, line) == ("error", str(broken), "2") and column and "invalid YAML" in message

    warning = f"warning: {tmp_path}/k8s/web.yaml:12: ${{FOO}} is not declared in app.vars; left as it is"
    assert location(warning) == ("warning", f"{tmp_path}/k8s/web.yaml", "12", None,
                                 "${FOO} is not declared in app.vars; left as it is")
    assert location("  - k8s/web.yaml:4: ${MINIKUBE_IPP} is not defined")[1:3] == ("k8s/web.yaml", "4")


@pytest.mark.parametrize("line", [
    "error: command failed (exit 1): kubectl --context k8s-local apply -f .kit/rendered-dev.yaml",
    "  | 12:30:01 web.1 | started with pid 19670",
    "$ docker build --tag hello:abc --file /app/Dockerfile /app",
    "timings: build 1.0s  deliver 0.0s  total 3.0s",
    "  fix: stop it (kill 1234), or map another local port",
    "store: 127.0.0.1:6379 -> 6379/tcp",
])
def test_location_matcher_ignores_other_output(line: str) -> None:
    assert location(line) is None


def test_lint_matcher_matches_lint_findings() -> None:
    from devloop.core.lint import Finding

    finding = Finding("/app/k8s/web.yaml Deployment/web", "selector does not match the template labels", "fix it")
    match = re.match(core.LINT_REGEXP, str(finding).splitlines()[0])
    assert match and match.group(1) == "/app/k8s/web.yaml" and match.group(4) == "error"
    assert match.group(2).startswith("Deployment/web: error: selector")
    assert not re.match(core.LINT_REGEXP, "<rendered> Deployment/web: error: duplicate object")


def test_cycle_patterns_match_the_watch_loops_own_lines() -> None:
    source = (REPO / "src" / "devloop" / "watch.py").read_text()
    # the f-strings that frame a cycle in tasks/watch.py, so a change there shows up here
    assert '"── cycle {number}: ' in source and '"── cycle {number} ready: ' in source
    assert '"── cycle {number} failed in ' in source
    for begins in ("── cycle 0: up", "── cycle 3: app/web.sh changed (rebuild)"):
        assert re.match(core.CYCLE_BEGINS, begins)
        assert not re.match(core.CYCLE_ENDS, begins)
    for ends in ("── cycle 0 ready: build 1.0s  │ total 4.2s", "── cycle 3 failed in build after 2.0s; still watching"):
        assert re.match(core.CYCLE_ENDS, ends)
        assert not re.match(core.CYCLE_BEGINS, ends)


def test_regeneration_keeps_the_users_entries_and_top_level_keys() -> None:
    old_ours = core.entry(core.TaskInfo("gone", "A task that no longer exists."))
    user = {"label": "rails console", "type": "shell", "command": "inv k8s.kubectl -- exec -it deploy/web -- rails c"}
    user_up = {"label": "inv up", "type": "shell", "command": "inv", "args": ["up", "--env", "staging"]}
    existing = {"version": "2.0.0", "inputs": [{"id": "env", "type": "pickString", "options": ["dev"]}],
                "tasks": [old_ours, user, user_up]}
    doc = core.merge(existing, core.generated_tasks(INFOS))
    labels = [t["label"] for t in doc["tasks"]]
    assert "inv gone" not in labels
    assert labels.count("inv up") == 1 and by_label(doc, "inv up") == user_up  # the user's version wins
    assert user in doc["tasks"] and doc["inputs"] == existing["inputs"]
    assert list(doc)[0] == "version" and not core.schema_problems(doc)


def test_a_users_default_build_task_stays_the_only_default() -> None:
    user = {"label": "make", "type": "shell", "command": "make", "group": {"kind": "build", "isDefault": True}}
    doc = core.merge({"version": "2.0.0", "tasks": [user]}, core.generated_tasks(INFOS))
    assert by_label(doc, "inv up")["group"] == "build"
    assert not core.schema_problems(doc)


def test_tasks_json_with_comments_and_trailing_commas_is_read() -> None:
    text = """{
  // VS Code writes comments
  "version": "2.0.0", /* and block
  comments */
  "tasks": [
    {"label": "say // not a comment", "type": "shell", "command": "echo 'a /* b */'",},
  ],
}
"""
    data = core.parse_tasks_json(text, "tasks.json")
    assert data["tasks"][0]["label"] == "say // not a comment"
    assert data["tasks"][0]["command"] == "echo 'a /* b */'"


def test_broken_tasks_json_names_line_and_column() -> None:
    with pytest.raises(KitError) as caught:
        core.parse_tasks_json('{\n  "version": "2.0.0"\n  "tasks": []\n}\n', ".vscode/tasks.json")
    assert caught.value.message.startswith(".vscode/tasks.json:3:3: not valid JSON")
    assert "nothing was written" in caught.value.hint


def test_inv_editor_vscode_writes_then_keeps_user_entries(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    first = inv(app, "editor.vscode")
    assert first.returncode == 0, first.stderr
    target = app / ".vscode" / "tasks.json"
    doc = json.loads(target.read_text())
    from devloop import namespace

    assert sorted(t["args"][0] for t in doc["tasks"]) == sorted(namespace(app).task_names)
    for label in ("inv up", "inv minikube.start", "inv compose.up", "inv editor.vscode", "inv k8s.render"):
        assert label in [t["label"] for t in doc["tasks"]]
    assert by_label(doc, "inv up")["group"] == {"kind": "build", "isDefault": True}
    assert not core.schema_problems(doc)

    doc["tasks"].append({"label": "my tail", "type": "shell", "command": "tail -f log/development.log"})
    target.write_text("// mine\n" + json.dumps(doc, indent=2))
    second = inv(app, "editor.vscode")
    assert second.returncode == 0 and "1 of yours kept" in second.stderr
    assert "my tail" in [t["label"] for t in json.loads(target.read_text())["tasks"]]
    assert (app / ".vscode" / "tasks.json.bak").read_text().startswith("// mine")
    assert "is up to date" in inv(app, "editor.vscode").stderr

    target.write_text('{"version": "2.0.0", "tasks": [}')
    broken = inv(app, "editor.vscode")
    assert broken.returncode == 2 and "tasks.json:1:" in broken.stderr and "Traceback" not in broken.stderr
    assert target.read_text() == '{"version": "2.0.0", "tasks": [}'


def test_workspace_above_the_app_and_dry_run(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    result = inv(app, "editor.vscode", "--workspace", str(tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / ".vscode" / "tasks.json").read_text())
    assert by_label(doc, "inv up")["options"] == {"cwd": "${workspaceFolder}/app"}
    outside = inv(app, "editor.vscode", "--workspace", str(app / "k8s"))
    assert outside.returncode == 2 and "is not inside the workspace" in outside.stderr
    dry = inv(app, "--dry", "editor.vscode")
    assert dry.returncode == 0 and json.loads(dry.stdout)["version"] == "2.0.0"
    assert not (app / ".vscode").exists()


@pytest.mark.parametrize("shell, words", [("bash", "complete -F"), ("zsh", "compctl"), ("fish", "complete --command")])
def test_shell_completion_script(tmp_path: Path, shell: str, words: str) -> None:
    result = inv(make_app(tmp_path), "--print-completion-script", shell)
    assert result.returncode == 0 and words in result.stdout and "inv" in result.stdout
