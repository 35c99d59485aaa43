"""The fleet bucket's keys and the view readers build from its entries."""

from __future__ import annotations

import json

import pytest

from steward.fleet.state import (
    FleetView,
    graph_key,
    is_newer,
    machine_key,
    node_key,
    token,
    untoken,
)


@pytest.mark.parametrize("name", ["web1", "web1.example.com", "a_b-c", "é.x", "a=b", "a.b.c"])
def test_a_name_is_one_token_and_comes_back(name: str) -> None:
    tok = token(name)
    assert "." not in tok
    assert untoken(tok) == name


def test_keys_of_dotted_names_do_not_collide() -> None:
    # node "a.b" with no machines vs node "a" with machine "b"
    assert node_key("a.b") != machine_key("a", "b")
    assert machine_key("a.b", "c") != machine_key("a", "b.c")
    assert graph_key("a", "b") == machine_key("a", "b") + ".graph"


def _put(view: FleetView, key: str, doc: dict[str, object], created: float = 100.0) -> object:
    return view.apply(key, json.dumps(doc).encode(), deleted=False, created=created)


def test_view_rows_carry_state_and_online() -> None:
    view = FleetView()
    _put(view, "n1", {"kind": "node", "node": "n1", "interval": 10}, created=100.0)
    _put(
        view,
        "n1.web",
        {
            "kind": "machine",
            "node": "n1",
            "machine": "web",
            "state": "RUN",
            "seq": 3,
            "since": 90.0,
            "last": {"transition": "start", "cause": {"text": "watcher check"}},
        },
    )
    _put(view, "n2.db", {"kind": "machine", "node": "n2", "machine": "db", "state": "DOWN"})
    rows = view.rows(110.0)
    assert [(r["node"], r["machine"], r["state"], r["online"]) for r in rows] == [
        ("n1", "web", "RUN", True),
        ("n2", "db", "DOWN", False),  # no node key: never seen
    ]
    assert rows[0]["cause"] == "watcher check"
    # 2 x 10 s + 20 s after the heartbeat the node is offline, with its last seen
    late = view.rows(141.0)
    assert late[0]["online"] is False and late[0]["last_seen"] == 100.0
    assert view.rows(110.0, stale=True) == [rows[1]]
    assert view.rows(110.0, state="RUN") == [rows[0]]
    assert view.rows(110.0, node_glob="n2*") == [rows[1]]
    assert view.rows(110.0, machine="web") == [rows[0]]


def test_deleting_a_key_removes_what_it_held() -> None:
    view = FleetView()
    _put(view, "n1.web", {"kind": "machine", "node": "n1", "machine": "web", "state": "RUN"})
    assert view.apply("n1.web", None, deleted=True, created=None) == ("n1", "web")
    assert view.machines == {}
    assert view.apply("n1.web", None, deleted=True, created=None) is None


def test_graph_keys_and_bad_values_change_nothing() -> None:
    view = FleetView()
    assert view.apply("n1.web.graph", b"{}", deleted=False, created=1.0) is None
    assert view.apply("n1", b"not json", deleted=False, created=1.0) is None
    assert view.apply("n1", b"[1]", deleted=False, created=1.0) is None
    assert view.rows(0.0) == []


def test_is_newer_compares_seq_and_since() -> None:
    assert is_newer({"seq": 5, "since": 10.0}, {"seq": 4, "since": 9.0})
    assert not is_newer({"seq": 4, "since": 10.0}, {"seq": 4, "since": 10.0})
    # a machine added again restarts its seq; its since is the later one: ours wins
    assert not is_newer({"seq": 50, "since": 10.0}, {"seq": 1, "since": 20.0})
    assert not is_newer({}, {"seq": 1, "since": 1.0})
