"""Specifications: Choria's bytes verify; unsigned, badly signed and tampered ones do not."""

from __future__ import annotations

import base64
import json

import pytest
from nacl.signing import SigningKey

from steward.fleet.spec import Format, SpecError, decode, encode

ENTRIES = [
    {
        "name": "requests",
        "source": "http://plugins.choria.local/requests-agent_0.0.1_linux_amd64.tar.gz",
        "verify": "SHA256SUMS",
        "verify_checksum": "d3ebf8e4ae71245c051b9cb50f3712befbbc2c38c2cdf6e8e374eb7e613b1d11",
        "checksum": "5e73881403990220ad5e63a971fb3b8fd8299087439843d38d856d3be053fdc0",
        "match": 'identity("^web")',
    }
]
PAYLOAD = json.dumps(ENTRIES, indent=2).encode() + b"\n"  # the file a user wrote
KEY = SigningKey(bytes(range(32)))
PUBLIC = bytes(KEY.verify_key).hex()


def choria_plugins_pack(payload: bytes, key: SigningKey) -> bytes:
    """What ``choria machine plugins pack`` writes (cmd/machine_plugins_pack.go,
    pluginswatcher/specification.go): the signature covers the base64 text."""
    plugins = base64.standard_b64encode(payload).decode()
    signature = key.sign(plugins.encode()).signature.hex()
    return b'{"plugins":"' + plugins.encode() + b'","signature":"' + signature.encode() + b'"}'


def choria_mms_pack(payload: bytes, key: SigningKey) -> bytes:
    """What ``mms pack`` writes (machineswatcher/cmd/mms.go): ``Machines []byte`` marshals as
    base64 and the signature covers the raw JSON."""
    machines = base64.standard_b64encode(payload).decode()
    signature = key.sign(payload).signature.hex()
    return b'{"machines":"' + machines.encode() + b'","signature":"' + signature.encode() + b'"}'


@pytest.mark.parametrize(
    ("fmt", "pack"), [(Format.PLUGINS, choria_plugins_pack), (Format.MACHINES, choria_mms_pack)]
)
def test_a_spec_packed_as_choria_does_verifies_and_lists_its_entries(fmt, pack) -> None:  # type: ignore[no-untyped-def]
    wire = pack(PAYLOAD, KEY)
    spec = decode(json.loads(wire), fmt)  # as the kv watcher puts it into the data
    spec.verify(PUBLIC)
    [entry] = spec.entries()
    assert (entry.name, entry.match) == ("requests", 'identity("^web")')
    assert entry.checksum == ENTRIES[0]["checksum"]
    assert encode(PAYLOAD, fmt, bytes(range(32))) == wire  # steward packs the same bytes


def test_the_other_formats_signature_does_not_verify() -> None:
    wire = json.loads(choria_mms_pack(PAYLOAD, KEY))
    wire["plugins"] = wire.pop("machines")
    with pytest.raises(SpecError, match="does not verify"):
        decode(wire, Format.PLUGINS).verify(PUBLIC)


def test_unsigned_is_refused_when_a_key_is_configured() -> None:
    spec = decode(encode(PAYLOAD, Format.PLUGINS, None), Format.PLUGINS)
    assert spec.signature == ""
    assert spec.entries()[0].name == "requests"  # usable with no key, as Choria
    with pytest.raises(SpecError, match="not signed"):
        spec.verify(PUBLIC)


def test_a_signature_by_another_key_is_refused() -> None:
    other = SigningKey(bytes(32))
    spec = decode(choria_plugins_pack(PAYLOAD, other), Format.PLUGINS)
    with pytest.raises(SpecError, match="does not verify with public key"):
        spec.verify(PUBLIC)


@pytest.mark.parametrize("fmt", list(Format))
def test_a_tampered_payload_is_refused(fmt: Format) -> None:
    wire = json.loads(encode(PAYLOAD, fmt, bytes(range(32))))
    tampered = PAYLOAD.replace(b"requests", b"evil")
    wire[fmt.value] = base64.b64encode(tampered).decode()
    with pytest.raises(SpecError, match="does not verify"):
        decode(wire, fmt).verify(PUBLIC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"machines": "x"}, "no 'plugins' field"),
        ([], "must be a JSON object"),
        ("{not json", "not JSON"),
        ({"plugins": "%%%"}, "not valid base64"),
        ({"plugins": "aGVsbG8=", "signature": "zz"}, "signature is not hex"),
        ({"plugins": "aGVsbG8=", "signature": "00"}, "signature must be 64 bytes"),
    ],
)
def test_malformed_specifications_say_why(value: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec = decode(value, Format.PLUGINS)
        spec.verify(PUBLIC)
        spec.entries()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"source": "s", "checksum": "c", "verify_checksum": "v"}], "name is required"),
        ([{"name": "a", "checksum": "c", "verify_checksum": "v"}], "source is required for a"),
        ([{"name": "a", "source": "s", "verify_checksum": "v"}], "checksum is required for a"),
        ([{"name": "a", "source": "s", "checksum": "c"}], "verify_checksum is required for a"),
        ([{"name": "../a", "source": "s", "checksum": "c", "verify_checksum": "v"}], "path"),
        ({"name": "a"}, "not a JSON list"),
    ],
)
def test_entries_are_checked_as_choria_does(entries: object, message: str) -> None:
    spec = decode(encode(json.dumps(entries).encode(), Format.PLUGINS, None), Format.PLUGINS)
    with pytest.raises(SpecError, match=message):
        spec.entries()
