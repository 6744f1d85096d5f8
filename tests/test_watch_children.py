"""Stopping every child on Ctrl-C / SIGTERM, on real process trees (psutil: the same path on Linux and macOS).

Whatever stops "every process below this one" runs in a python of its own, so pytest's children are safe.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from devloop import children
from devloop.core import lock

# A tree under the script: a child in our process group (a build), a child in a session of its own
# (a follower) with a grandchild, and a child that ignores SIGTERM.
TREE = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time
    from devloop import children

    build = subprocess.Popen(["sleep", "60"])
    follower = subprocess.Popen(["sh", "-c", "sleep 60; echo done"], start_new_session=True)
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    stubborn.stdout.readline()
    deadline = time.monotonic() + 10
    while len(children.descendants()) < 4 and time.monotonic() < deadline:  # the follower's sleep
        time.sleep(0.01)
    pids = sorted(p.pid for p in children.descendants())
    print(json.dumps({"pids": pids, "foreground": sorted(p.pid for p in children.foreground_children()),
                      "build": build.pid, "follower": follower.pid, "stubborn": stubborn.pid}), flush=True)
""")


def run(script: str) -> tuple[dict[str, object], subprocess.CompletedProcess[str]]:
    done = subprocess.run([sys.executable, "-c", TREE + textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=60)
    first = done.stdout.splitlines()[0] if done.stdout else "{}"
    return json.loads(first), done


def assert_gone(pids: object) -> None:
    assert isinstance(pids, list) and pids
    assert [pid for pid in pids if lock.pid_alive(pid)] == []


def test_stop_descendants_stops_the_whole_tree_and_kills_the_stubborn() -> None:
    tree, done = run("""
        stopped = children.stop_descendants(grace=0.3)
        print(json.dumps(sorted(stopped)), children.descendants(), build.poll() is not None)
    """)
    assert done.returncode == 0, done.stderr
    assert len(tree["pids"]) == 4  # type: ignore[arg-type]
    last = done.stdout.splitlines()[1]
    assert last.startswith(json.dumps(tree["pids"])) and last.endswith(" [] True")  # nothing left below
    assert_gone(tree["pids"])


def test_stop_running_stops_only_the_command_holding_its_marker() -> None:
    """A watch stops its stale build (found by the build's own --iidfile folder) and nothing else it runs."""
    tree, done = run("""
        marked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(61)", "/tmp/devloop-build-abc/hello.iid"])
        stopped = children.stop_running("/tmp/devloop-build-abc", grace=0.3)
        print(json.dumps({"stopped": stopped, "marked": marked.pid, "marked_ended": marked.poll() is not None,
                          "left": sorted(p.pid for p in children.descendants())}), flush=True)
        children.stop_descendants(grace=0.3)
    """)
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout.splitlines()[1])
    assert after["stopped"] == [after["marked"]] and after["marked_ended"]
    assert after["left"] == tree["pids"]  # the build, the follower (and its sleep) and the stubborn run on


def test_foreground_children_are_those_of_our_process_group() -> None:
    tree, done = run("children.stop_descendants(grace=0.3)")
    assert done.returncode == 0, done.stderr
    assert tree["build"] in tree["foreground"] and tree["stubborn"] in tree["foreground"]  # type: ignore[operator]
    assert tree["follower"] not in tree["foreground"]  # type: ignore[operator]


def test_sigterm_stops_every_child_and_ends_with_143() -> None:
    tree, done = run("""
        from devloop.core.errors import KitError
        try:
            with children.stopping():
                children.STOP_GRACE = 0.3
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)
        except KitError as exc:
            print(exc.code, exc.message)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "143 stopped by SIGTERM; every child process was stopped"
    assert_gone(tree["pids"])


def test_nothing_below_means_nothing_to_stop() -> None:
    code = "from devloop import children; print(children.stop_descendants(), children.foreground_children())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["[]", "[]"], done.stderr


def test_signals_reach_only_live_processes() -> None:
    child = subprocess.Popen(["sleep", "30"])
    procs = [p for p in children.descendants() if p.pid == child.pid]
    child.kill()
    child.wait()
    children.send(procs, signal.SIGTERM)  # gone: nothing happens, nothing raised
    assert procs and not lock.pid_alive(child.pid)
