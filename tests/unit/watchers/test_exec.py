"""The exec watcher, running real processes (no shell) in a temp machine directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from steward.machine.spec import WatcherSpec
from steward.processes import run as process_run
from steward.templates import Template
from steward.watchers.base import Outcome
from steward.watchers.context import Facts
from steward.watchers.exec import ExecProperties, ExecWatcher
from tests.support.fakes import fake_context
from tests.support.machines import Handle, script


def make(
    tmp_path: Path,
    command: str,
    data: dict[str, Any] | None = None,
    facts: Facts | None = None,
    **props: Any,
) -> ExecWatcher:
    template = Template.parse(command)
    argv = tuple(command.split()) if template.static else ()
    env = tuple(Template.parse(entry) for entry in props.pop("environment", ()))
    properties = ExecProperties(command=template, argv=argv, environment=env, **props)
    spec = WatcherSpec(name="probe", type="exec", properties=properties)
    scratch = tmp_path / ".scratch"  # WATCHER_DATA files land in the test's own dir
    scratch.mkdir(exist_ok=True)
    return ExecWatcher(spec, Handle(tmp_path, data), fake_context(scratch, facts=facts))


async def test_exit_zero_is_success_and_nonzero_is_failure(tmp_path: Path) -> None:
    ok = await make(tmp_path, "/bin/true").check()
    bad = await make(tmp_path, "/bin/false").check()
    assert ok.outcome is Outcome.SUCCESS
    assert bad.outcome is Outcome.FAILURE
    assert bad.detail == "exit code 1"
    assert bad.payload["exit_code"] == 1


async def test_runs_in_the_machine_dir_with_a_minimal_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_TEST_SECRET", "leak")
    script(tmp_path, "env.sh", "pwd; env | sort\n")
    result = await make(tmp_path, "env.sh", environment=("EXTRA=1",)).check()
    assert result.outcome is Outcome.SUCCESS
    lines = result.payload["stdout"].splitlines()
    assert lines[0] == str(tmp_path)
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert env["PATH"].startswith(f"{tmp_path}:")
    assert env["MACHINE_NAME"] == "m1"
    assert env["MACHINE_STATE"] == "checking"
    assert env["MACHINE_WATCHER_NAME"] == "probe"
    assert env["STEWARD_MACHINE_INSTANCE"] == "instance-1"  # ties leftovers to their machine
    assert Path(env["WATCHER_FACTS"]).parent == Path(env["WATCHER_DATA"]).parent
    assert env["EXTRA"] == "1"
    assert "STEWARD_TEST_SECRET" not in env
    assert "HOME" not in env


async def test_no_shell_is_involved(tmp_path: Path) -> None:
    result = await make(tmp_path, "/bin/echo $HOME ; true").check()
    assert result.payload["stdout"] == "$HOME ; true\n"


async def test_watcher_data_file_holds_the_machine_data(tmp_path: Path) -> None:
    script(tmp_path, "data.sh", 'echo "$WATCHER_DATA" >&2; cat "$WATCHER_DATA"\n')
    watcher = make(tmp_path, "data.sh", data={"attempts": 2})
    result = await watcher.check()
    assert json.loads(result.payload["stdout"]) == {"attempts": 2}
    path = Path(result.payload["stderr"].strip())
    assert path.parent == tmp_path / ".scratch"  # the daemon's scratch dir, never /tmp
    assert path.exists()  # kept for the watcher's next runs
    await watcher.close()
    assert not path.exists()  # removed with the watcher


async def test_watcher_data_file_is_rewritten_when_data_or_file_change(tmp_path: Path) -> None:
    script(tmp_path, "data.sh", 'echo "$WATCHER_DATA" >&2; cat "$WATCHER_DATA"\n')
    data: dict[str, Any] = {"attempts": 2}
    watcher = make(tmp_path, "data.sh", data=data)
    try:
        first = await watcher.check()
        path = first.payload["stderr"].strip()
        data["attempts"] = 3  # the machine's data changed
        assert json.loads((await watcher.check()).payload["stdout"]) == {"attempts": 3}
        Path(path).write_text('{"tampered": true}')  # a command wrote to it
        again = await watcher.check()
        assert json.loads(again.payload["stdout"]) == {"attempts": 3}
        Path(path).unlink()  # something removed it (a tmp cleaner)
        last = await watcher.check()
        assert json.loads(last.payload["stdout"]) == {"attempts": 3}
        assert Path(last.payload["stderr"].strip()).exists()
    finally:
        await watcher.close()


async def test_parse_as_data_returns_the_json_object(tmp_path: Path) -> None:
    script(tmp_path, "emit.sh", """echo '{"count": 3, "ok": true}'\n""")
    result = await make(tmp_path, "emit.sh", parse_as_data=True).check()
    assert result.outcome is Outcome.SUCCESS
    assert result.data == {"count": 3, "ok": True}


@pytest.mark.parametrize(
    ("stdout", "detail"),
    [
        ("[1, 2]", "parse_as_data: stdout is not a JSON object"),
        (
            "not json",
            "parse_as_data: stdout is not JSON: Expecting value: line 1 column 1 (char 0)",
        ),
    ],
)
async def test_parse_as_data_rejects_what_is_not_an_object(
    tmp_path: Path, stdout: str, detail: str
) -> None:
    script(tmp_path, "emit.sh", f"echo '{stdout}'\n")
    result = await make(tmp_path, "emit.sh", parse_as_data=True).check()
    assert (result.outcome, result.detail, result.data) == (Outcome.FAILURE, detail, None)


async def test_missing_command_is_an_error_result(tmp_path: Path) -> None:
    result = await make(tmp_path, "no-such-command-xyz").check()
    assert result.outcome is Outcome.ERROR
    assert result.detail == "command not found: no-such-command-xyz"


async def test_unexecutable_file_is_an_error_result(tmp_path: Path) -> None:
    (tmp_path / "plain.sh").write_text("true\n")
    result = await make(tmp_path, "./plain.sh").check()
    assert result.outcome is Outcome.ERROR
    assert result.detail.startswith("cannot run ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes once it is not running
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script(
        tmp_path,
        "hang.sh",
        f"""
        trap '' TERM
        sleep 300 &
        echo $! > {pids}
        echo $$ >> {pids}
        wait
        """,
    )
    started = time.monotonic()
    result = await make(tmp_path, "hang.sh", timeout=0.5).check()
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.FAILURE
    assert result.payload["timed_out"] is True
    assert result.detail == "timed out after 0.5s; process group killed"
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"pid {pid} survived the timeout"


async def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    import asyncio

    pid_file = tmp_path / "pid"
    script(tmp_path, "hang.sh", f"echo $$ > {pid_file}\nexec sleep 300\n")
    task = asyncio.ensure_future(make(tmp_path, "hang.sh", timeout=60).check())
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pid)


async def test_captured_output_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process_run, "OUTPUT_CAP", 1000)
    script(tmp_path, "loud.sh", "head -c 5000000 /dev/zero | tr '\\0' x\n")
    result = await make(tmp_path, "loud.sh").check()
    assert result.outcome is Outcome.SUCCESS
    # 5 MB were printed; 1000 bytes were kept (the payload would carry up to 1024)
    assert len(result.payload["stdout"]) == 1000


async def test_a_background_child_holding_stdout_does_not_block(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    script(tmp_path, "bg.sh", f"sleep 30 &\necho $! > {pid_file}\necho done\n")
    started = time.monotonic()
    result = await make(tmp_path, "bg.sh").check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload["stdout"] == "done\n"
    assert time.monotonic() - started < process_run.DRAIN_GRACE + 3
    os.kill(int(pid_file.read_text()), 9)  # a normal exit leaves such children alone


async def test_command_and_environment_are_rendered_with_facts_and_data_at_each_run(
    tmp_path: Path,
) -> None:
    script(tmp_path, "show.sh", 'echo "$@" "$WHERE"\n')
    facts = Facts({"location": "lon"})
    watcher = make(
        tmp_path,
        'show.sh {{ lookup "facts.location" "?" | ToUpper }} "{{ lookup "data.n" 0 }} x"',
        data={"n": 2},
        environment=('WHERE={{ lookup "facts.location" "?" }}',),
        facts=facts,
    )
    first = await watcher.check()
    assert first.payload["stdout"] == "LON 2 x lon\n"
    # the rendered command is the one reported
    assert first.payload["command"] == 'show.sh LON "2 x"'
    facts.replace({"location": "nyc"})  # a reload: the next run sees the new facts
    second = await watcher.check()
    assert second.payload["stdout"] == "NYC 2 x nyc\n"


async def test_a_template_that_fails_to_render_is_an_error_result(tmp_path: Path) -> None:
    result = await make(tmp_path, '/bin/echo {{ lookup "facts.x" "%%%" | Base64Decode }}').check()
    assert result.outcome is Outcome.ERROR
    assert result.detail == "template: Base64Decode: '%%%' is not valid base64"
    assert result.payload["exit_code"] is None


@pytest.mark.parametrize(
    ("command", "environment", "detail"),
    [
        ('/bin/echo \'{{ "x" }}', (), 'command "/bin/echo \'x": cannot split command'),
        ('{{ lookup "facts.nope" "" }}', (), "command '': must not be empty"),
        (
            "/bin/true",
            ('{{ lookup "facts.nope" "X" }}',),
            "environment[0]: must be KEY=VALUE with a valid variable name, got 'X'",
        ),
    ],
)
async def test_a_rendered_command_or_environment_that_is_unusable_is_an_error_result(
    tmp_path: Path, command: str, environment: tuple[str, ...], detail: str
) -> None:
    result = await make(tmp_path, command, environment=environment).check()
    assert result.outcome is Outcome.ERROR
    assert result.detail.startswith(detail)


async def test_watcher_facts_file_holds_the_node_facts_and_follows_a_reload(
    tmp_path: Path,
) -> None:
    script(tmp_path, "facts.sh", 'echo "$WATCHER_FACTS" >&2; cat "$WATCHER_FACTS"\n')
    facts = Facts({"site": "lon", "cpus": 4})
    watcher = make(tmp_path, "facts.sh", facts=facts)
    try:
        first = await watcher.check()
        assert json.loads(first.payload["stdout"]) == {"site": "lon", "cpus": 4}
        path = Path(first.payload["stderr"].strip())
        assert path.parent == tmp_path / ".scratch"
        facts.replace({"site": "nyc"})  # the facts file was reloaded
        assert json.loads((await watcher.check()).payload["stdout"]) == {"site": "nyc"}
    finally:
        await watcher.close()
    assert not path.exists()  # removed with the watcher
