"""exec: run a command; exit 0 is success, anything else (or a timeout) is failure.

The command is split with shlex and run without a shell, in the machine's directory, in its
own process group, with a minimal environment (``steward.processes`` does all of that, for
every watcher that runs commands). On timeout or cancellation the whole process group is
killed. Captured output is capped. With ``parse_as_data`` the command's stdout must be a
JSON object, which is merged into the machine's data; the machine's data is in the JSON file
``$WATCHER_DATA`` names, and the node's facts in the one ``$WATCHER_FACTS`` names (as Choria
does), both kept in the daemon's scratch directory.

``command`` and each ``environment`` entry may hold Choria template actions
(``{{ lookup "facts.x" "default" }}``): rendered at each run over the node's facts and the
machine's data, then split, as Choria does. A static command is split once, at load.

With ``governor`` (a name, possibly a template rendered at each run) the command runs only
while holding a slot in that governor (``steward.governor``): the check waits up to
``governor_timeout`` (default 5m, as Choria) for one, on the daemon's NATS connection, and
gives it back however the command ends. No slot in time, no such governor, or no NATS
configured is an error result (the fail transition), as in Choria. ``timeout`` counts from
when the command starts, after the slot was taken.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from steward.errors import GovernorError, NatsUnavailable
from steward.files import create_new
from steward.governor.watched import GOVERNOR_TIMEOUT, read_governor_timeout, slot_for
from steward.machine.source import Fields, split_assignment, split_command
from steward.processes import ProcessRun, first_line, minimal_environment, resolve_program
from steward.templates import Template, TemplateError
from steward.watchers.base import MachineHandle, Outcome, Watcher, WatcherResult

TYPE = "exec"
PAYLOAD_OUTPUT = 1024  # characters of output carried in the watcher's state
MIN_TIMEOUT = 0.001
DEFAULT_TIMEOUT = 10.0  # seconds (Choria: 1s; steward is more lenient, see choria-compatibility)


@dataclass(frozen=True)
class ExecProperties:
    command: Template
    argv: tuple[str, ...]  # split at load when the command has no actions; () when it has
    timeout: float = DEFAULT_TIMEOUT
    environment: tuple[Template, ...] = ()  # KEY=VALUE each
    parse_as_data: bool = False
    suppress_success_announce: bool = False
    gather_initial_state: bool = False
    governor: Template | None = None
    governor_timeout: float = GOVERNOR_TIMEOUT
    disown: bool = False

    @classmethod
    def parse(cls, fields: Fields) -> Self:
        command, argv = fields.command_template("command") or (Template(""), ())
        timeout = fields.duration("timeout", minimum=0)  # 0: the default, as in Choria
        if timeout is not None and 0 < timeout < MIN_TIMEOUT:
            fields.error("timeout", "must be 0 (the default, 10s) or at least 1ms")
            timeout = None
        governor = fields.template("governor")
        props = cls(
            command=command,
            argv=argv,
            timeout=timeout or DEFAULT_TIMEOUT,
            environment=fields.assignment_templates("environment"),
            parse_as_data=fields.boolean("parse_as_data", False),
            suppress_success_announce=fields.boolean("suppress_success_announce", False),
            gather_initial_state=fields.boolean("gather_initial_state", False),
            governor=governor,
            governor_timeout=read_governor_timeout(fields, governor),
            disown=fields.boolean("disown", False),
        )
        if props.disown and props.parse_as_data:
            fields.error("disown", "cannot parse the output as data of a disowned command")
        fields.finish(" in exec properties")
        return props

    def command_line(self, facts: Mapping[str, Any], data: Mapping[str, Any]) -> CommandLine:
        """The command rendered and split, and the environment entries rendered;
        TemplateError or ValueError (a line shlex cannot split) when that fails."""
        text = self.command.render(facts, data)
        try:
            argv = self.argv or split_command(text)
        except ValueError as exc:
            raise ValueError(f"command {text!r}: {exc}") from None
        env: list[tuple[str, str]] = []
        for i, entry in enumerate(self.environment):
            try:
                env.append(split_assignment(entry.render(facts, data)))
            except TemplateError as exc:
                raise TemplateError(f"environment[{i}]: {exc.message}", exc.column) from None
            except ValueError as exc:
                raise ValueError(f"environment[{i}]: {exc}") from None
        return CommandLine(text, argv, tuple(env))


@dataclass(frozen=True)
class CommandLine:
    """One run's command: the text (the rendered template), its argv and its environment."""

    text: str
    argv: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]


class ExecWatcher(Watcher):
    TYPE = TYPE
    Properties = ExecProperties

    @property
    def props(self) -> ExecProperties:
        p = self.spec.properties
        assert isinstance(p, ExecProperties)
        return p

    def announces(self, result: WatcherResult) -> bool:
        return not (self.props.suppress_success_announce and result.outcome is Outcome.SUCCESS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._data_file = DataFile(
            self.context.scratch_dir, f"steward-data-{self.machine.name}-{self.name}-"
        )
        self._facts_file = DataFile(
            self.context.scratch_dir, f"steward-facts-{self.machine.name}-{self.name}-"
        )
        self._facts_seen: Mapping[str, Any] | None = None
        self._facts_json = b"{}"

    def _facts_path(self) -> str:
        """``$WATCHER_FACTS``: serialised again only when the facts were reloaded."""
        current = self.context.node.facts.current
        if current is not self._facts_seen:
            self._facts_seen = current
            self._facts_json = json.dumps(dict(current), sort_keys=True, default=str).encode()
        return self._facts_file.update_content(self._facts_json)

    def _environment(
        self, data_file: str, facts_file: str, extra: tuple[tuple[str, str], ...]
    ) -> dict[str, str]:
        env = command_environment(self.machine, self.name)
        env["WATCHER_DATA"] = data_file
        env["WATCHER_FACTS"] = facts_file
        env.update(extra)
        return env

    async def check(self) -> WatcherResult:
        props = self.props
        previous = self.last_result.outcome.value if self.last_result else None
        base_payload: dict[str, Any] = {
            "command": props.command.source,
            "previous_outcome": previous,
            "previous_run_time": self.last_duration,
        }
        data = self.machine.data_snapshot()
        try:
            line = props.command_line(self.context.node.facts.current, data)
        except TemplateError as exc:
            return WatcherResult(
                Outcome.ERROR,
                f"template: {exc.message}",
                payload={**base_payload, "exit_code": None},
            )
        except ValueError as exc:
            return WatcherResult(
                Outcome.ERROR, str(exc), payload={**base_payload, "exit_code": None}
            )
        base_payload["command"] = line.text  # what ran, after rendering
        if props.governor is None:
            return await self._run(line, data, base_payload)
        try:
            governor = props.governor.render(self.context.node.facts.current, data)
        except TemplateError as exc:
            detail = f"governor: cannot render template: {exc.message}"
            return WatcherResult(Outcome.ERROR, detail, payload=base_payload)
        base_payload["governor"] = governor
        try:
            async with slot_for(self, governor, props.governor_timeout) as slot:
                base_payload["governor_seq"] = slot.seq
                return await self._run(line, data, base_payload)
        except (GovernorError, NatsUnavailable) as exc:
            return WatcherResult(Outcome.ERROR, str(exc), payload=base_payload)

    async def _run(
        self, line: CommandLine, data: dict[str, Any], base_payload: dict[str, Any]
    ) -> WatcherResult:
        props = self.props
        env = self._environment(self._data_file.update(data), self._facts_path(), line.environment)
        program = resolve_program(line.argv[0], self.machine.directory, env["PATH"])
        if program is None:
            return WatcherResult(
                Outcome.ERROR,
                f"command not found: {line.argv[0]}",
                payload={**base_payload, "exit_code": None},
            )
        argv = (program, *line.argv[1:])
        if props.disown:
            run = await self.context.processes.run_disowned(argv, self.machine.directory, env)
        else:
            run = await self.context.processes.run(argv, self.machine.directory, env, props.timeout)
        return self._result(run, base_payload)

    async def close(self) -> None:
        await super().close()
        self._data_file.remove()
        self._facts_file.remove()

    def _result(self, run: ProcessRun, payload: dict[str, Any]) -> WatcherResult:
        payload = {
            **payload,
            "exit_code": run.exit_code,
            "timed_out": run.timed_out,
            "stdout": run.stdout[:PAYLOAD_OUTPUT],
            "stderr": run.stderr[:PAYLOAD_OUTPUT],
        }
        if run.error:
            return WatcherResult(Outcome.ERROR, run.error, payload=payload)
        if run.timed_out:
            detail = f"timed out after {self.props.timeout:g}s; process group killed"
            return WatcherResult(Outcome.FAILURE, detail, payload=payload)
        if run.exit_code != 0:
            line = first_line(run.stderr or run.stdout)
            detail = f"exit code {run.exit_code}" + (f": {line}" if line else "")
            return WatcherResult(Outcome.FAILURE, detail, payload=payload)
        if not self.props.parse_as_data:
            return WatcherResult(Outcome.SUCCESS, "exit code 0", payload=payload)
        try:
            data = json.loads(run.stdout)
        except ValueError as exc:
            return WatcherResult(
                Outcome.FAILURE, f"parse_as_data: stdout is not JSON: {exc}", payload=payload
            )
        if not isinstance(data, dict):
            return WatcherResult(
                Outcome.FAILURE, "parse_as_data: stdout is not a JSON object", payload=payload
            )
        return WatcherResult(Outcome.SUCCESS, "exit code 0", data=data, payload=payload)


def command_environment(machine: MachineHandle, watcher: str) -> dict[str, str]:
    """The minimal environment of a command ``watcher`` runs for ``machine``."""
    return minimal_environment(machine.directory, machine.name, machine.state, watcher)


class DataFile:
    """A JSON file a command reads: the machine's data (``$WATCHER_DATA``) or the node's
    facts (``$WATCHER_FACTS``).

    One file per watcher for its lifetime (created by ``files.create_new`` on first use, removed on
    close), written again only when the data changed or something changed the file since
    (its inode, size and mtime are checked before each run): a run costs one stat instead of
    a new temp file and an unlink. The rare write is a few hundred bytes, done on the loop so
    that no thread can still be writing when ``remove`` runs.
    """

    def __init__(self, directory: Path, prefix: str) -> None:
        self._directory = directory
        self._prefix = prefix
        self.path: str | None = None
        self._written: bytes | None = None
        self._stat: tuple[int, int, int] | None = None

    def update(self, data: Mapping[str, Any]) -> str:
        """The file's path, holding ``data``."""
        return self.update_content(json.dumps(data, sort_keys=True).encode())

    def update_content(self, content: bytes) -> str:
        """The file's path, holding ``content``."""
        if self.path is None or content != self._written or self._stat != self._current():
            self._write(content)
        assert self.path is not None
        return self.path

    def _current(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = Path(self.path).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _write(self, content: bytes) -> None:
        if self.path is None or self._current() is None:
            fd, self.path = create_new(self._directory, _safe(self._prefix), ".json")
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        self._written = content
        self._stat = self._current()

    def remove(self) -> None:
        path, self.path = self.path, None
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:100]
