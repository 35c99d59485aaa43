"""bench/RESULTS.md's summary table: the latest run of each scenario, made from the history."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench import benchlib

# sections as the scripts write them; `\x20\x20`: events_latency ends its target lines so
HISTORY = """\
## timers_10k: 10000 timer machines, 60 s timers (2026-11-21 16:22 UTC)

- machine: 2 cores, AMD EPYC; Python 3.11.7, Linux 6.1; load average at the end 4.9 4.6 3.6
- commit: `231ae87`; load average at start: 4.98 4.63 3.68
- N = 10000 machines

| figure | value |
|---|---|
| load: spawn -> status lists all (target ≤ 10 s) | 12.46 s |

`timers-10k-load: spawn -> status lists all 10000 machines 12.46 s target: ≤ 10 s ratio: 1.25 MISS`
`timers-10k-rss: peak RSS 320.4 MB (10000 machines) target: ≤ 500 MB ratio: 0.64 PASS`

## reload_latency: 50 drops, 100 machines running (2026-11-21 16:40 UTC)

- machine: 4 cores, Other CPU; Python 3.11.9, Linux 6.8
- commit: `83179ec`
- each drop: a machine file renamed into the machines dir

| figure | value |
|---|---|
| p99 | 123ms |
| target p99 ≤ 500ms | PASS |

`reload: p50 103ms p99 123ms (50 drops, layout file) target p99 ≤ 500ms PASS`\x20\x20
`reload-extra: 7 things (no target: a figure only)`\x20\x20

## timers_10k: 10000 timer machines, 60 s timers (2026-11-21 17:28 UTC)

- machine: 2 cores, AMD EPYC; Python 3.11.7, Linux 6.1
- commit: `4af3a14`; load average at start: 2.09 2.30 2.47
- N = 10000 machines

| figure | value |
|---|---|
| load: spawn -> status lists all (target ≤ 10 s) | 9.33 s |
| **RSS after load** | 252.0 MB |

`timers-10k-load: spawn -> status lists all 10000 machines 9.33 s target: ≤ 10 s ratio: 0.93 PASS`
`timers-10k-rss: NOT RUN (no /proc here)`
"""


def table_rows(text: str) -> dict[str, list[str]]:
    """The summary table's rows by scenario: the cells of each, stripped."""
    table = text.split(benchlib.SUMMARY_COLUMNS, 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split(" | ") for line in table.strip().splitlines()]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


def test_the_table_shows_the_latest_run_of_each_scenario(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# an old header\n\nwith an old intro\n\n" + HISTORY)

    benchlib.summarize(results)
    text = results.read_text()

    assert text.startswith(benchlib.RESULTS_HEADER)
    rows = table_rows(text)
    assert list(rows) == ["timers_10k", "reload_latency"]  # in order of first appearance
    headline, date, commit, machine = rows["timers_10k"]
    assert (date, commit, machine) == (
        "2026-11-21 17:28 UTC",
        "`4af3a14`",
        "2 cores, AMD EPYC; Python 3.11.7, Linux 6.1",
    )
    assert headline.split("<br>") == [
        "RSS after load: 252.0 MB",  # the figure marked bold in its section
        "**PASS** timers-10k-load: spawn -> status lists all 10000 machines 9.33 s "
        "(target ≤ 10 s; ratio 0.93)",
        "**NOT RUN** timers-10k-rss (no /proc here)",
    ]
    headline, date, commit, machine = rows["reload_latency"]
    assert (date, commit, machine) == (
        "2026-11-21 16:40 UTC",
        "`83179ec`",
        "4 cores, Other CPU; Python 3.11.9, Linux 6.8",
    )
    # the older target-line format (no colon, no ratio); a line without a verdict is left out
    assert headline == (
        "**PASS** reload: p50 103ms p99 123ms (50 drops, layout file) (target p99 ≤ 500ms)"
    )
    # the older timers_10k run is in the history only
    assert "12.46 s" not in text.split("\n## ", 1)[0]
    assert text.endswith(HISTORY)
    assert text.count("## timers_10k:") == 2


def test_record_appends_the_section_and_regenerates_the_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(benchlib.render_results(HISTORY))
    section = benchlib.results_section(
        "reload_latency: 5 drops, 10 machines running",
        [("ready", "0.50 s"), ("p99", "90ms")],
        "a smoke run",
        headline=["p99"],
        footer="`reload: p50 80ms p99 90ms (5 drops) target: p99 ≤ 500ms ratio: 0.18 PASS`",
    )
    assert "| **p99** | 90ms |" in section and "| ready | 0.50 s |" in section

    benchlib.record(section, results)
    text = results.read_text()

    assert text.endswith(HISTORY + section)  # the history is appended to, never rewritten
    (run,) = benchlib.parse_runs(section)
    headline, date, commit, _machine = table_rows(text)["reload_latency"]
    assert (date, commit) == (run.date, f"`{run.commit}`")
    assert headline.split("<br>") == [
        "p99: 90ms",
        "**PASS** reload: p50 80ms p99 90ms (5 drops) (target p99 ≤ 500ms; ratio 0.18)",
    ]
    assert table_rows(text)["timers_10k"][1] == "2026-11-21 17:28 UTC"  # the other stays
    benchlib.summarize(results)
    assert results.read_text() == text  # regenerating changes nothing


def test_record_creates_the_file(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    section = benchlib.results_section("check_cpu: a run", [("ratio", "1.1")], "about")

    benchlib.record(section, results)

    text = results.read_text()
    assert text.startswith(benchlib.RESULTS_HEADER)
    assert list(table_rows(text)) == ["check_cpu"]
    assert table_rows(text)["check_cpu"][0] == "-"  # no headline figure, no target line
    assert text.endswith(section.lstrip("\n"))


def test_unmarked_load_machines_sections_use_the_known_headline() -> None:
    rows = "\n".join(
        f"| {name} | {value} |"
        for name, value in [
            ("ready (spawn -> status lists all)", "3.77 s"),
            ("daemon load_seconds (log)", "3.08 s"),
            ("CPU per exec run", "1.76 ms"),
        ]
    )
    history = (
        "## load_machines: 1000 machines (2026-11-21 16:53 UTC)\n\n- commit: `4a6e29e`\n\n"
        f"| figure | value |\n|---|---|\n{rows}\n"
    )

    (run,) = benchlib.parse_runs(history)

    assert run.headline == (
        "ready (spawn -> status lists all): 3.77 s",
        "CPU per exec run: 1.76 ms",
    )
    assert (run.commit, run.machine) == ("4a6e29e", "?")


def test_load_machines_headline_names_its_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(benchlib.BENCH_DIR))  # the script imports `benchlib`
    load_machines = importlib.import_module("load_machines")
    names = [name for name, _ in load_machines.Figures(1000, 5.0, 30.0).lines()]

    assert set(load_machines.HEADLINE) <= set(names)
    assert set(load_machines.HEADLINE) == set(benchlib.UNMARKED_HEADLINES["load_machines"])


def test_a_retired_scenario_says_so() -> None:
    runs = benchlib.parse_runs(
        "## docker_kill: 20 kills (2026-11-21 14:44 UTC)\n\n- commit: `61f2103`\n\n"
        "`docker-kill: p50 150.4ms p99 890.6ms (20 kills) target p99 ≤ 500ms MISS`\n"
    )

    (row,) = benchlib.summary_table(runs).splitlines()[2:]

    assert row.startswith(f"| docker_kill (retired: {benchlib.RETIRED['docker_kill']}) | ")
