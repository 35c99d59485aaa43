"""exec's ``governor`` and ``governor_timeout``: parsed with positions, and a governed check
that cannot reach a governor is an error result, never a hang or a crash. Governed runs
against a real nats-server are in tests/integration/test_governor.py."""

from __future__ import annotations

from pathlib import Path

from steward.machine.spec import WatcherSpec
from steward.templates import Template
from steward.watchers.base import Outcome
from steward.watchers.exec import ExecProperties, ExecWatcher
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse


def exec_props(*lines: str) -> ExecProperties:
    props = parse(machine_yaml("exec", "command: /bin/true", *lines)).watchers[0].properties
    assert isinstance(props, ExecProperties)
    return props


def test_governor_defaults_to_none_and_its_timeout_to_choria_s_five_minutes() -> None:
    assert exec_props().governor is None
    props = exec_props("governor: cron")
    assert props.governor == Template("cron")
    assert props.governor_timeout == 300.0
    assert exec_props("governor: cron", "governor_timeout: 90s").governor_timeout == 90.0
    assert exec_props("governor: cron", "governor_timeout: 0").governor_timeout == 300.0  # Choria


def test_an_invalid_governor_name_is_an_error_at_its_position() -> None:
    assert messages(machine_yaml("exec", "command: /bin/true", "governor: nightly.backup")) == [
        "m.yaml:17:17: watchers[0].properties.governor: governor name 'nightly.backup' "
        "contains '.': a name must not hold '.', '*', '>', '/', '\\', whitespace or "
        "control characters"
    ]


def test_a_bad_governor_timeout_is_an_error_at_its_position() -> None:
    found = messages(
        machine_yaml("exec", "command: /bin/true", "governor: cron", "governor_timeout: soon")
    )
    assert len(found) == 1
    assert found[0].startswith("m.yaml:18:25: watchers[0].properties.governor_timeout: ")


def test_a_governor_timeout_without_a_governor_is_accepted_as_choria_does() -> None:
    props = exec_props("governor_timeout: 1m")
    assert props.governor is None and props.governor_timeout == 60.0


async def test_without_nats_a_governed_check_fails_cleanly_and_runs_nothing(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    props = ExecProperties(
        command=Template(f"/bin/touch {marker}"),
        argv=("/bin/touch", str(marker)),
        governor=Template("cron"),
    )
    spec = WatcherSpec(name="probe", type="exec", properties=props)
    watcher = ExecWatcher(spec, Handle(tmp_path), fake_context(tmp_path / ".s"))
    (tmp_path / ".s").mkdir()
    result = await watcher.check()
    assert result.outcome is Outcome.ERROR  # fires fail_transition
    assert result.detail == "no NATS is configured (nats.servers in steward.yaml)"
    assert result.payload["governor"] == "cron"
    assert not marker.exists()
