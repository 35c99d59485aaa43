"""Where the archive watcher gets a tarball: an http(s) URL (aiohttp) or, beyond Choria, a
JetStream object store on the daemon's NATS connection (``nats-object://<bucket>/<name>``).

Either way the bytes stream into a scratch file, written and hashed off the event loop, and
no more than ``max_size`` bytes are accepted. ``FetchError`` carries a one-line reason.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from steward.broker.link import NatsLink

OBJECT_SCHEME = "nats-object"
SCHEMES = ("http", "https", OBJECT_SCHEME)
BATCH = 1 << 20  # bytes gathered on the loop before one write in a thread
USER_AGENT = "steward archive watcher"


class FetchError(Exception):
    """Why a download failed: one line."""


@dataclass(frozen=True)
class Fetched:
    size: int
    sha256: str


def source_problem(source: str) -> str | None:
    """Why ``source`` is not a URL the watcher can fetch, or None."""
    try:
        parts = urlsplit(source)
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if parts.scheme not in SCHEMES:
        return f"must be an http, https or {OBJECT_SCHEME} URL, not {source!r}"
    if not parts.netloc:
        return f"{source!r} names no host" + (" (bucket)" if parts.scheme == OBJECT_SCHEME else "")
    if parts.scheme == OBJECT_SCHEME and not parts.path.lstrip("/"):
        return f"{source!r} names no object: use {OBJECT_SCHEME}://<bucket>/<name>"
    return None


class ScratchWriter:
    """Writes to a file and hashes what it writes, refusing more than ``limit`` bytes.
    Its ``write`` blocks: call it in a thread."""

    def __init__(self, file: BinaryIO, limit: int) -> None:
        self._file = file
        self.limit = limit
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise FetchError(f"download larger than max_size ({self.limit} bytes)")
        self._digest.update(data)
        self._file.write(data)
        return len(data)

    def done(self) -> Fetched:
        self._file.flush()
        return Fetched(self.size, self._digest.hexdigest())


async def fetch(
    source: str,
    into: BinaryIO,
    *,
    max_size: int,
    nats: NatsLink,
    auth: tuple[str, str] | None = None,
    insecure: bool = False,
) -> Fetched:
    writer = ScratchWriter(into, max_size)
    if urlsplit(source).scheme == OBJECT_SCHEME:
        await _fetch_object(source, writer, nats)
    else:
        await _fetch_http(source, writer, auth, insecure)
    return await asyncio.to_thread(writer.done)


async def _fetch_http(
    url: str, writer: ScratchWriter, auth: tuple[str, str] | None, insecure: bool
) -> None:
    import aiohttp

    headers = {"User-Agent": USER_AGENT}
    if auth is not None:  # as Go's SetBasicAuth: the UTF-8 bytes of "user:password"
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            async with session.get(url, ssl=not insecure) as resp:
                if resp.status != 200:
                    raise FetchError(f"download failed: HTTP {resp.status} {resp.reason or ''}")
                length = resp.content_length
                batch = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    batch += chunk
                    if len(batch) >= BATCH:
                        await asyncio.to_thread(writer.write, bytes(batch))
                        batch.clear()
                if batch:
                    await asyncio.to_thread(writer.write, bytes(batch))
        except aiohttp.ClientPayloadError as exc:
            raise FetchError(f"truncated download after {writer.size} bytes: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise FetchError(f"download failed: {type(exc).__name__}: {exc}") from exc
    if length is not None and writer.size != length:
        raise FetchError(f"truncated download: got {writer.size} of {length} bytes")


async def _fetch_object(source: str, writer: ScratchWriter, nats: NatsLink) -> None:
    from nats.js.errors import (
        BucketNotFoundError,
        DigestMismatchError,
        NotFoundError,
        ObjectNotFoundError,
    )
    from nats.js.errors import Error as JsError

    parts = urlsplit(source)
    bucket, name = parts.netloc, unquote(parts.path.lstrip("/"))
    js = await nats.jetstream()  # waits while NATS is down; NatsUnavailable without NATS
    try:
        store = await js.object_store(bucket)
        info = await store.get_info(name)
        if info.size is not None and info.size > writer.limit:
            raise FetchError(
                f"object {bucket}/{name} is {info.size} bytes, more than max_size"
                f" ({writer.limit} bytes)"
            )
        await store.get(name, writeinto=writer)  # type: ignore[arg-type]  # writes in a thread
    except (BucketNotFoundError, ObjectNotFoundError, NotFoundError) as exc:
        raise FetchError(f"no object {name!r} in object store {bucket!r}") from exc
    except DigestMismatchError as exc:
        raise FetchError(f"object {bucket}/{name}: digest mismatch") from exc
    except JsError as exc:
        raise FetchError(f"object store {bucket!r}: {exc}") from exc
