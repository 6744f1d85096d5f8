"""The shell kept open in each container for live update, run as a real local ``sh``: a request unpacks, deletes
and runs the command under a test folder instead of /, and the answer ends at the shell's own mark."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from strict import StrictContext

from devloop import liveshell, livesync
from devloop.core import liveupdate
from devloop.core.liveupdate import Target


def tar_of(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def run_once(request: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A request as a one-off shell runs it: its exit code is the request's, its output on stdout."""
    return subprocess.run([shutil.which("sh") or "/bin/sh", "-s"], input=request + 'echo "code $?"\n', capture_output=True, text=True,
                          env=env, timeout=30)


class Opened(liveshell.Shells):
    """Shells opened as local ``sh`` processes in a test folder; ``spawned`` names the pod of each one opened."""

    def __init__(self, folder: Path) -> None:
        self.spawned: list[str] = []
        super().__init__(self.local, StrictContext({}))
        self.folder = folder

    def local(self, target: Target) -> list[str]:
        self.spawned.append(target.pod)
        return ["sh", "-c", f"cd {self.folder} && exec sh"]


@pytest.fixture
def kept(tmp_path: Path) -> Iterator[Opened]:
    opened = Opened(tmp_path)
    yield opened
    opened.close()


WEB1, WEB2 = Target("web-1", "web", "uid-1", 0), Target("web-2", "web", "uid-2", 0)


# -- the request, as a shell runs it ------------------------------------------------------------------------------


def test_a_request_unpacks_binary_files_keeps_their_mode_deletes_then_runs_the_command(tmp_path: Path) -> None:
    (tmp_path / "app" / "old").mkdir(parents=True)
    (tmp_path / "app" / "old" / "x.rb").write_text("old\n")
    (tmp_path / "app" / "gone.txt").write_text("gone\n")
    binary = bytes(range(256)) * 40 + b"\0\0\0"  # NUL bytes, and no newline at the end
    request = liveupdate.shell_request(tar_of({"/app/www/logo.bin": binary, "/app/bin/run.sh": b"#!/bin/sh\n"}, 0o755),
                                       ["/app/gone.txt", "/app/old"], f"touch {tmp_path}/restarted", root=str(tmp_path))
    done = run_once(request)
    assert done.stdout == "code 0\n", done
    assert (tmp_path / "app" / "www" / "logo.bin").read_bytes() == binary
    assert os.access(tmp_path / "app" / "bin" / "run.sh", os.X_OK)
    assert not (tmp_path / "app" / "gone.txt").exists() and not (tmp_path / "app" / "old").exists()
    assert (tmp_path / "restarted").exists()


def test_each_failing_step_has_its_code_and_its_words_on_stdout(tmp_path: Path) -> None:
    failing = run_once(liveupdate.shell_request(tar_of({"/a.txt": b"a"}), [], "echo about to fail; exit 3",
                                                root=str(tmp_path)))
    assert failing.stdout == f"about to fail\nexit 3\ncode {liveupdate.COMMAND_FAILED}\n"
    broken = run_once(liveupdate.shell_request(b"not a tar" * 100, [], "", root=str(tmp_path)))
    assert broken.stdout.endswith(f"code {liveupdate.COPY_FAILED}\n") and broken.stdout.count("\n") > 1  # tar said why


def test_an_image_without_base64_is_told_apart(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with tar and no base64
    bin_dir.mkdir()
    for tool in ("tar", "rm"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    done = run_once(liveupdate.shell_request(tar_of({"/a.txt": b"a"}), [], "", root=str(tmp_path)),
                    env={"PATH": str(bin_dir)})
    assert done.stdout == f"code {liveupdate.NO_BASE64}\n"
    assert not (tmp_path / "a.txt").exists()


def test_the_tar_stream_ends_at_its_end_marker_not_at_ten_kib(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    stream = livesync.tar_stream({"/app/a.txt": str(tmp_path / "a.txt")})
    assert len(stream) < tarfile.RECORDSIZE and stream.endswith(bytes(2 * tarfile.BLOCKSIZE))  # no padding after
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()] == [("app/a.txt", b"a\n")]  # type: ignore[union-attr]


# -- the shells kept open -----------------------------------------------------------------------------------------


def test_requests_in_a_row_go_to_the_same_open_shell(kept: Opened, tmp_path: Path) -> None:
    kept.keep([WEB1, WEB2])
    pids = {key: opened.proc.pid for key, opened in kept.open.items()}
    for k in range(3):
        request = liveupdate.shell_request(tar_of({"/v.txt": f"v{k}\n".encode()}), [], "", root=str(tmp_path))
        assert kept.ask(WEB1, request) == (0, "")
        assert (tmp_path / "v.txt").read_text() == f"v{k}\n"
    kept.keep([WEB1, WEB2])
    assert kept.spawned == ["web-1", "web-2"]  # opened once
    assert {key: opened.proc.pid for key, opened in kept.open.items()} == pids
    procs = [opened.proc for opened in kept.open.values()]
    kept.close()
    assert kept.open == {} and all(proc.poll() is not None for proc in procs)  # closed, and ended


def test_output_that_looks_like_the_end_of_an_answer_is_not_taken_for_it(kept: Opened, tmp_path: Path) -> None:
    kept.keep([WEB1])
    fake = f'echo "{liveshell.MARK} 0"; echo "{liveshell.MARK}-0000000000000000 0"'
    code, said = kept.ask(WEB1, liveupdate.shell_request(b"", [], f"{fake}; exit 4", root=str(tmp_path))) or (0, "")
    assert code == liveupdate.COMMAND_FAILED and said.splitlines()[-1] == "exit 4"


def test_a_shell_that_ended_answers_none_and_the_next_keep_opens_another(kept: Opened) -> None:
    kept.keep([WEB1])
    first = kept.open[WEB1.key]
    first.proc.kill()  # its container restarted, its pod was deleted
    first.proc.wait()
    assert kept.ask(WEB1, liveupdate.shell_request(b"", [], "true")) is None
    assert WEB1.key not in kept.open
    kept.keep([WEB1])
    assert kept.spawned == ["web-1", "web-1"]
    assert kept.ask(WEB1, liveupdate.shell_request(b"", [], "true")) == (0, "")


def test_a_container_without_base64_gets_no_shell_again(kept: Opened) -> None:
    kept.keep([WEB1])
    assert kept.ask(WEB1, f"( exit {liveupdate.NO_BASE64} )\n") is None
    kept.keep([WEB1])
    assert kept.spawned == ["web-1"] and kept.open == {}
    assert kept.ask(WEB1, "true\n") is None  # the caller uses a one-shot exec


def test_a_shell_that_does_not_answer_in_time_is_closed(kept: Opened) -> None:
    kept.keep([WEB1])
    opened = kept.open[WEB1.key]
    assert kept.ask(WEB1, "sleep 20\n", timeout=0.3) == (124, "no answer within 0s")
    assert opened.proc.poll() is not None


def test_keep_closes_the_shells_of_containers_no_longer_there(kept: Opened) -> None:
    kept.keep([WEB1, WEB2])
    old = kept.open[WEB2.key]
    kept.keep([WEB1])
    assert list(kept.open) == [WEB1.key]
    assert old.proc.wait(timeout=10) is not None


def test_no_more_shells_than_the_limit_are_kept_open(kept: Opened) -> None:
    kept.limit = 1
    kept.keep([WEB1, WEB2])
    assert kept.spawned == ["web-1"]
    assert kept.ask(WEB2, "true\n") is None  # a one-shot exec for it
    kept.keep([WEB2])  # web-1 is gone: its place is free
    assert kept.spawned == ["web-1", "web-2"] and list(kept.open) == [WEB2.key]


def test_under_dry_no_shell_is_opened(capsys: pytest.CaptureFixture[str]) -> None:
    kept = liveshell.Shells(lambda t: ["sh"], StrictContext({}, dry=True))
    kept.keep([WEB1, WEB2])
    assert kept.open == {}
    assert "$ sh    # --dry: not run" in capsys.readouterr().err
