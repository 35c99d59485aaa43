"""The virtual fleet's delivered-per-second timeline: a worker's reports come a little more
than a second apart, and what each adds is spread over the seconds it covers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

import pytest

from bench import benchlib


@dataclass
class Reports:
    history: list[tuple[float, int]] = field(default_factory=list)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(benchlib.BENCH_DIR))  # the script imports `benchlib`
    return importlib.import_module("virtual_fleet")


def test_reports_1_3_s_apart_leave_no_empty_second(fleet: ModuleType) -> None:
    # 100 events a second, reported every 1.3 s: binned by the report's second alone, every
    # fourth second or so read 0 and the next double
    worker = Reports([(100 + i * 1.3, i * 130) for i in range(10)])
    assert fleet._timeline([worker], 100.0, 111.0)[:10] == [100] * 10


def test_workers_add_up_and_nothing_before_start_counts(fleet: ModuleType) -> None:
    a = Reports([(98.5, 0), (99.5, 50), (100.5, 100), (101.5, 150)])  # 50/s
    b = Reports([(100.0, 0), (101.0, 10), (102.0, 20)])  # 10/s
    # a's events from 99.5 to 100.0 came before the start: not counted
    assert fleet._timeline([a, b], 100.0, 102.0) == [60, 35, 0]
