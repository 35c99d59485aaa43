"""ed25519 key files as Choria writes them: the private key is the hex of the 32-byte seed
(``Ed25519KeyPairToFile``, mode 0600), the public key the hex of its 32 bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = "fleet.seed"
PUBLIC = "fleet.public"


class KeyFileError(ValueError):
    """A key that cannot be used; the text says why, in one line."""


def generate(directory: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``directory`` (created 0700 if missing); refuses to overwrite."""
    from nacl.signing import SigningKey

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private, public = directory / PRIVATE, directory / PUBLIC
    for path in (private, public):
        if path.exists():
            raise KeyFileError(f"{path} exists: refusing to overwrite a key")
    key = SigningKey.generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(bytes(key).hex())
    public.write_text(bytes(key.verify_key).hex() + "\n")
    return private, public


def read_seed(path: Path) -> bytes:
    """The seed in a private key file (hex seed, or Choria's 64-byte hex private key); refuses a
    file group or others may read."""
    try:
        st = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read private key {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it"
        )
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyFileError(f"private key {path} is not hex") from None
    if len(raw) not in (32, 64):
        raise KeyFileError(f"private key {path} must hold 32 or 64 bytes, not {len(raw)}")
    return raw[:32]  # Go's private key is seed + public key


def public_key(value: str) -> str:
    """A hex public key given as text or as a file holding it."""
    path = Path(value)
    if path.is_file():
        value = path.read_text()
    text = value.strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"public key {value!r} is neither a file nor hex") from None
    if len(raw) != 32:
        raise KeyFileError(f"a public key is 32 bytes, not {len(raw)}")
    return text.lower()


def public_of(seed: bytes) -> str:
    from nacl.signing import SigningKey

    return bytes(SigningKey(seed).verify_key).hex()
