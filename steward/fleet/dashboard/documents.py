"""The JSON the dashboard sends: a node, a machine, the whole fleet (docs/fleet.md).

Built from a ``FleetView`` at a given time (the server's wall clock): a node's ``online`` is
computed here, never stored, so the same entry reads offline once its deadline has passed.
"""

from __future__ import annotations

from typing import Any

from steward.fleet.state import FleetView

# the fields of a machine entry the page uses (the rest of the entry stays in the bucket)
MACHINE_FIELDS = (
    "node",
    "machine",
    "version",
    "state",
    "since",
    "seq",
    "instance",
    "last",
    "recent",
    "watchers",
    "updated",
)


def node_doc(view: FleetView, node: str, now: float) -> dict[str, Any]:
    """A node as the page shows it. A node known only through its machines (no heartbeat
    yet, or its key expired) is offline with no last-seen time."""
    entry = view.nodes.get(node)
    if entry is None:
        return {
            "node": node,
            "online": False,
            "last_seen": None,
            "offline_at": None,
            "stopped": None,
        }
    value = entry.value
    return {
        "node": node,
        "online": entry.online(now),
        "last_seen": entry.seen,
        "offline_at": entry.deadline(),
        "stopped": entry.stopped,  # when a clean stop said so: offline at once
        "interval": entry.interval,
        "steward_version": value.get("steward_version"),
        "started": value.get("started"),
        "machines": value.get("machines"),
        "states": value.get("states") or {},
    }


def machine_doc(doc: dict[str, Any]) -> dict[str, Any]:
    return {name: doc.get(name) for name in MACHINE_FIELDS}


def fleet_doc(view: FleetView, now: float) -> dict[str, Any]:
    """Everything: ``now`` (the server's clock, so a page can correct its own), every node,
    every machine, sorted by node then machine."""
    machines = sorted(view.machines.items(), key=lambda item: item[0])
    return {
        "now": now,
        "nodes": [node_doc(view, node, now) for node in view.node_names()],
        "machines": [machine_doc(doc) for _, doc in machines],
    }
