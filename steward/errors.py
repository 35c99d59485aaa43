"""Every error steward raises on purpose.

    StewardError
    ├── SpecError            a machine.yaml (or steward.yaml) that is not valid; carries Problems
    ├── ConfigError          the daemon's configuration cannot be used
    ├── StoreError           the state database could not be read or written
    ├── TransitionRejected   a transition is unknown or not valid from the current state
    ├── MachineNotFound      no machine with that name runs on this node
    ├── NatsUnavailable      something needs NATS and none is configured, or it was closed
    ├── GovernorError        a governor that cannot be used: a bad name, none by that name, …
    │   └── NoSlot           no slot in a governor within the time allowed
    └── ApiError             the CLI could not talk to the daemon, or the daemon said no

Errors that reach a user carry what they need to act: the file, line, column and field path
of a bad definition, the socket that did not answer, the state the machine is in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a definition, where it is and what to do about it."""

    file: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    path: str  # field path, e.g. ``watchers[2].properties.timeout``; "" for the whole file
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where = f"{where}:{self.line}:{self.column}"
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {prefix}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "severity": self.severity.value,
        }


class StewardError(Exception):
    """Base of every error steward raises on purpose."""


class SpecError(StewardError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
        errors = [p for p in self.problems if p.severity is Severity.ERROR]
        first = str(errors[0]) if errors else "invalid"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ConfigError(StewardError):
    pass


class StoreError(StewardError):
    pass


class TransitionRejected(StewardError):
    def __init__(self, machine: str, transition: str, state: str, reason: str) -> None:
        self.machine = machine
        self.transition = transition
        self.state = state
        self.reason = reason
        super().__init__(
            f"{machine}: transition {transition!r} rejected in state {state!r}: {reason}"
        )


class MachineNotFound(StewardError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no machine named {name!r} on this node")


class NatsUnavailable(StewardError):
    pass


class GovernorError(StewardError):
    pass


class NoSlot(GovernorError):
    pass


class ApiError(StewardError):
    pass
