"""The archive watcher's properties: Choria's names, defaults and rules, errors with positions."""

from __future__ import annotations

from steward.watchers.archive import GOVERNOR_TIMEOUT, MAX_SIZE, MIN_TIMEOUT, ArchiveProperties
from tests.support.machines import machine_yaml, messages, parse

BASE = (
    "source: https://example.net/app.tgz",
    "checksum: abc",
    "target: /srv/machines",
    "creates: app",
)


def props(*extra: str) -> ArchiveProperties:
    p = parse(machine_yaml("archive", *BASE, *extra)).watchers[0].properties
    assert isinstance(p, ArchiveProperties)
    return p


def test_choria_defaults() -> None:
    p = props()
    assert p.source.source == "https://example.net/app.tgz"
    assert (p.target, p.creates, p.verify) == ("/srv/machines", "app", "")
    assert p.timeout == MIN_TIMEOUT == 5.0  # Choria's minimum is also its default
    assert p.governor is None and p.governor_timeout == GOVERNOR_TIMEOUT == 300.0
    assert p.insecure is False and p.username is None and p.max_size == MAX_SIZE


def test_a_short_timeout_is_raised_to_five_seconds_as_choria_does() -> None:
    assert props("timeout: 1s").timeout == 5.0
    assert props("timeout: 2m").timeout == 120.0


def test_choria_managed_machine_empty_strings_mean_unset() -> None:
    p = props(
        "verify: SHA256SUMS",
        "verify_checksum: def",
        'username: ""',
        'password: ""',
        'governor: ""',
    )
    assert p.username is None and p.password is None and p.governor is None
    assert p.verify == "SHA256SUMS" and p.verify_checksum is not None


def test_required_properties_are_named() -> None:
    errors = messages(machine_yaml("archive", "insecure: true"))
    for key in ("source", "checksum", "target", "creates"):
        assert any(f"missing required field 'watchers[0].properties.{key}'" in e for e in errors)


def test_errors_carry_line_column_and_path() -> None:
    (error,) = messages(machine_yaml("archive", *BASE[1:], "source: ftp://x/app.tgz"))
    assert "m.yaml:19:15" in error and "watchers[0].properties.source" in error
    assert "http, https or nats-object" in error


def test_rules_choria_enforces() -> None:
    (verify,) = messages(machine_yaml("archive", *BASE, "verify: SHA256SUMS"))
    assert "verify_checksum is required when verify is set" in verify
    (auth,) = messages(machine_yaml("archive", *BASE, "username: bob"))
    assert "password is required when username is given" in auth


def test_unsafe_names_are_refused_at_load() -> None:
    (creates,) = messages(machine_yaml("archive", *BASE[:3], "creates: ../etc"))
    assert "properties.creates" in creates and "one directory name" in creates
    (verify,) = messages(machine_yaml("archive", *BASE, "verify: ../SUMS", "verify_checksum: abc"))
    assert "properties.verify" in verify


def test_nats_object_sources_and_typos() -> None:
    assert props().source.static
    p = (
        parse(machine_yaml("archive", "source: nats-object://FLEET/app-1.tgz", *BASE[1:]))
        .watchers[0]
        .properties
    )
    assert isinstance(p, ArchiveProperties)
    (no_name,) = messages(machine_yaml("archive", "source: nats-object://FLEET", *BASE[1:]))
    assert "names no object" in no_name
    (typo,) = messages(machine_yaml("archive", *BASE, "verfy: SHA256SUMS"))
    assert "unknown field 'verfy' in archive properties" in typo
