"""The two JetStream API calls nats-py does not offer as Choria makes them: a message delete
that does not erase (Choria's ``DeleteStreamMessage(…, noErase=true)``) and stream names
filtered by subject (Choria's governor list)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nats.js.errors import APIError

if TYPE_CHECKING:
    from nats.aio.client import Client

API = "$JS.API"
TIMEOUT = 5.0  # seconds for one API request (nats-py's default)

# JetStream error codes (nats-server errors.json)
STORE_FAILED = 10077  # a publish the stream refused: the governor is full (DiscardNew)
NO_MESSAGE = 10037  # no message with that sequence: left, evicted or aged out already
DELETE_FAILED = 10057  # a delete that failed; "no message found" when it was gone already
NO_STREAM = 10059  # no stream by that name


async def request(client: Client, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    """The JSON answer of ``$JS.API.<subject>``; APIError (nats-py's) when it is an error."""
    msg = await client.request(f"{API}.{subject}", json.dumps(body).encode(), timeout=TIMEOUT)
    answer: dict[str, Any] = json.loads(msg.data)
    if "error" in answer:
        APIError.from_error(answer["error"])  # raises the matching subclass
    return answer


async def delete_message(client: Client, stream: str, seq: int) -> None:
    await request(client, f"STREAM.MSG.DELETE.{stream}", {"seq": seq, "no_erase": True})


async def stream_names(client: Client, subject: str) -> list[str]:
    """Every stream listening on a subject that ``subject`` (a wildcard) matches."""
    names: list[str] = []
    while True:
        answer = await request(client, "STREAM.NAMES", {"subject": subject, "offset": len(names)})
        page = answer.get("streams") or []
        names.extend(page)
        if not page or len(names) >= int(answer.get("total", 0)):
            return names


def error_code(exc: BaseException) -> int | None:
    """The JetStream error code of an APIError, else None."""
    return getattr(exc, "err_code", None) if isinstance(exc, APIError) else None


def is_gone(exc: APIError) -> bool:
    """The message an API call named is not there (any more)."""
    code = error_code(exc)
    return code == NO_MESSAGE or (
        code == DELETE_FAILED and "no message found" in (exc.description or "")
    )
