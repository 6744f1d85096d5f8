"""`inv editor.vscode`: .vscode/tasks.json from the collection, VS Code's schema keys, problem matchers that
match the kit's real messages, and regeneration that keeps the user's own entries. Also shell completion."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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
    assert core.default_builds(doc) == ["make"]  # what `inv editor.vscode` names as Ctrl+Shift+B's


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
    assert "Run Build Task (Ctrl+Shift+B) runs 'inv up'" in first.stderr
    target = app / ".vscode" / "tasks.json"
    doc = json.loads(target.read_text())
    from devloop import namespace

    assert sorted(t["label"] for t in doc["tasks"]) == sorted(f"inv {name}" for name in namespace(app).task_names)
    up = by_label(doc, "inv up")
    assert Path(up["command"]).parent == Path(sys.executable).parent  # the venv's own python: none needs to be active
    assert Path(up["command"]).name.startswith("python") and up["args"] == ["-m", "invoke", "up"]
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


# -- the buttons run without an active venv (#13 item 19) -------------------------------------------


def test_buttons_run_this_interpreter_or_the_devloop_command_beside_it(tmp_path: Path) -> None:
    from devloop import editor

    venv = tmp_path / "ws" / ".venv" / "bin"
    venv.mkdir(parents=True)
    python, devloop = venv / "python", venv / "devloop"
    for script in (python, devloop):
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    app = tmp_path / "ws" / "app"
    app.mkdir()
    # no tasks.py: the devloop command (it needs none); inside the workspace: relative to it, for any clone
    assert editor.default_runner(app, tmp_path / "ws", str(python)) == ["${workspaceFolder}/.venv/bin/devloop"]
    (app / "tasks.py").write_text("")
    assert editor.default_runner(app, tmp_path / "ws", str(python)) == ["${workspaceFolder}/.venv/bin/python",
                                                                         "-m", "invoke"]
    assert editor.default_runner(app, app, str(python)) == [str(python), "-m", "invoke"]  # venv outside: absolute
    assert editor.runner("poetry run inv", app, app) == ["poetry", "run", "inv"]
    with pytest.raises(KitError, match="--command is empty"):
        editor.runner("  ", app, app)


def test_generated_button_runs_with_no_venv_on_path(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert inv(app, "editor.vscode").returncode == 0
    doc = json.loads((app / ".vscode" / "tasks.json").read_text())
    status = by_label(doc, "inv k8s.render")
    argv = [status["command"], *status["args"][:-1], "--list"]
    plain = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    assert subprocess.run(["sh", "-c", "command -v inv"], env=plain, capture_output=True).returncode != 0
    listed = subprocess.run(argv, cwd=app, env=plain, capture_output=True, text=True)
    assert listed.returncode == 0 and "k8s.render" in listed.stdout, listed.stderr


def test_command_flag_overrides_what_the_buttons_run(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert inv(app, "editor.vscode", "--command", "poetry run inv").returncode == 0
    doc = json.loads((app / ".vscode" / "tasks.json").read_text())
    assert (by_label(doc, "inv up")["command"], by_label(doc, "inv up")["args"]) == ("poetry", ["run", "inv", "up"])


# -- destructive tasks ask first, tasks with arguments prompt for them (#13 item 20) -------------------


def inputs_by_id(doc: dict) -> dict:
    return {i["id"]: i for i in doc.get("inputs", [])}


def test_destructive_buttons_ask_first_and_no_shows_the_help() -> None:
    infos = INFOS + [core.TaskInfo("minikube.delete", "Delete the cluster and its data."),
                     core.TaskInfo("down", "Delete everything up applied.")]
    doc = core.merge(None, core.generated_tasks(infos, runner=["py", "-m", "invoke"]), core.generated_inputs(infos))
    assert not core.schema_problems(doc)
    task = by_label(doc, "inv minikube.delete")
    assert task["args"] == ["-m", "invoke", "${input:devloop.confirm.minikube.delete}"]
    asked = inputs_by_id(doc)["devloop.confirm.minikube.delete"]
    assert asked["type"] == "pickString" and "Delete the cluster" in asked["description"]
    values = [option["value"] for option in asked["options"]]
    assert asked["default"] == values[0] == "--help=minikube.delete" and values[1] == "minikube.delete"
    assert by_label(doc, "inv down")["args"][-1] == "${input:devloop.confirm.down}"
    assert by_label(doc, "inv up")["args"] == ["-m", "invoke", "up"]


def test_tasks_needing_arguments_prompt_for_them() -> None:
    infos = [core.TaskInfo("k8s.kubectl", "Run kubectl."), core.TaskInfo("image.rm", "Remove tags.")]
    doc = core.merge(None, core.generated_tasks(infos), core.generated_inputs(infos))
    assert by_label(doc, "inv k8s.kubectl")["args"] == ["k8s.kubectl", "--", "${input:devloop.args.k8s.kubectl}"]
    assert by_label(doc, "inv image.rm")["args"] == ["image.rm", "--tag", "${input:devloop.args.image.rm}"]
    assert {i["type"] for i in doc["inputs"]} == {"promptString"} and not core.schema_problems(doc)
    broken = dict(doc, inputs=[])
    assert "input devloop.args.image.rm is used but not defined" in core.schema_problems(broken)


def test_every_asking_task_exists_and_answering_no_changes_nothing(tmp_path: Path) -> None:
    from devloop import namespace

    app = make_app(tmp_path)
    names = set(namespace(app).task_names)
    assert names >= core.DESTRUCTIVE and set(core.ASKS) <= names
    no = subprocess.run([sys.executable, "-m", "invoke", "--help=minikube.delete"], cwd=app, capture_output=True,
                        text=True)
    assert no.returncode == 0 and "Delete the cluster" in no.stdout


def test_regeneration_keeps_the_users_inputs_and_replaces_ours() -> None:
    infos = [core.TaskInfo("down", "Delete everything up applied.")]
    mine = {"id": "env", "type": "pickString", "options": ["dev", "staging"]}
    stale = {"id": "devloop.confirm.gone", "type": "pickString", "options": ["x"]}
    doc = core.merge({"version": "2.0.0", "inputs": [stale, mine]}, core.generated_tasks(infos),
                     core.generated_inputs(infos))
    assert [i["id"] for i in doc["inputs"]] == ["devloop.confirm.down", "env"]
    mine_down = {"label": "inv down", "type": "shell", "command": "inv down --env staging"}
    doc = core.merge({"version": "2.0.0", "tasks": [mine_down]}, core.generated_tasks(infos), core.generated_inputs(infos))
    assert "inputs" not in doc  # the user's own `inv down` uses none of ours


# -- the user's entries are written back byte for byte (#13 item 21) ---------------------------------

USERS_FILE = """{
  // my settings
  "version": "2.0.0",
  "tasks": [
    // pretty-print with jq
    {"label": "jq", "type": "shell",
        "command": "jq '{a: 1,}' x.json | grep -E '[,]]'",   /* keep: ,} */
    },
    {
      "label": "old generated", "type": "shell", "command": "inv", "args": ["gone"],
      "detail": "Gone. (generated by inv editor.vscode)"
    },
  ],
  "inputs": [ {"id": "env", "type": "promptString",}, ],
  "presentation": {"echo": true, /* mine */ },
}
"""


def test_strip_jsonc_leaves_strings_alone() -> None:
    text = '{"a": "x,}", "b": ["// no", "/* no */", "q\\\\", ",]"], /* c */ "c": [1,],}'
    assert json.loads(core.strip_jsonc(text)) == {"a": "x,}", "b": ["// no", "/* no */", "q\\", ",]"], "c": [1]}
    assert core.parse_tasks_json(USERS_FILE, "t.json")["tasks"][0]["command"] == "jq '{a: 1,}' x.json | grep -E '[,]]'"


def test_users_entries_are_written_back_byte_for_byte() -> None:
    source = core.read_tasks_file(USERS_FILE, "t.json")
    doc = core.merge(source.data, core.generated_tasks(INFOS))
    text = core.render(doc, source)
    users_task = USERS_FILE[USERS_FILE.index("// pretty"):USERS_FILE.index("/* keep: ,} */") + len("/* keep: ,} */")]
    assert users_task in text
    for kept in ('{"id": "env", "type": "promptString",}', '"presentation": {"echo": true, /* mine */ }',
                 '// my settings\n  "version": "2.0.0"'):
        assert kept in text
    assert "old generated" not in text
    again = core.read_tasks_file(text, "t.json")
    assert [t["label"] for t in again.data["tasks"]] == ["inv up", "inv dev", "inv watch", "inv k8s.render", "jq"]
    assert core.render(core.merge(again.data, core.generated_tasks(INFOS)), again) == text  # stable: "up to date"


def test_render_without_user_text_is_plain_json() -> None:
    doc = core.merge(None, core.generated_tasks(INFOS), core.generated_inputs(INFOS))
    source = core.read_tasks_file(core.render(doc), "t.json")
    assert core.render(doc, source) == core.render(doc) == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def test_inv_editor_vscode_keeps_a_users_task_byte_for_byte(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    target = app / ".vscode" / "tasks.json"
    target.parent.mkdir()
    target.write_text(USERS_FILE)
    assert inv(app, "editor.vscode").returncode == 0
    written = target.read_text()
    assert "\"command\": \"jq '{a: 1,}' x.json | grep -E '[,]]'\",   /* keep: ,} */" in written
    assert "is up to date" in inv(app, "editor.vscode").stderr
