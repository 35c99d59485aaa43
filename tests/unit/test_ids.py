"""``ids``: version 4 UUIDs as the stdlib's ``uuid.uuid4`` makes them."""

from __future__ import annotations

import os
import uuid

import pytest

from steward.ids import uuid4_bytes, uuid4_hex, uuid4_str


@pytest.mark.parametrize("fill", [b"\x00", b"\xff", b"\x5a", b"\xa5"])
def test_the_same_uuid_as_the_stdlib_from_the_same_bytes(
    fill: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "urandom", lambda n: fill * n)
    expected = uuid.UUID(bytes=fill * 16, version=4)
    assert uuid4_bytes() == expected.bytes
    assert uuid4_hex() == expected.hex
    assert uuid4_str() == str(expected)


def test_random_version_4_rfc_4122_uuids() -> None:
    drawn = [uuid4_str() for _ in range(200)]
    assert len(set(drawn)) == 200
    for text in drawn:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    assert all(len(uuid4_hex()) == 32 for _ in range(10))
