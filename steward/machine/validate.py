"""The one validation path for machine definitions, used by ``steward validate`` and the daemon.

``parse_machine`` checks one document completely (schema, types, units and minimums, unknown
keys, every cross-reference inside the machine, every watcher's properties through its type)
and returns a ``MachineSpec`` or raises ``SpecError`` with every problem found.
``check_references`` then checks references between machines (``subscribe`` and
``foreign_state_required``) against the machines known on the node.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap

from steward.errors import Problem, Severity, SpecError
from steward.machine.source import Fields, Position, Problems, load_yaml, type_name
from steward.machine.spec import (
    ForeignState,
    MachineSpec,
    Subscription,
    TransitionSpec,
    WatcherSpec,
)
from steward.watchers.registry import WatcherRegistry

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
MIN_INTERVAL = 0.1
MIN_ANNOUNCE_INTERVAL = 60.0
MAX_SPLAY_START = 86400
SHARED_PARTS = 4096  # equal transitions and watchers remembered, to be shared by machines

P = TypeVar("P")


def load_machine(
    path: Path,
    registry: WatcherRegistry,
    *,
    display: str | None = None,
    directory: Path | None = None,
) -> MachineSpec:
    """Read and validate one machine file. ``directory`` defaults to the file's directory."""
    file = display or str(path)
    raw = read_machine(path, file)
    return parse_machine(raw, registry, file=file, path=path, directory=directory or path.parent)


def read_machine(path: Path, file: str) -> bytes:
    """The bytes of a machine file; SpecError naming ``file`` if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SpecError([Problem(file, 0, 0, "", f"cannot read: {exc.strerror or exc}")]) from exc


def parse_machine(
    raw: bytes,
    registry: WatcherRegistry,
    *,
    file: str,
    path: Path,
    directory: Path,
    checksum: str | None = None,
) -> MachineSpec:
    """Validate one machine file's bytes (``checksum``: their sha256, if already known)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8 text (byte {exc.start})"
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise SpecError([Problem(file, line, column, "", msg)]) from exc
    problems = Problems(file)
    doc = Fields.document(load_yaml(text, file), problems)
    if doc is None:
        raise SpecError(problems.items)
    checksum = checksum if checksum is not None else hashlib.sha256(raw).hexdigest()
    spec = _machine(doc, registry, path, directory, checksum)
    if problems.has_errors or spec is None:
        raise SpecError(problems.items)
    if problems.items:
        spec = replace(spec, warnings=tuple(problems.items))
    return spec


def _machine(
    doc: Fields, registry: WatcherRegistry, path: Path, directory: Path, checksum: str
) -> MachineSpec | None:
    problems = doc.problems
    name = doc.string("name", required=True)
    if name is not None and not NAME_RE.match(name):
        doc.error(
            "name",
            f"invalid machine name {name!r}: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (at most 128 characters)",
        )
    version = _version(doc)
    initial = doc.string("initial_state", required=True)
    splay = doc.integer("splay_start", 0, minimum=0, maximum=MAX_SPLAY_START)
    description = doc.string("description", non_empty=False) or ""
    resume = doc.boolean("resume", True)
    transitions = _transitions(doc)
    states: dict[str, None] = {initial: None} if initial else {}
    for t in transitions:
        for s in (*t.sources, t.destination):
            states.setdefault(s, None)
    declared = _declared_transition_names(doc)
    watchers = _watchers(doc, registry, list(states), transitions, declared)
    doc.finish()
    if problems.has_errors or name is None or version is None or initial is None:
        return None
    return MachineSpec(
        name=name,
        version=sys.intern(version),
        initial_state=sys.intern(initial),
        transitions=_shared_all(tuple(transitions)),
        watchers=_shared_all(tuple(watchers)),
        path=path,
        directory=directory,
        checksum=checksum,
        splay_start=float(splay),
        description=description,
        resume=resume,
        name_pos=doc.value_pos("name"),
    )


def _version(doc: Fields) -> str | None:
    raw = doc.raw("version")
    if raw is None:
        if not doc.has("version"):
            doc.problems.add(doc.pos, "missing required field 'version'")
        else:
            doc.error("version", "must be a semantic version such as 1.0.0, not null")
        return None
    if not isinstance(raw, str) or isinstance(raw, bool):
        doc.error(
            "version",
            f"must be a semantic version string such as 1.0.0, not {type_name(raw)} "
            "(quote it if YAML reads it as a number)",
        )
        return None
    if not SEMVER_RE.match(raw):
        doc.error("version", f"{raw!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)")
        return None
    return str(raw)


def _transitions(doc: Fields) -> list[TransitionSpec]:
    """Transitions; one name may appear several times with different ``from`` states (the
    FSM Choria uses keys an event by name and source), but a name and a source state lead
    to one destination only."""
    out: list[TransitionSpec] = []
    seen: dict[tuple[str, str], tuple[str, Position]] = {}  # (name, source) -> destination
    items = doc.mappings("transitions", required=True)
    raw = doc.raw("transitions")
    if isinstance(raw, list) and not raw:
        doc.error("transitions", "must list at least one transition")
    for f in items:
        name = f.string("name", required=True)
        sources = f.strings("from")
        destination = f.string("destination", required=True)
        description = f.string("description", non_empty=False) or ""
        subscribe = tuple(_subscriptions(f))
        f.finish(" in transition")
        raw_from = f.raw("from")
        no_sources = raw_from is None or (isinstance(raw_from, list) and not raw_from)
        if name is not None and destination is not None and no_sources:
            f.problems.add(
                f.value_pos("from") if f.has("from") else f.pos,
                f"transition {name!r} has no 'from' states: it can never fire",
                Severity.WARNING,
            )
        if name is None or destination is None:
            continue
        conflict = False
        for source, pos in sources:
            first = seen.get((name, source))
            if first is not None and first[0] != destination:
                f.problems.add(
                    pos,
                    f"transition {name!r} from {source!r} already leads to {first[0]!r} "
                    f"(line {first[1].line}); one name and state lead to one destination",
                )
                conflict = True
            else:
                seen.setdefault((name, source), (destination, pos))
        if conflict:
            continue
        transition = TransitionSpec(
            name=name,
            sources=tuple(s for s, _ in sources),
            destination=destination,
            description=description,
            subscribe=subscribe,
        )
        out.append(_shared(transition) if _shareable(transition) else transition)
    return out


def _declared_transition_names(doc: Fields) -> set[str]:
    raw = doc.raw("transitions")
    if not isinstance(raw, list):
        return set()
    return {
        t["name"] for t in raw if isinstance(t, CommentedMap) and isinstance(t.get("name"), str)
    }


def _subscriptions(f: Fields) -> list[Subscription]:
    out = []
    for s in f.mappings("subscribe"):
        machine = s.string("machine_name", required=True)
        event = s.string("event", required=True)
        s.finish(" in subscribe")
        if machine is not None and event is not None:
            out.append(Subscription(machine, event, s.pos))
    return out


def _watchers(
    doc: Fields,
    registry: WatcherRegistry,
    states: list[str],
    transitions: list[TransitionSpec],
    transition_names: set[str],
) -> list[WatcherSpec]:
    out: list[WatcherSpec] = []
    seen: dict[str, Position] = {}
    for f in doc.mappings("watchers"):
        name = f.string("name", required=True)
        if name is not None:
            if name in seen:
                first = seen[name]
                f.error("name", f"duplicate watcher name {name!r} (first at line {first.line})")
            else:
                seen[name] = f.value_pos("name")
        wtype = f.string("type", required=True)
        state_match = []
        for state, pos in f.strings("state_match"):
            if state not in states:
                f.problems.add(pos, f"no state named {state!r} (states: {', '.join(states)})")
            state_match.append(state)
        foreign = []
        for fs in f.mappings("foreign_state_required"):
            machine = fs.string("machine_name", required=True)
            foreign_state = fs.string("state", required=True)
            fs.finish(" in foreign_state_required")
            if machine is not None and foreign_state is not None:
                foreign.append(ForeignState(machine, foreign_state, fs.pos))
        success = _transition_ref(f, "success_transition", transition_names, states, transitions)
        fail = _transition_ref(f, "fail_transition", transition_names, states, transitions)
        interval = f.duration("interval", minimum=0)
        if interval is not None and 0 < interval < MIN_INTERVAL:
            f.error("interval", "must be at least 100ms (or 0 to run only on state entry)")
            interval = None
        announce = f.duration("announce_interval", minimum=MIN_ANNOUNCE_INTERVAL, minimum_text="1m")
        properties = _properties(f, registry, wtype, name)
        watcher_type = registry.get(wtype) if wtype is not None else None
        if success is not None and watcher_type is not None and not watcher_type.fires_success:
            f.error(
                "success_transition",
                f"a {wtype} watcher never succeeds: it fires only fail_transition "
                f"(Choria refuses it too: '{wtype} watcher does not support success events')",
            )
        f.finish(" in watcher")
        if name is None or wtype is None or properties is None:
            continue
        watcher = WatcherSpec(
            name=name,
            type=wtype,
            properties=properties,
            state_match=tuple(state_match),
            foreign_state_required=tuple(foreign),
            success_transition=success,
            fail_transition=fail,
            interval=interval,
            announce_interval=announce,
        )
        out.append(_shared(watcher) if _shareable(watcher) else watcher)
    return out


def _shared(part: P) -> P:
    """An equal part seen before, if any: machines made from one template (10,000 timer
    machines) share their transitions and watchers instead of holding a copy each. Only
    parts whose every field takes part in equality (no positions: subscriptions and foreign
    states are never shared) and that are hashable; specs are immutable."""
    try:
        shared: P = _first_equal(part)
    except TypeError:  # unhashable properties
        return part
    return shared


@functools.lru_cache(maxsize=SHARED_PARTS)
def _first_equal(part: Any) -> Any:
    return part


def _shared_all(parts: tuple[P, ...]) -> tuple[P, ...]:
    """The tuple shared too, when all its parts may be."""
    return _shared(parts) if all(_shareable(p) for p in parts) else parts


def _shareable(part: Any) -> bool:
    """Whether an equal part is interchangeable with this one: no position left out of
    equality (subscriptions, foreign states), and properties that are a dataclass with no
    field left out of equality either (it could differ between two equal ones)."""
    if isinstance(part, TransitionSpec):
        return not part.subscribe
    if isinstance(part, WatcherSpec):
        kind: type = type(part.properties)
        return not part.foreign_state_required and _compares_every_field(kind)
    return False


@functools.lru_cache(maxsize=64)  # one entry per watcher properties type
def _compares_every_field(cls: type) -> bool:
    return dataclasses.is_dataclass(cls) and all(f.compare for f in dataclasses.fields(cls))


def _transition_ref(
    f: Fields, key: str, names: set[str], states: list[str], transitions: list[TransitionSpec]
) -> str | None:
    ref = f.string(key)
    if ref is None or ref in names:
        return ref
    hint = ""
    if ref in states:
        leading = [t.name for t in transitions if t.destination == ref]
        hint = f"; {ref!r} is a state"
        if leading:
            hint += f", the transition to it is {' or '.join(repr(n) for n in leading)}"
    f.error(key, f"no transition named {ref!r}{hint}")
    return None


def _properties(f: Fields, registry: WatcherRegistry, wtype: str | None, name: str | None) -> Any:
    if wtype is None:
        f.raw("properties")
        return None
    watcher_type = registry.get(wtype)
    if watcher_type is None:
        f.raw("properties")
        f.error(
            "type",
            f"unsupported watcher type {wtype!r}"
            + (f" (watcher {name!r})" if name is not None else "")
            + "; "
            f"supported: {', '.join(registry.names())}",
        )
        return None
    props = f.mapping("properties", weak=True)  # as Choria decodes them: weakly typed
    if props is None:
        if f.has("properties") and f.raw("properties") is not None:
            return None  # wrong type, already reported
        props = Fields(CommentedMap(), f.child_path("properties"), f.pos, f.problems, weak=True)
    return watcher_type.Properties.parse(props)


def check_references(specs: Iterable[MachineSpec]) -> list[Problem]:
    """Problems in references between machines: ``subscribe`` and ``foreign_state_required``.

    A reference to a machine that is not in ``specs`` is a warning (it may be loaded later);
    a reference to a transition or state the named machine does not have is an error.
    Duplicate machine names are an error on every file after the first.
    """
    problems: list[Problem] = []
    by_name: dict[str, MachineSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            first = by_name[spec.name]
            pos = spec.name_pos or Position(str(spec.path), 0, 0, "name")
            problems.append(
                pos.problem(f"duplicate machine name {spec.name!r} (also defined in {first.path})")
            )
            continue
        by_name[spec.name] = spec
    for spec in by_name.values():
        for t in spec.transitions:
            for sub in t.subscribe:
                other = by_name.get(sub.machine_name)
                if other is None:
                    problems.append(
                        sub.pos.problem(
                            f"machine {sub.machine_name!r} is not loaded here; "
                            "the subscription waits until it is",
                            Severity.WARNING,
                        )
                    )
                elif other.transition(sub.event) is None:
                    problems.append(
                        sub.pos.problem(
                            f"machine {sub.machine_name!r} has no transition named {sub.event!r}"
                        )
                    )
        for w in spec.watchers:
            for fs in w.foreign_state_required:
                other = by_name.get(fs.machine_name)
                if other is None:
                    problems.append(
                        fs.pos.problem(
                            f"machine {fs.machine_name!r} is not loaded here; "
                            "the watcher stays inactive until it is",
                            Severity.WARNING,
                        )
                    )
                elif fs.state not in other.states:
                    problems.append(
                        fs.pos.problem(
                            f"machine {fs.machine_name!r} has no state named {fs.state!r} "
                            f"(states: {', '.join(other.states)})"
                        )
                    )
    return problems
