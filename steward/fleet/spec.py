"""A fleet specification: Choria's signed JSON wrapper around a base64 list of machines.

Two formats, both Choria's, differing in what the signature covers:

- ``plugins`` (``choria machine plugins pack``, the plugins watcher):
  ``{"plugins": "<base64 of the JSON list>", "signature": "<hex>"}``; the ed25519 signature
  is over the base64 *text* (``specification.go``: ``[]byte(s.Plugins)``).
- ``machines`` (``mms pack``, the machines watcher):
  ``{"machines": "<base64 of the JSON list>", "signature": "<hex>"}``; the signature is over
  the *decoded* JSON bytes.

Keys and signatures are hex. With no public key a spec is accepted unsigned (as Choria).
PyNaCl is imported on first verification (about 7 ms).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SpecError(ValueError):
    """A specification that cannot be used; the text says why, in one line."""


class Format(StrEnum):
    PLUGINS = "plugins"
    MACHINES = "machines"


@dataclass(frozen=True)
class Entry:
    """One managed machine (Choria's ``ManagedPlugin`` / ``ManagedMachine``)."""

    name: str
    source: str
    checksum: str  # sha256 of the archive
    verify_checksum: str  # sha256 of the SHA256SUMS file inside it
    match: str = ""  # an expr-lang expression; "" matches every node
    username: str = ""
    password: str = ""
    governor: str = ""


@dataclass(frozen=True)
class Specification:
    format: Format
    encoded: str  # the base64 text as received
    signature: str  # hex, "" when unsigned

    @property
    def payload(self) -> bytes:
        """The JSON list the base64 text holds; SpecError if it is not base64."""
        try:
            return base64.b64decode(self.encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SpecError(f"the {self.format} field is not valid base64") from None

    def signed_bytes(self) -> bytes:
        """What the signature covers in this format."""
        return self.encoded.encode() if self.format is Format.PLUGINS else self.payload

    def verify(self, public_key: str) -> None:
        """Check the signature against a hex ed25519 public key; SpecError if it fails."""
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        key = _hex(public_key, "public key", 32)
        self.payload  # noqa: B018 -- reject bad base64 first, whatever the format signs
        if not self.signature:
            raise SpecError("the specification is not signed")
        signature = _hex(self.signature, "signature", 64)
        try:
            VerifyKey(key).verify(self.signed_bytes(), signature)
        except BadSignatureError:
            raise SpecError(
                f"the signature does not verify with public key {public_key.strip()}"
            ) from None

    def entries(self) -> list[Entry]:
        """The listed machines, each checked as Choria's ``desiredState`` does."""
        try:
            items = json.loads(self.payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"invalid {self.format} specification: {exc}") from None
        if items is None:
            return []
        if not isinstance(items, list):
            raise SpecError(f"invalid {self.format} specification: not a JSON list")
        return [_entry(item, i) for i, item in enumerate(items)]


def decode(value: Any, fmt: Format) -> Specification:
    """The specification in machine data (a mapping, as the kv watcher decodes the JSON) or in
    JSON text; SpecError if it is neither or lacks the format's field."""
    if isinstance(value, bytes | str):
        try:
            value = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"the specification is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise SpecError(f"the specification must be a JSON object, not {type(value).__name__}")
    encoded = value.get(fmt.value)
    if not isinstance(encoded, str) or not encoded:
        raise SpecError(f"the specification has no {fmt.value!r} field")
    signature = value.get("signature") or ""
    if not isinstance(signature, str):
        raise SpecError("the signature must be a hex string")
    return Specification(fmt, encoded, signature)


def encode(payload: bytes, fmt: Format, seed: bytes | None) -> bytes:
    """The JSON Choria's pack writes for ``payload`` (the JSON list), signed with the ed25519
    ``seed`` when given: field order and separators as Go's ``json.Marshal``."""
    encoded = base64.b64encode(payload).decode()
    spec = Specification(fmt, encoded, "")
    body: dict[str, str] = {fmt.value: encoded}
    if seed is not None:
        from nacl.signing import SigningKey

        body["signature"] = SigningKey(seed).sign(spec.signed_bytes()).signature.hex()
    return json.dumps(body, separators=(",", ":")).encode()


def _hex(text: str, what: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise SpecError(f"the {what} is not hex") from None
    if len(raw) != size:
        raise SpecError(f"the {what} must be {size} bytes, not {len(raw)}")
    return raw


_REQUIRED = ("name", "source", "checksum", "verify_checksum")
_OPTIONAL = ("match", "username", "password", "governor")


def _entry(item: Any, index: int) -> Entry:
    if not isinstance(item, Mapping):
        raise SpecError(f"entry {index} must be a JSON object")
    values: dict[str, str] = {}
    for key in _REQUIRED + _OPTIONAL:
        value = item.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise SpecError(f"entry {index}: {key} must be a string")
        values[key] = value
    if not values["name"]:
        raise SpecError(f"entry {index}: name is required")
    for key in _REQUIRED[1:]:
        if not values[key]:
            raise SpecError(f"{key} is required for {values['name']}")
    if "/" in values["name"] or values["name"] in (".", ".."):
        raise SpecError(f"entry {index}: name {values['name']!r} must not name a path")
    return Entry(**values)
