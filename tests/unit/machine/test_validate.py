"""The machine.yaml validator: every mistake found, each with file:line:column and field path.

Each bad input is the small valid machine below with one mistake in it, so the expected
problems are exactly the ones that mistake causes.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from steward.errors import Problem, Severity, SpecError
from steward.machine.source import weakly
from steward.machine.spec import MachineSpec
from steward.machine.validate import check_references
from steward.templates import Template
from steward.watchers.exec import ExecProperties
from steward.watchers.file import FileProperties
from steward.watchers.registry import default_registry
from steward.watchers.timer import TimerProperties
from tests.support.conformance import CORPUS
from tests.support.machines import MINIMAL, messages, parse, problems

SUPPORTED = ", ".join(default_registry().names())  # the error lists every registered type

# Lines 1-10: the top level and two transitions. No watchers, so a broken transition here
# cannot cause a follow-on problem in a watcher that refers to it.
# Lines 11-28: one watcher of each type (exec at 12, timer at 19, file at 25).
BASE = MINIMAL + textwrap.dedent(
    """\
    watchers:
      - name: check
        type: exec
        state_match: [idle]
        success_transition: start
        interval: 10s
        properties:
          command: ./check.sh
      - name: deadline
        type: timer
        state_match: [running]
        fail_transition: stop
        properties:
          timer: 5m
      - name: settings
        type: file
        properties:
          path: settings.json
    """
)

TOP_KNOWN = "description, initial_state, name, resume, splay_start, transitions, version, watchers"
TRANSITION_KNOWN = "description, destination, from, name, subscribe"
WATCHER_KNOWN = (
    "announce_interval, fail_transition, foreign_state_required, interval, name, properties, "
    "state_match, success_transition, type"
)
EXEC_KNOWN = (
    "command, disown, environment, gather_initial_state, governor, governor_timeout, "
    "parse_as_data, "
    "suppress_success_announce, timeout"
)
SEMVER_HINT = "is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)"
NAME_HINT = (
    "use letters, digits, '_', '-' and '.', starting with a letter or digit "
    "(at most 128 characters)"
)
DURATION_HINT = "(use a number and a unit: ms, s, m, h, d, w; e.g. 1m30s)"


def mutate(old: str, new: str, base: str = BASE) -> str:
    """``base`` with its one occurrence of ``old`` replaced by ``new``."""
    assert base.count(old) == 1, f"{old!r} must occur exactly once"
    return base.replace(old, new)


def top(line: str, base: str = BASE) -> str:
    """A top-level line inserted as line 4."""
    return mutate("initial_state: idle\n", f"initial_state: idle\n{line}\n", base)


def transition_field(line: str, base: str = BASE) -> str:
    """A field added to the first transition, as line 8."""
    return mutate("    destination: running\n", f"    destination: running\n    {line}\n", base)


def watcher_field(line: str) -> str:
    """A field added to the exec watcher ``check``, as line 17."""
    return mutate("    interval: 10s\n", f"    interval: 10s\n    {line}\n")


def exec_property(line: str) -> str:
    """A property added to the exec watcher ``check``, as line 19."""
    return mutate("      command: ./check.sh\n", f"      command: ./check.sh\n      {line}\n")


def timer_properties(*lines: str) -> str:
    """The timer watcher's properties replaced; the first one is line 24."""
    body = "".join(f"      {line}\n" for line in lines)
    return mutate("      timer: 5m\n", body)


def file_properties(*lines: str) -> str:
    """The file watcher's properties replaced; the first one is line 28."""
    body = "".join(f"      {line}\n" for line in lines)
    return mutate("      path: settings.json\n", body)


# --- the valid base --------------------------------------------------------------------------


def test_base_machine_is_valid() -> None:
    spec = parse(BASE)
    assert spec.name == "demo"
    assert spec.version == "1.0.0"
    assert spec.states == ("idle", "running")
    assert [t.name for t in spec.transitions] == ["start", "stop"]
    assert [w.name for w in spec.watchers] == ["check", "deadline", "settings"]
    check, deadline, settings = spec.watchers
    assert check.properties == ExecProperties(command=Template("./check.sh"), argv=("./check.sh",))
    assert check.interval == 10.0
    assert deadline.properties == TimerProperties(timer=300.0)
    assert settings.properties == FileProperties(path="settings.json")
    assert spec.splay_start == 0.0
    assert spec.resume is True


def test_optional_fields_are_read() -> None:
    text = exec_property(
        "timeout: 1m30s\n      environment: [A=1, B_2=x=y]\n      parse_as_data: true"
    )
    spec = parse(top("splay_start: 30\nresume: false\ndescription: a demo", base=text))
    assert (spec.splay_start, spec.resume, spec.description) == (30.0, False, "a demo")
    props = spec.watchers[0].properties
    assert props.timeout == 90.0
    assert [t.source for t in props.environment] == ["A=1", "B_2=x=y"]
    assert props.parse_as_data is True


# --- one mistake each ------------------------------------------------------------------------

BAD_INPUTS = [
    # required top-level fields
    pytest.param(
        mutate("name: demo\n", ""), ["m.yaml:1:1: missing required field 'name'"], id="no-name"
    ),
    pytest.param(
        mutate("version: 1.0.0\n", ""),
        ["m.yaml:1:1: missing required field 'version'"],
        id="no-version",
    ),
    pytest.param(
        mutate("initial_state: idle\n", ""),
        ["m.yaml:1:1: missing required field 'initial_state'"],
        id="no-initial-state",
    ),
    pytest.param(
        "name: demo\nversion: 1.0.0\ninitial_state: idle\n",
        ["m.yaml:1:1: missing required field 'transitions'"],
        id="no-transitions",
    ),
    # top-level types and values
    pytest.param(
        mutate("name: demo", "name: 1"),
        ["m.yaml:1:7: name: must be a string, not an integer"],
        id="name-int",
    ),
    pytest.param(
        mutate("name: demo", 'name: ""'),
        ["m.yaml:1:7: name: must not be empty"],
        id="name-empty",
    ),
    pytest.param(
        mutate("name: demo", "name: my machine"),
        [f"m.yaml:1:7: name: invalid machine name 'my machine': {NAME_HINT}"],
        id="name-space",
    ),
    pytest.param(
        mutate("name: demo", "name: -demo"),
        [f"m.yaml:1:7: name: invalid machine name '-demo': {NAME_HINT}"],
        id="name-leading-dash",
    ),
    pytest.param(
        mutate("version: 1.0.0", "version: 1.0"),
        [
            "m.yaml:2:10: version: must be a semantic version string such as 1.0.0, "
            "not a number (quote it if YAML reads it as a number)"
        ],
        id="version-float",
    ),
    pytest.param(
        mutate("version: 1.0.0", "version: 1"),
        [
            "m.yaml:2:10: version: must be a semantic version string such as 1.0.0, "
            "not an integer (quote it if YAML reads it as a number)"
        ],
        id="version-int",
    ),
    pytest.param(
        mutate("version: 1.0.0", 'version: "1.0"'),
        [f"m.yaml:2:10: version: '1.0' {SEMVER_HINT}"],
        id="version-two-parts",
    ),
    pytest.param(
        mutate("version: 1.0.0", "version: v1.0.0"),
        [f"m.yaml:2:10: version: 'v1.0.0' {SEMVER_HINT}"],
        id="version-v-prefix",
    ),
    pytest.param(
        mutate("version: 1.0.0", "version: 1.0.0.0"),
        [f"m.yaml:2:10: version: '1.0.0.0' {SEMVER_HINT}"],
        id="version-four-parts",
    ),
    pytest.param(
        mutate("initial_state: idle", "initial_state: 0"),
        ["m.yaml:3:16: initial_state: must be a string, not an integer"],
        id="initial-state-int",
    ),
    pytest.param(
        top('splay_start: "x"'),
        ["m.yaml:4:14: splay_start: must be an integer, not a string"],
        id="splay-string",
    ),
    pytest.param(
        top("splay_start: 1.5"),
        ["m.yaml:4:14: splay_start: must be an integer, not a number"],
        id="splay-float",
    ),
    pytest.param(
        top("splay_start: -5"),
        ["m.yaml:4:14: splay_start: must be at least 0, got -5"],
        id="splay-negative",
    ),
    pytest.param(
        top("splay_start: 100000"),
        ["m.yaml:4:14: splay_start: must be at most 86400, got 100000"],
        id="splay-too-large",
    ),
    pytest.param(
        # YAML 1.2: `yes` is a string, not a boolean
        top("resume: yes"),
        ["m.yaml:4:9: resume: must be true or false, not a string"],
        id="resume-yes",
    ),
    pytest.param(
        top("description: 5"),
        ["m.yaml:4:14: description: must be a string, not an integer"],
        id="description-int",
    ),
    pytest.param(
        top("intial_state: idle"),
        [f"m.yaml:4:1: intial_state: unknown field 'intial_state' (known: {TOP_KNOWN})"],
        id="unknown-top-level-key",
    ),
    # transitions
    pytest.param(
        "name: demo\nversion: 1.0.0\ninitial_state: idle\ntransitions: []\n",
        ["m.yaml:4:14: transitions: must list at least one transition"],
        id="transitions-empty",
    ),
    pytest.param(
        "name: demo\nversion: 1.0.0\ninitial_state: idle\ntransitions: start\n",
        ["m.yaml:4:14: transitions: must be a list, not a string"],
        id="transitions-not-list",
    ),
    pytest.param(
        mutate(
            "  - name: stop\n    from: [running]\n    destination: idle\n", "  - stop\n", MINIMAL
        ),
        ["m.yaml:8:5: transitions[1]: must be a mapping, not a string"],
        id="transition-not-mapping",
    ),
    pytest.param(
        transition_field("to: idle"),
        [
            "m.yaml:8:5: transitions[0].to: unknown field 'to' in transition "
            f"(known: {TRANSITION_KNOWN})"
        ],
        id="unknown-transition-key",
    ),
    pytest.param(
        mutate(
            "  - name: stop\n    from: [running]\n", "  - name: start\n    from: [idle]\n", MINIMAL
        ),
        [
            "m.yaml:9:12: transitions[1].from[0]: transition 'start' from 'idle' already leads "
            "to 'running' (line 6); one name and state lead to one destination"
        ],
        id="transition-conflict",
    ),
    pytest.param(
        mutate("    from: [idle]\n", "    from: idle\n", MINIMAL),
        ["m.yaml:6:11: transitions[0].from: must be a list of strings, not a string"],
        id="from-not-list",
    ),
    pytest.param(
        mutate("    from: [idle]\n", "    from: [idle, 3]\n"),
        ["m.yaml:6:18: transitions[0].from[1]: must be a string, not an integer"],
        id="from-non-string",
    ),
    pytest.param(
        mutate("    destination: running\n", "", MINIMAL),
        ["m.yaml:5:5: transitions[0]: missing required field 'transitions[0].destination'"],
        id="no-destination",
    ),
    pytest.param(
        transition_field("subscribe:\n      - machine_name: other"),
        [
            "m.yaml:9:9: transitions[0].subscribe[0]: "
            "missing required field 'transitions[0].subscribe[0].event'"
        ],
        id="subscribe-no-event",
    ),
    pytest.param(
        transition_field(
            "subscribe:\n      - machine_name: other\n        event: go\n        when: x"
        ),
        [
            "m.yaml:11:9: transitions[0].subscribe[0].when: unknown field 'when' in subscribe "
            "(known: event, machine_name)"
        ],
        id="subscribe-unknown-key",
    ),
    pytest.param(
        transition_field("subscribe: other"),
        ["m.yaml:8:16: transitions[0].subscribe: must be a list, not a string"],
        id="subscribe-not-list",
    ),
    # watchers
    pytest.param(
        MINIMAL + "watchers: {}\n",
        ["m.yaml:11:11: watchers: must be a list, not a mapping"],
        id="watchers-not-list",
    ),
    pytest.param(
        BASE + "  - oops\n",
        ["m.yaml:29:5: watchers[3]: must be a mapping, not a string"],
        id="watcher-not-mapping",
    ),
    pytest.param(
        watcher_field("intervall: 5s"),
        [
            "m.yaml:17:5: watchers[0].intervall: unknown field 'intervall' in watcher "
            f"(known: {WATCHER_KNOWN})"
        ],
        id="unknown-watcher-key",
    ),
    pytest.param(
        mutate("  - name: deadline\n", "  - name: check\n"),
        ["m.yaml:19:11: watchers[1].name: duplicate watcher name 'check' (first at line 12)"],
        id="duplicate-watcher",
    ),
    pytest.param(
        mutate("    type: exec\n", ""),
        ["m.yaml:12:5: watchers[0]: missing required field 'watchers[0].type'"],
        id="watcher-no-type",
    ),
    pytest.param(
        mutate("    type: exec\n", "    type: 5\n"),
        ["m.yaml:13:11: watchers[0].type: must be a string, not an integer"],
        id="watcher-type-int",
    ),
    pytest.param(
        mutate("    type: exec\n", "    type: telepathy\n"),
        [
            "m.yaml:13:11: watchers[0].type: unsupported watcher type 'telepathy' "
            f"(watcher 'check'); supported: {SUPPORTED}"
        ],
        id="unsupported-type",
    ),
    pytest.param(
        mutate("    state_match: [idle]", "    state_match: [idle, stopped]"),
        [
            "m.yaml:14:25: watchers[0].state_match[1]: "
            "no state named 'stopped' (states: idle, running)"
        ],
        id="state-match-unknown",
    ),
    pytest.param(
        mutate("    state_match: [idle]", "    state_match: idle"),
        ["m.yaml:14:18: watchers[0].state_match: must be a list of strings, not a string"],
        id="state-match-not-list",
    ),
    pytest.param(
        mutate("    state_match: [idle]", "    state_match: ['']"),
        ["m.yaml:14:19: watchers[0].state_match[0]: must not be empty"],
        id="state-match-empty-string",
    ),
    pytest.param(
        mutate("success_transition: start", "success_transition: begin"),
        ["m.yaml:15:25: watchers[0].success_transition: no transition named 'begin'"],
        id="success-transition-unknown",
    ),
    pytest.param(
        mutate("success_transition: start", "success_transition: running"),
        [
            "m.yaml:15:25: watchers[0].success_transition: no transition named 'running'; "
            "'running' is a state, the transition to it is 'start'"
        ],
        id="success-transition-is-a-state",
    ),
    pytest.param(
        mutate("fail_transition: stop", "fail_transition: halt"),
        ["m.yaml:22:22: watchers[1].fail_transition: no transition named 'halt'"],
        id="fail-transition-unknown",
    ),
    pytest.param(
        mutate("fail_transition: stop", "fail_transition: idle"),
        [
            "m.yaml:22:22: watchers[1].fail_transition: no transition named 'idle'; "
            "'idle' is a state, the transition to it is 'stop'"
        ],
        id="fail-transition-is-a-state",
    ),
    pytest.param(
        mutate("    interval: 10s", "    interval: 50ms"),
        [
            "m.yaml:16:15: watchers[0].interval: "
            "must be at least 100ms (or 0 to run only on state entry)"
        ],
        id="interval-below-100ms",
    ),
    pytest.param(
        mutate("    interval: 10s", "    interval: 10 seconds"),
        [f"m.yaml:16:15: watchers[0].interval: invalid duration '10 seconds' {DURATION_HINT}"],
        id="interval-invalid-text",
    ),
    pytest.param(
        mutate("    interval: 10s", "    interval: -1s"),
        [f"m.yaml:16:15: watchers[0].interval: invalid duration '-1s' {DURATION_HINT}"],
        id="interval-negative",
    ),
    pytest.param(
        mutate("    interval: 10s", "    interval: 5"),
        ["m.yaml:16:15: watchers[0].interval: duration 5 has no unit (use e.g. 5s)"],
        id="interval-bare-int",
    ),
    pytest.param(
        watcher_field("announce_interval: 30s"),
        ["m.yaml:17:24: watchers[0].announce_interval: must be at least 1m, got 30s"],
        id="announce-interval-below-1m",
    ),
    pytest.param(
        mutate(
            "    state_match: [idle]\n",
            "    state_match: [idle]\n    foreign_state_required:\n      - machine_name: other\n",
        ),
        [
            "m.yaml:16:9: watchers[0].foreign_state_required[0]: "
            "missing required field 'watchers[0].foreign_state_required[0].state'"
        ],
        id="foreign-state-no-state",
    ),
    pytest.param(
        mutate(
            "    state_match: [idle]\n",
            "    state_match: [idle]\n"
            "    foreign_state_required:\n      - machine_name: other\n"
            "        state: ready\n        stat: ready\n",
        ),
        [
            "m.yaml:18:9: watchers[0].foreign_state_required[0].stat: unknown field 'stat' "
            "in foreign_state_required (known: machine_name, state)"
        ],
        id="foreign-state-unknown-key",
    ),
    pytest.param(
        mutate("    properties:\n      command: ./check.sh\n", "    properties: ./check.sh\n"),
        ["m.yaml:17:17: watchers[0].properties: must be a mapping, not a string"],
        id="properties-not-mapping",
    ),
    pytest.param(
        mutate("    properties:\n      command: ./check.sh\n", "    properties: [./check.sh]\n"),
        ["m.yaml:17:17: watchers[0].properties: must be a mapping, not a list"],
        id="properties-list",
    ),
    # exec properties
    pytest.param(
        mutate("      command: ./check.sh\n", "      timeout: 5s\n"),
        [
            "m.yaml:18:7: watchers[0].properties: "
            "missing required field 'watchers[0].properties.command'"
        ],
        id="exec-no-command",
    ),
    pytest.param(
        mutate("    properties:\n      command: ./check.sh\n", ""),
        ["m.yaml:12:5: watchers[0]: missing required field 'watchers[0].properties.command'"],
        id="exec-no-properties",
    ),
    pytest.param(
        mutate("      command: ./check.sh\n", "      command: ./check.sh 'oops\n"),
        [
            "m.yaml:18:16: watchers[0].properties.command: "
            "cannot split command: No closing quotation"
        ],
        id="exec-unbalanced-quote",
    ),
    pytest.param(
        mutate("      command: ./check.sh\n", "      command: ' '\n"),
        ["m.yaml:18:16: watchers[0].properties.command: must not be empty"],
        id="exec-blank-command",
    ),
    pytest.param(
        exec_property("timeuot: 5s"),
        [
            "m.yaml:19:7: watchers[0].properties.timeuot: unknown field 'timeuot' "
            f"in exec properties (known: {EXEC_KNOWN})"
        ],
        id="exec-unknown-property",
    ),
    pytest.param(
        exec_property('timeout: "10"'),
        ["m.yaml:19:16: watchers[0].properties.timeout: duration '10' has no unit (use e.g. 10s)"],
        id="exec-timeout-string-no-unit",
    ),
    pytest.param(
        exec_property("timeout: 10"),
        ["m.yaml:19:16: watchers[0].properties.timeout: duration 10 has no unit (use e.g. 10s)"],
        id="exec-timeout-bare-int",
    ),
    pytest.param(
        exec_property("timeout: 1.5"),
        ["m.yaml:19:16: watchers[0].properties.timeout: duration 1.5 has no unit (use e.g. 1.5s)"],
        id="exec-timeout-bare-float",
    ),
    pytest.param(
        exec_property("timeout: 500us"),
        [
            "m.yaml:19:16: watchers[0].properties.timeout: "
            "must be 0 (the default, 10s) or at least 1ms"
        ],
        id="exec-timeout-below-1ms",
    ),
    pytest.param(
        exec_property("timeout: true"),
        [
            "m.yaml:19:16: watchers[0].properties.timeout: "
            "must be a duration such as 10s, not a boolean"
        ],
        id="exec-timeout-bool",
    ),
    pytest.param(
        exec_property("timeout: 1m30"),
        [f"m.yaml:19:16: watchers[0].properties.timeout: invalid duration '1m30' {DURATION_HINT}"],
        id="exec-timeout-trailing-number",
    ),
    pytest.param(
        exec_property("environment: [NOEQUALS]"),
        [
            "m.yaml:19:21: watchers[0].properties.environment[0]: "
            "must be KEY=VALUE with a valid variable name, got 'NOEQUALS'"
        ],
        id="exec-env-no-equals",
    ),
    pytest.param(
        exec_property("environment: [A=1, '1A=b']"),
        [
            "m.yaml:19:26: watchers[0].properties.environment[1]: "
            "must be KEY=VALUE with a valid variable name, got '1A=b'"
        ],
        id="exec-env-leading-digit",
    ),
    # templates in exec properties: refused at load, with the column inside the template
    pytest.param(
        mutate(
            "      command: ./check.sh\n", "      command: './check.sh {{ lokup \"facts.x\" 1 }}'\n"
        ),
        [
            "m.yaml:18:16: watchers[0].properties.command: invalid template (column 15 of the "
            "template): function 'lokup' not defined (known: Base64Decode, Base64Encode, "
            "Capitalize, StringsJoin, Title, ToLower, ToUpper, lookup)"
        ],
        id="exec-command-template-unknown-function",
    ),
    pytest.param(
        mutate(
            "      command: ./check.sh\n",
            "      command: |-\n        ./check.sh\n        {{ if }}\n",
        ),
        [
            "m.yaml:18:16: watchers[0].properties.command: invalid template (line 2, column 4 "
            "of the template): {{ if }} is not supported: steward templates hold function calls "
            "and pipelines only"
        ],
        id="exec-command-template-multiline-column",
    ),
    pytest.param(
        mutate("      command: ./check.sh\n", "      command: './check.sh {{ .Identity }}'\n"),
        [
            "m.yaml:18:16: watchers[0].properties.command: invalid template: '.' holds nothing "
            "in a watcher property (Choria gives these templates no data); use lookup "
            '"facts.NAME" or lookup "data.NAME"'
        ],
        id="exec-command-template-dot",
    ),
    pytest.param(
        mutate("      command: ./check.sh\n", '      command: "./check.sh \'{{/* c */}}"\n'),
        [
            "m.yaml:18:16: watchers[0].properties.command: "
            "cannot split command: No closing quotation"
        ],
        id="exec-static-template-unsplittable",
    ),
    pytest.param(
        exec_property("environment: ['A-B={{ lookup \"facts.x\" 1 }}']"),
        [
            "m.yaml:19:21: watchers[0].properties.environment[0]: "
            "must be KEY=VALUE with a valid variable name, got 'A-B='"
        ],
        id="exec-env-template-bad-name",
    ),
    pytest.param(
        exec_property("environment: ['A={{ ToUpper 1 }}']"),
        [
            "m.yaml:19:21: watchers[0].properties.environment[0]: invalid template (column 14 "
            "of the template): ToUpper: argument 1 must be a string, not a number"
        ],
        id="exec-env-template-bad-argument",
    ),
    pytest.param(
        exec_property("environment: ['A-B=x']"),
        [
            "m.yaml:19:21: watchers[0].properties.environment[0]: "
            "must be KEY=VALUE with a valid variable name, got 'A-B=x'"
        ],
        id="exec-env-dash",
    ),
    pytest.param(
        exec_property("environment: ['=x']"),
        [
            "m.yaml:19:21: watchers[0].properties.environment[0]: "
            "must be KEY=VALUE with a valid variable name, got '=x'"
        ],
        id="exec-env-empty-key",
    ),
    pytest.param(
        exec_property("environment: {A: 1}"),
        [
            "m.yaml:19:20: watchers[0].properties.environment: "
            "must be a list of strings, not a mapping"
        ],
        id="exec-env-not-list",
    ),
    pytest.param(
        exec_property("parse_as_data: yes"),
        ["m.yaml:19:22: watchers[0].properties.parse_as_data: must be true or false, not a string"],
        id="exec-parse-as-data-yes",
    ),
    # timer properties
    pytest.param(
        timer_properties("splay: true"),
        [
            "m.yaml:24:7: watchers[1].properties: "
            "missing required field 'watchers[1].properties.timer'"
        ],
        id="timer-no-timer",
    ),
    pytest.param(
        timer_properties("timer: 0s"),
        ["m.yaml:24:14: watchers[1].properties.timer: must be at least 1ms, got 0s"],
        id="timer-zero",
    ),
    pytest.param(
        timer_properties("timer: 5m", "repeat: true"),
        [
            "m.yaml:25:7: watchers[1].properties.repeat: unknown field 'repeat' "
            "in timer properties (known: splay, timer)"
        ],
        id="timer-unknown-property",
    ),
    # file properties
    pytest.param(
        file_properties("gather_initial_state: true"),
        [
            "m.yaml:28:7: watchers[2].properties: "
            "missing required field 'watchers[2].properties.path'"
        ],
        id="file-no-path",
    ),
    pytest.param(
        file_properties("path: settings.json", "recursive: true"),
        [
            "m.yaml:29:7: watchers[2].properties.recursive: unknown field 'recursive' "
            "in file properties (known: contents, gather_initial_state, group, mode, owner, path)"
        ],
        id="file-unknown-property",
    ),
    # the document itself
    pytest.param(
        "- name: demo\n- version: 1.0.0\n",
        ["m.yaml:1:1: the document must be a mapping, not a list"],
        id="document-list",
    ),
    pytest.param(
        "demo\n", ["m.yaml:1:1: the document must be a mapping, not a string"], id="document-scalar"
    ),
    pytest.param("", ["m.yaml:1:1: the document must be a mapping, not null"], id="document-empty"),
    pytest.param(
        mutate("    from: [idle]", "    from: [idle"),
        ["m.yaml:7:16: YAML: expected ',' or ']', but got ':'"],
        id="yaml-unclosed-flow-sequence",
    ),
    pytest.param(
        mutate("name: demo", "name: demo: x"),
        ["m.yaml:1:11: YAML: mapping values are not allowed here"],
        id="yaml-nested-colon",
    ),
    pytest.param(
        mutate("version: 1.0.0", "\tversion: 1.0.0"),
        ["m.yaml:2:1: YAML: found character '\\t' that cannot start any token"],
        id="yaml-tab",
    ),
    pytest.param(
        top("name: other"),
        [
            'm.yaml:4:1: YAML: found duplicate key "name" with value "other" '
            '(original value: "demo")'
        ],
        id="yaml-duplicate-top-level-key",
    ),
    pytest.param(
        transition_field("destination: idle"),
        [
            'm.yaml:8:5: YAML: found duplicate key "destination" with value "idle" '
            '(original value: "running")'
        ],
        id="yaml-duplicate-transition-key",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUTS)
def test_one_mistake_gives_exactly_its_problem(text: str, expected: list[str]) -> None:
    assert messages(text) == expected


def test_bad_inputs_are_distinct() -> None:
    texts = [p.values[0] for p in BAD_INPUTS]
    assert len(set(texts)) == len(texts) >= 35


def test_problem_carries_line_column_and_path() -> None:
    [problem] = problems(exec_property("timeout: 10"))
    assert (problem.file, problem.line, problem.column, problem.path) == (
        "m.yaml",
        19,
        16,
        "watchers[0].properties.timeout",
    )
    assert problem.message == "duration 10 has no unit (use e.g. 10s)"
    assert problem.severity is Severity.ERROR


def test_not_utf8_is_a_spec_error() -> None:
    [problem] = problems(b"name: demo\nversion: 1\xff\n")
    assert (problem.file, problem.path, problem.message) == (
        "m.yaml",
        "",
        "not UTF-8 text (byte 21)",
    )


def test_not_utf8_names_line_and_column() -> None:
    assert messages(b"name: demo\nversion: 1\xff\n") == ["m.yaml:2:11: not UTF-8 text (byte 21)"]


def test_every_mistake_is_reported() -> None:
    text = mutate("name: demo", "name: 1")
    text = mutate("version: 1.0.0", "version: x", text)
    text = mutate("    interval: 10s", "    interval: 50ms", text)
    with pytest.raises(SpecError) as caught:
        parse(text)
    assert [str(p) for p in caught.value.problems] == [
        "m.yaml:1:7: name: must be a string, not an integer",
        f"m.yaml:2:10: version: 'x' {SEMVER_HINT}",
        "m.yaml:16:15: watchers[0].interval: "
        "must be at least 100ms (or 0 to run only on state entry)",
    ]
    assert str(caught.value) == "m.yaml:1:7: name: must be a string, not an integer (and 2 more)"


def test_problems_in_different_watchers_are_all_reported() -> None:
    text = mutate("      command: ./check.sh\n", "      command: ./check.sh\n      timeout: 10\n")
    text = mutate("      timer: 5m\n", "      timer: soon\n", text)
    text = mutate("      path: settings.json\n", "      path: [a]\n", text)
    assert messages(text) == [
        "m.yaml:19:16: watchers[0].properties.timeout: duration 10 has no unit (use e.g. 10s)",
        f"m.yaml:25:14: watchers[1].properties.timer: invalid duration 'soon' {DURATION_HINT}",
        "m.yaml:29:13: watchers[2].properties.path: must be a string, not a list",
    ]


# --- behaviour believed wrong: see the reasons --------------------------------------------------


def test_null_top_level_value_points_at_its_own_line() -> None:
    assert messages(mutate("name: demo", "name:")) == [
        "m.yaml:1:1: name: must be a string, not null"
    ]


def test_null_property_on_last_line_points_inside_the_file() -> None:
    # the exec watcher is the last one, and `timeout:` the file's last line (19)
    text = BASE[: BASE.index("  - name: deadline")] + "      timeout:\n"
    assert messages(text) == [
        "m.yaml:19:7: watchers[0].properties.timeout: must be a duration such as 10s, not null"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            timer_properties("timer: 0"),
            "m.yaml:24:14: watchers[1].properties.timer: must be at least 1ms, got 0",
            id="timer",
        ),
    ],
)
def test_bare_zero_duration_respects_the_minimum(text: str, expected: str) -> None:
    assert messages(text) == [expected]


def test_bare_zero_interval_is_allowed() -> None:
    spec = parse(mutate("    interval: 10s", "    interval: 0"))
    assert spec.watchers[0].interval == 0.0


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "    destination: running\n",
            "    destination: 5\n",
            "m.yaml:7:18: transitions[0].destination: must be a string, not an integer",
            id="destination-int",
        ),
    ],
)
def test_broken_transition_is_not_reported_again_by_watchers(
    old: str, new: str, expected: str
) -> None:
    assert messages(mutate(old, new)) == [expected]


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_non_finite_duration_is_a_type_error(value: str) -> None:
    assert messages(mutate("    interval: 10s", f"    interval: {value}")) == [
        "m.yaml:16:15: watchers[0].interval: must be a duration such as 10s, not a number"
    ]


def test_unsupported_type_of_unnamed_watcher() -> None:
    text = mutate("  - name: check\n    type: exec\n", "  - type: telepathy\n")
    assert messages(text) == [
        "m.yaml:12:5: watchers[0]: missing required field 'watchers[0].name'",
        "m.yaml:12:11: watchers[0].type: unsupported watcher type 'telepathy'; "
        f"supported: {SUPPORTED}",
    ]


def test_command_with_empty_program_is_rejected() -> None:
    text = mutate("      command: ./check.sh\n", "      command: '\"\" --verbose'\n")
    assert messages(text) == ["m.yaml:18:16: watchers[0].properties.command: must not be empty"]


def test_second_document_is_explained() -> None:
    assert messages(BASE + "---\nname: other\n") == [
        "m.yaml:29:1: YAML: expected a single document in the stream, but found another document"
    ]


# --- YAML 1.2 and the Choria conformance corpus ------------------------------------------------


def load_conformance(name: str) -> MachineSpec:
    return parse((CORPUS / name).read_bytes(), file=name)


def conformance_problems(name: str) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_conformance(name)
    return caught.value.problems


def test_yaml_12_keeps_on_off_yes_no_as_strings() -> None:
    text = mutate("    destination: idle\n", "    destination: on\n", MINIMAL)
    text = mutate("    from: [running]\n", "    from: [running, off, yes, no]\n", text)
    spec = parse(text)
    assert spec.states == ("idle", "running", "off", "yes", "no", "on")


def test_hvac_as_published_has_one_error_and_keeps_on_off_names() -> None:
    [problem] = conformance_problems("hvac.yaml")
    assert (problem.line, problem.column, problem.path, problem.message) == (
        51,
        25,
        "watchers[1].success_transition",
        "no transition named 'idle'; 'idle' is a state, "
        "the transition to it is 'variables_changed' or 'air_good'",
    )


def test_hvac_fixed_keeps_watchers_named_on_and_off() -> None:
    text = (CORPUS / "hvac.yaml").read_text()
    fixed = text.replace("success_transition: idle", "success_transition: variables_changed")
    assert fixed != text
    spec = parse(fixed, file="hvac.yaml")
    names = [w.name for w in spec.watchers]
    assert names == ["variables", "off", "on", "monitor"]
    assert all(type(n) is str for n in names)
    assert spec.watcher("on") is not None and spec.watcher("off") is not None


@pytest.mark.parametrize("name", ["testmachine.yaml", "subscriber.yaml"])
def test_conformance_machines_are_valid(name: str) -> None:
    spec = load_conformance(name)
    assert spec.splay_start == 10.0


def test_testmachine_shape() -> None:
    spec = load_conformance("testmachine.yaml")
    assert spec.name == "TestMachine"
    assert spec.states == ("unknown", "one", "two")
    assert [(w.name, w.success_transition, w.fail_transition) for w in spec.watchers] == [
        ("true_1", "fire_1", "fire_1"),
        ("true_2", "fire_2", "fire_1"),
    ]


def test_machine_manager_loads() -> None:
    # Choria's manager machine: two kv watchers and a machines watcher, all supported
    spec = load_conformance("machine-manager.yaml")
    assert [w.type for w in spec.watchers] == ["kv", "kv", "machines"]


# --- references between machines --------------------------------------------------------------

LEADER = textwrap.dedent(
    """\
    name: leader
    version: 1.0.0
    initial_state: idle
    transitions:
      - name: go
        from: [idle]
        destination: busy
    """
)

FOLLOWER = textwrap.dedent(
    """\
    name: follower
    version: 1.0.0
    initial_state: idle
    transitions:
      - name: go
        from: [idle]
        destination: busy
        subscribe:
          - machine_name: leader
            event: go
    watchers:
      - name: wait
        type: timer
        foreign_state_required:
          - machine_name: leader
            state: busy
        fail_transition: go
        properties:
          timer: 1m
    """
)


def test_references_that_resolve_are_fine() -> None:
    leader = parse(LEADER, file="leader.yaml")
    follower = parse(FOLLOWER, file="follower.yaml")
    assert check_references([leader, follower]) == []


def test_duplicate_machine_names() -> None:
    first = parse(LEADER, file="a.yaml")
    second = parse(LEADER, file="b.yaml")
    assert [str(p) for p in check_references([first, second])] == [
        "b.yaml:1:7: name: duplicate machine name 'leader' (also defined in a.yaml)"
    ]


def test_subscribe_to_missing_transition_is_an_error() -> None:
    leader = parse(LEADER, file="leader.yaml")
    follower = parse(mutate("        event: go", "        event: went", FOLLOWER), file="f.yaml")
    [problem] = check_references([leader, follower])
    assert problem.severity is Severity.ERROR
    assert str(problem) == (
        "f.yaml:9:9: transitions[0].subscribe[0]: machine 'leader' has no transition named 'went'"
    )


def test_subscribe_to_machine_not_loaded_is_only_a_warning() -> None:
    follower = parse(FOLLOWER, file="f.yaml")
    found = check_references([follower])
    assert [p.severity for p in found] == [Severity.WARNING, Severity.WARNING]
    assert [str(p) for p in found] == [
        "f.yaml:9:9: transitions[0].subscribe[0]: warning: machine 'leader' is not loaded "
        "here; the subscription waits until it is",
        "f.yaml:15:9: watchers[0].foreign_state_required[0]: warning: machine 'leader' is not "
        "loaded here; the watcher stays inactive until it is",
    ]


def test_foreign_state_required_naming_unknown_state_is_an_error() -> None:
    leader = parse(LEADER, file="leader.yaml")
    follower = parse(mutate("        state: busy", "        state: done", FOLLOWER), file="f.yaml")
    [problem] = check_references([leader, follower])
    assert problem.severity is Severity.ERROR
    assert str(problem) == (
        "f.yaml:15:9: watchers[0].foreign_state_required[0]: "
        "machine 'leader' has no state named 'done' (states: idle, busy)"
    )


def test_conformance_subscriber_follows_testmachine() -> None:
    testmachine = load_conformance("testmachine.yaml")
    subscriber = load_conformance("subscriber.yaml")
    assert check_references([testmachine, subscriber]) == []
    [alone] = check_references([subscriber])
    assert str(alone) == (
        "subscriber.yaml:11:9: transitions[0].subscribe[0]: warning: machine 'TestMachine' "
        "is not loaded here; the subscription waits until it is"
    )


def test_one_name_may_lead_on_from_different_states() -> None:
    # the FSM Choria uses keys an event by its name and source state
    spec = parse(
        mutate(
            "  - name: stop\n    from: [running]\n",
            "  - name: start\n    from: [running]\n",
            MINIMAL,
        )
    )
    assert [(t.name, t.sources, t.destination) for t in spec.transitions] == [
        ("start", ("idle",), "running"),
        ("start", ("running",), "idle"),
    ]


@pytest.mark.parametrize("line", ["    from: []\n", ""])
def test_a_transition_without_from_states_loads_with_a_warning(line: str) -> None:
    text = mutate("    from: [idle]\n", line, MINIMAL)
    spec = parse(text)
    assert spec.transitions[0].sources == ()
    warnings = [str(p) for p in spec.warnings if p.severity is Severity.WARNING]
    assert len(warnings) == 1
    assert "transitions[0]" in warnings[0]
    assert "has no 'from' states: it can never fire" in warnings[0]


def test_a_timer_with_success_transition_is_refused() -> None:
    text = MINIMAL + (
        "watchers:\n  - name: deadline\n    type: timer\n    success_transition: start\n"
        "    properties: {timer: 5m}\n"
    )
    assert messages(text) == [
        "m.yaml:14:25: watchers[0].success_transition: a timer watcher never succeeds: it fires "
        "only fail_transition (Choria refuses it too: 'timer watcher does not support success "
        "events')"
    ]


def test_watcher_properties_are_weakly_typed_as_choria_decodes_them() -> None:
    # Choria decodes properties with mapstructure's WeaklyTypedInput; its own machines rely on it
    text = exec_property(
        'parse_as_data: "true"\n      suppress_success_announce: 1\n'
        '      environment: A=1\n      timeout: "2s"'
    )
    text = mutate("      path: settings.json\n", "      path: 5\n", text)
    spec = parse(text)
    exec_props = spec.watchers[0].properties
    assert isinstance(exec_props, ExecProperties)
    assert (exec_props.parse_as_data, exec_props.suppress_success_announce) == (True, True)
    assert [t.source for t in exec_props.environment] == ["A=1"]
    file_props = spec.watchers[2].properties
    assert isinstance(file_props, FileProperties) and file_props.path == "5"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("true", bool, True),
        ("F", bool, False),
        ("", bool, False),
        (2, bool, True),
        (0.0, bool, False),
        ("yes", bool, None),  # strconv.ParseBool does not know it
        ("10", int, 10),
        ("0x1f", int, 31),
        ("017", int, 15),  # Go's base 0: a leading 0 is octal
        ("-0b101", int, -5),
        (True, int, 1),
        (2.9, int, 2),  # truncated
        ("ten", int, None),
        (10, str, "10"),
        (1.5, str, "1.5"),
        (1.0, str, "1"),
        (1e20, str, "100000000000000000000"),
        (False, str, "0"),
        ("a", list, ["a"]),
        ([], dict, {}),
        ({"a": 1}, list, None),
    ],
)
def test_weak_decoding_follows_mapstructure(value: Any, kind: type, expected: Any) -> None:
    assert weakly(value, kind) == expected


def test_top_level_fields_stay_strict() -> None:
    assert messages(mutate("name: demo", "name: 5")) == [
        "m.yaml:1:7: name: must be a string, not an integer"
    ]


@pytest.mark.parametrize("zero", ["0", "0s"])
def test_exec_timeout_zero_means_the_default_as_in_choria(zero: str) -> None:
    props = parse(exec_property(f"timeout: {zero}")).watchers[0].properties
    assert isinstance(props, ExecProperties) and props.timeout == 10.0


def test_disown_cannot_parse_output_as_data() -> None:
    assert messages(exec_property("disown: true\n      parse_as_data: true")) == [
        "m.yaml:19:15: watchers[0].properties.disown: cannot parse the output as data of a "
        "disowned command"
    ]


def test_machines_from_one_template_share_their_transitions_and_watchers() -> None:
    template = (
        LEADER
        + "watchers:\n  - {name: t, type: timer, fail_transition: go, properties: {timer: 1m}}\n"
    )
    first = parse(template.replace("name: leader", "name: one"), file="one.yaml")
    second = parse(template.replace("name: leader", "name: two"), file="two.yaml")
    assert (first.name, second.name) == ("one", "two")
    assert len(first.watchers) == 1
    assert first.transitions is second.transitions
    assert first.watchers is second.watchers


def test_parts_with_positions_are_never_shared() -> None:
    one = parse(FOLLOWER, file="one.yaml")
    two = parse("\n" + FOLLOWER, file="two.yaml")  # the same, one line down
    assert one.transitions == two.transitions
    assert one.transitions[0] is not two.transitions[0]
    assert one.watchers[0] is not two.watchers[0]
    assert one.transitions[0].subscribe[0].pos.line + 1 == two.transitions[0].subscribe[0].pos.line
    fs_one, fs_two = (
        one.watchers[0].foreign_state_required[0],
        two.watchers[0].foreign_state_required[0],
    )
    assert (fs_one.pos.file, fs_two.pos.file) == ("one.yaml", "two.yaml")
