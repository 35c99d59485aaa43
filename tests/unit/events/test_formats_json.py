"""Events written without the CloudEvents SDK: byte for byte what its ``JSONFormat.write``
writes for its ``CloudEvent``, and read back by it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from steward.events.envelope import EventKind, LifecycleStep
from steward.events.formats import event_format, parse_event, write_event
from tests.support.fresh import run_fresh

ATTRIBUTES: dict[str, Any] = {
    "id": "an-id",
    "source": "steward://n1",
    "type": "io.steward.machine.transition",
    "subject": "web",
    "time": datetime.fromtimestamp(1764464523.123456, UTC),
    "datacontenttype": "application/json",
}


def sdk_write(attributes: dict[str, Any], data: dict[str, Any] | None) -> bytes:
    return JSONFormat().write(CloudEvent(dict(attributes), data))


def ours(attributes: dict[str, Any], data: dict[str, Any] | None) -> bytes:
    return write_event({**attributes, "specversion": "1.0"}, data)


@pytest.mark.parametrize(
    "data",
    [
        {"node": "n1", "state": None, "count": 3, "ratio": 0.5, "ok": True},
        {"text": 'é ünïcode \u2603 "quoted" \\ back\nslash', "nested": {"list": [1, "a", None]}},
        {"when": datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)},
        {"when": datetime(2026, 11, 30, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))},
        {"when": datetime(2026, 11, 30, 1, 2, 3)},  # naive
        {},
    ],
)
def test_written_as_the_sdk_writes_it(data: dict[str, Any]) -> None:
    assert ours(ATTRIBUTES, data) == sdk_write(ATTRIBUTES, data)


def test_no_data_is_written_as_the_sdk_writes_it() -> None:
    assert ours(ATTRIBUTES, None) == sdk_write(ATTRIBUTES, None)


def test_what_is_not_json_fails_as_in_the_sdk() -> None:
    data = {"bad": {1, 2}}
    with pytest.raises(TypeError) as mine:
        ours(ATTRIBUTES, data)
    with pytest.raises(TypeError) as sdk:
        sdk_write(ATTRIBUTES, data)
    assert str(mine.value) == str(sdk.value)


@pytest.mark.parametrize("name", ["steward", "choria"])
def test_every_kind_of_event_is_what_the_sdk_writes_and_reads_back(name: str) -> None:
    fmt = event_format(name, "n1")
    envelopes = [
        fmt.transition(
            machine="web",
            version="1.0",
            instance="i",
            transition="go",
            from_state="a",
            to_state="b",
            seq=1,
            at=1764464523.5,
            cause="timer",
        ),
        fmt.lifecycle(
            machine="web",
            version="1.0",
            instance="i",
            step=LifecycleStep.STARTED,
            at=1764464523.5,
            state="a",
            detail=None,
        ),
    ]
    for envelope in envelopes:
        event = parse_event(envelope.body)  # the SDK's reader: a valid CloudEvent
        assert JSONFormat().write(event) == envelope.body
        assert event.get_id() == envelope.id
        assert envelope.kind in set(EventKind)


def test_the_formats_module_loads_no_dateutil() -> None:
    code = """
        import sys
        import steward.events.formats
        heavy = ["dateutil", "cloudevents"]
        print(*[name for name in heavy if name in sys.modules] or ["none"])
    """
    stdout = run_fresh(code)
    assert stdout.split() == ["none"]
