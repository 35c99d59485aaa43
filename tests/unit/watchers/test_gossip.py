"""The gossip watcher's properties (Choria's, checked at load), its registration message,
and its failure without NATS. Publishing is tested against a real nats-server in
tests/integration/test_gossip.py."""

from __future__ import annotations

import json
from pathlib import Path

from steward.machine.spec import WatcherSpec
from steward.templates import Template
from steward.watchers.base import Outcome
from steward.watchers.gossip import GossipProperties, GossipWatcher, Registration
from tests.support.fakes import fake_context
from tests.support.machines import Handle, machine_yaml, messages, parse

REGISTRATION = (
    "registration: {cluster: lon, service: ginkgo, protocol: http, ip: 192.168.1.1, "
    "port: 8080, priority: 1, annotations: {test: annotation}}"
)


def test_registration_is_choria_s_key_and_json() -> None:
    props = parse(machine_yaml("gossip", REGISTRATION)).watchers[0].properties
    assert isinstance(props, GossipProperties)
    reg = props.registration
    assert reg is not None
    assert reg.subject("1234567890") == "$KV.CHORIA_SERVICES.lon.http.ginkgo.1234567890"
    # Go's json.Marshal of Choria's Registration struct: field order, `address`, compact
    assert reg.payload() == (
        '{"cluster":"lon","service":"ginkgo","protocol":"http","address":"192.168.1.1",'
        '"port":8080,"priority":1,"annotations":{"test":"annotation"}}'
    )
    prefixed = Registration("lon", "web", "http", "::1", 80, prefix="svc.registry")
    assert prefixed.subject("i1") == "svc.registry.lon.http.web.i1"
    assert "annotations" not in json.loads(prefixed.payload())


def test_subject_and_payload_are_required_without_registration() -> None:
    assert messages(machine_yaml("gossip", "ttl_seconds: 5")) == [
        "m.yaml:16:7: watchers[0].properties: missing required field "
        "'watchers[0].properties.subject'",
        "m.yaml:16:7: watchers[0].properties: missing required field "
        "'watchers[0].properties.payload'",
    ]


def test_bad_properties_are_load_errors_with_positions() -> None:
    found = messages(
        machine_yaml(
            "gossip",
            "subject: a.*.c",
            "payload: x",
            "ttl_seconds: -1",
        )
    )
    assert found == [
        "m.yaml:16:16: watchers[0].properties.subject: invalid subject: 'a.*.c' holds a wildcard",
        "m.yaml:18:20: watchers[0].properties.ttl_seconds: must be at least 0, got -1",
    ]
    bad_reg = messages(
        machine_yaml(
            "gossip",
            "subject: a.b",
            "registration: {cluster: 1lon, service: s, protocol: http, ip: nope, port: 0}",
        )
    )
    assert any("subject: cannot be set with registration" in m for m in bad_reg)
    assert any("registration.cluster: invalid cluster '1lon'" in m for m in bad_reg)
    assert any("registration.ip: invalid ip 'nope'" in m for m in bad_reg)
    assert any("registration.port: must be at least 1, got 0" in m for m in bad_reg)


async def test_without_nats_it_fails_cleanly(tmp_path: Path) -> None:
    props = GossipProperties(subject=Template.parse("a.b"), payload=Template.parse("hi"))
    spec = WatcherSpec(name="g", type="gossip", properties=props)
    watcher = GossipWatcher(spec, Handle(tmp_path), fake_context(tmp_path))
    result = await watcher.check()
    assert result.outcome is Outcome.ERROR
    assert "no NATS is configured" in result.detail
    assert result.payload["error"] == result.detail
    assert watcher.interval == 15.0  # Choria's default
