"""Fixtures shared by the unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from steward.machine.spec import MachineSpec
from tests.fakes import FakeStore


@pytest.fixture
async def harnesses() -> Any:
    made: list[Any] = []

    def make(spec: MachineSpec, store: FakeStore | None = None) -> Any:
        from tests.unit.test_runtime import Harness

        h = Harness(spec, store)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.machine.stop()
