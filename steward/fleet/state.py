"""The fleet KV bucket: its keys and the JSON each key holds (docs/fleet.md, "Fleet state").

One bucket (``STEWARD_FLEET`` by default). Each node writes only its own keys:

- ``<node>``: the node — steward version, started, machine counts, heartbeat time and the
  heartbeat interval; rewritten every heartbeat with a per-message TTL (``forget_after``), so a
  node gone for good disappears by itself.
- ``<node>.<machine>``: a machine — state, since, seq, version, the last transition and its
  cause, the recent transitions, each watcher's last outcome.
- ``<node>.<machine>.graph``: the machine's states and transitions (written when it loads), for
  pictures; readers of the table skip it.

Node and machine names may contain dots, which separate key tokens, so each name is written
as a token: every character outside ``[A-Za-z0-9_-]`` becomes ``=XX`` (its UTF-8 bytes in
hex). The values carry the real names; readers never parse names out of keys.

No NATS import here: the CLI's table code and the tests use it without a client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

# steward.yaml's ``fleet:`` (in steward.settings, which the config reads): exported here as before
from steward.settings import DEFAULT_BUCKET as DEFAULT_BUCKET
from steward.settings import DEFAULT_HEARTBEAT
from steward.settings import FleetSettings as FleetSettings

if TYPE_CHECKING:
    from steward.machine.runtime import RunningMachine

OFFLINE_GRACE = 20.0  # offline = no heartbeat for 2 x interval + this
RECENT = 5  # transitions a machine entry carries
GRAPH_SUFFIX = "graph"

_PLAIN = re.compile(r"[A-Za-z0-9_-]")


def token(name: str) -> str:
    """``name`` as one KV key token: dots and anything else outside ``[A-Za-z0-9_-]``
    escaped as ``=XX``."""
    out = []
    for ch in name:
        if _PLAIN.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode())
    return "".join(out)


def untoken(text: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "=" and i + 2 < len(text):
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode())
            i += 1
    return raw.decode(errors="replace")


def node_key(node: str) -> str:
    return token(node)


def machine_key(node: str, machine: str) -> str:
    return f"{token(node)}.{token(machine)}"


def graph_key(node: str, machine: str) -> str:
    return f"{machine_key(node, machine)}.{GRAPH_SUFFIX}"


def node_keys_filter(node: str) -> str:
    """Every key a node owns but its own: its machines and their graphs."""
    return f"{token(node)}.>"


# what a node writes ------------------------------------------------------------------------
def node_value(
    *,
    node: str,
    steward_version: str,
    started: float,
    heartbeat: float,
    interval: float,
    machines: Iterable[RunningMachine],
) -> dict[str, Any]:
    states: dict[str, int] = {}
    count = 0
    for m in machines:
        count += 1
        states[m.state] = states.get(m.state, 0) + 1
    return {
        "kind": "node",
        "node": node,
        "steward_version": steward_version,
        "started": started,
        "heartbeat": heartbeat,
        "interval": interval,
        "machines": count,
        "states": states,
    }


def machine_value(node: str, machine: RunningMachine, at: float) -> dict[str, Any]:
    recent = list(machine.recent_history)[-RECENT:]
    watchers: dict[str, Any] = {}
    for w in machine.watchers:
        last = w.last_result
        watchers[w.name] = {
            "type": w.spec.type,
            "outcome": last.outcome.value if last is not None else None,
            "detail": last.detail[:200] if last is not None else "",
        }
    return {
        "kind": "machine",
        "node": node,
        "machine": machine.name,
        "version": machine.spec.version,
        "state": machine.state,
        "since": machine.since,
        "seq": machine.seq,
        "instance": machine.instance,
        "last": recent[-1].as_dict() if recent else None,
        "recent": [
            {
                "seq": e.seq,
                "at": e.at,
                "transition": e.transition,
                "from_state": e.from_state,
                "to_state": e.to_state,
                "cause": e.cause.text,
            }
            for e in recent
        ],
        "watchers": watchers,
        "updated": at,
    }


def graph_value(node: str, machine: RunningMachine) -> dict[str, Any]:
    spec = machine.spec
    return {
        "kind": "graph",
        "node": node,
        "machine": spec.name,
        "version": spec.version,
        "initial_state": spec.initial_state,
        "states": list(spec.states),
        "transitions": [
            {"name": t.name, "from": list(t.sources), "to": t.destination} for t in spec.transitions
        ],
    }


def encode(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def is_newer(existing: Mapping[str, Any], ours: Mapping[str, Any]) -> bool:
    """Whether the machine entry in the bucket is newer than the one we would write: a higher
    seq that also moved later (a machine removed and added again restarts its seq, and its
    ``since`` is then the later one)."""
    try:
        return int(existing["seq"]) > int(ours["seq"]) and float(existing["since"]) >= float(
            ours["since"]
        )
    except (KeyError, TypeError, ValueError):
        return False


# what readers see ----------------------------------------------------------------------------
@dataclass
class NodeEntry:
    node: str
    value: dict[str, Any]
    seen: float  # when the server stored the last heartbeat (wall clock, seconds)

    @property
    def interval(self) -> float:
        try:
            return float(self.value.get("interval") or DEFAULT_HEARTBEAT)
        except (TypeError, ValueError):
            return DEFAULT_HEARTBEAT

    def deadline(self) -> float:
        """When the node counts as offline if no heartbeat comes."""
        return self.seen + 2 * self.interval + OFFLINE_GRACE

    @property
    def stopped(self) -> float | None:
        """When the daemon said it stopped (a clean stop), if its last word was that."""
        value = self.value.get("stopped")
        return float(value) if isinstance(value, int | float) else None

    def online(self, now: float) -> bool:
        return self.stopped is None and now < self.deadline()


@dataclass(repr=False)
class FleetView:
    """The fleet as the bucket says it is: applied entry by entry (a snapshot, then a watch)."""

    nodes: dict[str, NodeEntry] = field(default_factory=dict)
    machines: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # key -> (node, machine) or (node, None): what a delete of that key removes
    _keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def apply(
        self, key: str, value: bytes | None, *, deleted: bool, created: float | None
    ) -> tuple[str, str | None] | None:
        """One KV entry (put, delete or purge). Returns what changed: (node, machine) for a
        machine, (node, None) for a node, or None for nothing (a graph key, a bad value)."""
        if key.endswith("." + GRAPH_SUFFIX):
            return None
        if deleted:
            what = self._keys.pop(key, None)
            if what is None:
                return None
            node, machine = what
            if machine is None:
                self.nodes.pop(node, None)
            else:
                self.machines.pop((node, machine), None)
            return what
        try:
            doc = json.loads(value or b"")
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        kind = doc.get("kind")
        node = str(doc.get("node", ""))
        if kind == "node":
            seen = created if created is not None else float(doc.get("heartbeat") or 0)
            self.nodes[node] = NodeEntry(node, doc, seen)
            self._keys[key] = (node, None)
            return (node, None)
        if kind == "machine":
            machine = str(doc.get("machine", ""))
            self.machines[(node, machine)] = doc
            self._keys[key] = (node, machine)
            return (node, machine)
        return None

    def __repr__(self) -> str:
        # short on purpose: asyncio may repr a finished future holding a view (Python 3.11's
        # Runner does at exit), and 10,000 machines spelt out cost a third of a second
        return f"<FleetView {len(self.nodes)} nodes, {len(self.machines)} machines>"

    def node_names(self) -> list[str]:
        return sorted(set(self.nodes) | {n for n, _ in self.machines})

    def rows(
        self,
        now: float,
        *,
        node_glob: str | None = None,
        machine: str | None = None,
        state: str | None = None,
        stale: bool = False,
    ) -> list[dict[str, Any]]:
        """One row per node and machine (a node with no machine: one row with machine None),
        sorted by node then machine, filtered."""
        by_node: dict[str, list[dict[str, Any]]] = {}
        for (node, _), doc in self.machines.items():
            by_node.setdefault(node, []).append(doc)
        rows: list[dict[str, Any]] = []
        for node in self.node_names():
            if node_glob is not None and not fnmatchcase(node, node_glob):
                continue
            entry = self.nodes.get(node)
            online = entry is not None and entry.online(now)
            if stale and online:
                continue
            base = {
                "node": node,
                "online": online,
                "last_seen": entry.seen if entry is not None else None,
                "stopped": entry.stopped if entry is not None else None,
            }
            docs = sorted(by_node.get(node, []), key=lambda d: str(d.get("machine")))
            if not docs and machine is None and state is None:
                rows.append({**base, "machine": None})
            for doc in docs:
                if machine is not None and doc.get("machine") != machine:
                    continue
                if state is not None and doc.get("state") != state:
                    continue
                last = doc.get("last") or {}
                rows.append(
                    {
                        **base,
                        "machine": doc.get("machine"),
                        "state": doc.get("state"),
                        "since": doc.get("since"),
                        "seq": doc.get("seq"),
                        "version": doc.get("version"),
                        "last_transition": last.get("transition"),
                        "cause": (last.get("cause") or {}).get("text"),
                    }
                )
        return rows

    def next_deadline(self, now: float) -> float | None:
        """The next time an online node turns offline if nothing arrives (for live views)."""
        upcoming = [e.deadline() for e in self.nodes.values() if e.online(now)]
        return min(upcoming) if upcoming else None
