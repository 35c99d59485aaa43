"""The CPU rows of issue 19: scenario 1 restated (check_cpu.py, with spawn_floor.py) and the
CPU per committed transition (transition_cpu.py): their verdict lines, and the floor's spawn
being steward's."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from bench import benchlib
from steward.processes import INSTANCE_VAR, minimal_environment

TICKS_PER_MS = benchlib.CLK_TCK / 1000


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch) -> dict[str, ModuleType]:
    monkeypatch.syspath_prepend(str(benchlib.BENCH_DIR))  # the scripts import `benchlib`
    names = ("check_cpu", "spawn_floor", "transition_cpu")
    return {name: importlib.import_module(name) for name in names}


def side(check_cpu: ModuleType, name: str, ms_per_check: float, *, runs: int = 1000) -> object:
    """A side whose CPU per check is ``ms_per_check`` over ``runs`` checks in 5 s windows."""
    s = check_cpu.Side(name, 1000, 5.0)
    s.window, s.runs, s.effective_interval = 5.0, runs, 5.0
    s.self_ticks = round(ms_per_check * runs * TICKS_PER_MS)
    s.rss_peak_kib = 80_000
    return s


def verdicts(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        name, _, rest = line.partition(": ")
        out[name] = rest.rsplit(" ", 1)[-1] if "NOT RUN" not in rest else "NOT RUN"
        assert benchlib._target(line) is not None, line  # the summary table reads it
    return out


def test_check_cpu_has_one_line_per_target(scripts: dict[str, ModuleType]) -> None:
    check_cpu = scripts["check_cpu"]
    figures = check_cpu.Figures(1000, 5.0, 5.0, 1, nofile="1024/20000")
    figures.runs["steward"].append(side(check_cpu, "steward", 1.1))
    figures.runs["floor"].append(side(check_cpu, "floor", 1.0))
    figures.runs["monit"].append(side(check_cpu, "monit", 0.9))

    assert verdicts(figures.summaries()) == {
        "check-cpu-floor": "PASS",  # 1.10 <= 1.15
        "check-cpu-monit": "MISS",  # 1.22 > 1.0
        "check-rss": "PASS",
        "check-rate": "PASS",
    }

    figures.runs["steward"][0] = side(check_cpu, "steward", 1.2)
    assert verdicts(figures.summaries())["check-cpu-floor"] == "MISS"  # 1.20 > 1.15


def test_check_cpu_without_monit_says_not_run(scripts: dict[str, ModuleType]) -> None:
    check_cpu = scripts["check_cpu"]
    figures = check_cpu.Figures(1000, 5.0, 5.0, 1, monit_not_run="not on PATH")
    figures.runs["steward"].append(side(check_cpu, "steward", 1.0))
    figures.runs["floor"].append(side(check_cpu, "floor", 1.0))

    lines = figures.summaries()

    assert "check-cpu-monit: NOT RUN (monit: not on PATH)" in lines
    assert verdicts(lines)["check-cpu-floor"] == "PASS"


def test_the_floor_gives_true_what_steward_gives_it(
    scripts: dict[str, ModuleType], tmp_path: Path
) -> None:
    directory = tmp_path / "m7"
    steward = {
        **minimal_environment(directory, "m7", "idle", "probe"),
        "WATCHER_DATA": "…",
        "WATCHER_FACTS": "…",
        INSTANCE_VAR: "…",
    }

    floor = scripts["spawn_floor"].environment(directory)

    assert floor.keys() == steward.keys()
    assert {k: floor[k] for k in ("PATH", "MACHINE_NAME", "MACHINE_STATE")} == {
        k: steward[k] for k in ("PATH", "MACHINE_NAME", "MACHINE_STATE")
    }


def test_transition_cpu_is_daemon_cpu_over_transitions(scripts: dict[str, ModuleType]) -> None:
    transition_cpu = scripts["transition_cpu"]
    figures = transition_cpu.Figures(100, 0.2, 1)
    plain = transition_cpu.Window("no NATS", seconds=10.0, transitions=5000)
    plain.ticks = round(0.25 * 5000 * TICKS_PER_MS)  # 0.25 ms each
    js = transition_cpu.Window("JetStream", seconds=10.0, transitions=5000)
    js.ticks = round(0.6 * 5000 * TICKS_PER_MS)
    figures.runs["no NATS"].append(plain)
    figures.runs["JetStream"].append(js)

    assert plain.ms_per_transition == pytest.approx(0.25)
    assert verdicts([figures.summary()]) == {"transition-cpu": "PASS"}
    section = transition_cpu.section(figures)
    assert f"| **{transition_cpu.HEADLINE}** | 0.600 ms" in section  # information, in the table

    plain.ticks = round(0.31 * 5000 * TICKS_PER_MS)
    assert verdicts([figures.summary()]) == {"transition-cpu": "MISS"}


@pytest.mark.parametrize("scenario", ["monit_compare", "exec_floor"])
def test_the_replaced_scenario_1_rows_are_retired(scenario: str) -> None:
    runs = benchlib.parse_runs(
        f"## {scenario}: a run (2026-11-21 17:00 UTC)\n\n- commit: `4a6e29e`\n\n"
        f"`{scenario}: 1.85 ms target: ≤ 0.5x ratio: 1.91 MISS`\n"
    )

    (row,) = benchlib.summary_table(runs).splitlines()[2:]

    assert row.startswith(f"| {scenario} (retired: replaced by check_cpu")
