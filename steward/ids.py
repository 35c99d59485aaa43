"""Random (version 4) UUIDs, as ``uuid.uuid4()`` makes them, without importing ``uuid``: that
module (with its ``_uuid`` extension and libuuid) is ~0.2 MiB of the daemon's RSS (issue 19),
for two calls that only need 16 random bytes with the version and variant bits set."""

from __future__ import annotations

import os


def uuid4_bytes() -> bytes:
    """``uuid.uuid4().bytes``: RFC 4122 version 4, from ``os.urandom`` as the stdlib's."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    return bytes(raw)


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``: 32 lowercase hex digits."""
    return uuid4_bytes().hex()


def uuid4_str() -> str:
    """``str(uuid.uuid4())``: 8-4-4-4-12 lowercase hex digits."""
    h = uuid4_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
