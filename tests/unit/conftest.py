"""Fixtures shared by the unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from steward.machine.spec import MachineSpec
from tests.support.fakes import FakeStore
from tests.support.machines import Harness


@pytest.fixture
async def harnesses() -> Any:
    made: list[Any] = []

    def make(spec: MachineSpec, store: FakeStore | None = None) -> Any:
        h = Harness(spec, store)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.machine.stop()
