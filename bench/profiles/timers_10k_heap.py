#!/usr/bin/env python3
"""Where the 10k timers' steady minute goes (bench/profiles/timers_10k.md), in process.

Runs the daemon on N timer machines (benchlib's template) in this process and prints, once
every machine runs and again once each has made its first transition: RSS and its peak,
pymalloc's arenas against the bytes in its used blocks (the difference: free space in arenas,
i.e. fragmentation), glibc's main arena (objects over 512 bytes) and the size of each glibc
heap (the store thread's among them). With ``--frames N`` (tracemalloc, slow) the growth
between the two, grouped by the innermost steward frame; with ``--status`` the same around
one status body (``steward.daemon.api.status_body``).

    PYTHONPATH=$PWD .venv/bin/python bench/profiles/timers_10k_heap.py --machines 10000 \\
        --timer 10 --status                  # memory figures only
    PYTHONPATH=$PWD .venv/bin/python bench/profiles/timers_10k_heap.py --machines 3000 \\
        --timer 20 --frames 10               # by kind (a longer timer: tracemalloc is slow)

Information only: not in ``make bench``, records nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import write_machines

from steward.daemon.api import status_body
from steward.daemon.config import load_config
from steward.daemon.logs import setup_logging
from steward.daemon.server import Daemon

MIB = 2**20


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        )
    ]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.fopen.restype = ctypes.c_void_p
    return libc


def _debugmallocstats(work: Path) -> str:
    """What ``sys._debugmallocstats`` writes on fd 2."""
    out = work / "mallocstats.txt"
    with out.open("w") as f:
        keep = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(keep, 2)
            os.close(keep)
    return out.read_text()


def pymalloc(work: Path) -> tuple[float, float]:
    """(MiB of pymalloc arenas, 1 MiB each in 3.11; MiB in their used blocks); zeros under
    tracemalloc."""
    text = _debugmallocstats(work)
    arenas = re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text)
    used = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", text)
    if arenas is None or used is None:
        return 0.0, 0.0
    return int(arenas[1].replace(",", "")) * 1.0, int(used[1].replace(",", "")) / MIB


def glibc_heaps(libc: ctypes.CDLL, work: Path) -> str:
    out = work / "malloc_info.xml"
    fp = ctypes.c_void_p(libc.fopen(str(out).encode(), b"w"))
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    heaps = re.findall(
        r'<heap nr="(\d+)">.*?<system type="current" size="(\d+)"', out.read_text(), re.S
    )
    return " ".join(f"{nr}:{int(size) / MIB:.1f}" for nr, size in heaps)


def report(label: str, libc: ctypes.CDLL, work: Path) -> None:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    rss, hwm = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    arenas, used = pymalloc(work)
    mi = libc.mallinfo2()
    print(
        f"{label}: RSS {rss:.1f} MiB (peak {hwm:.1f}); pymalloc arenas {arenas:.1f} MiB, "
        f"used blocks {used:.1f} MiB; glibc main arena in use {mi.uordblks / MIB:.1f} MiB, "
        f"mmapped {mi.hblkhd / MIB:.1f} MiB; glibc heaps (MiB) {glibc_heaps(libc, work)}",
        flush=True,
    )


def by_steward_frame(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int) -> None:
    grouped: dict[str, list[int]] = {}
    for stat in after.compare_to(before, "traceback"):
        key = "(no steward frame) " + str(stat.traceback[-1])
        for frame in reversed(stat.traceback):  # innermost last
            if "/steward/" in frame.filename:
                inner = stat.traceback[-1]
                where = frame.filename.split("/steward/", 1)[1]
                key = f"{where}:{frame.lineno} <- {Path(inner.filename).name}:{inner.lineno}"
                break
        sums = grouped.setdefault(key, [0, 0])
        sums[0] += stat.size_diff
        sums[1] += stat.count_diff
    total = sum(size for size, _ in grouped.values())
    print(f"growth {total / MIB:.2f} MiB, {total / n:.0f} bytes a machine; by innermost frame:")
    for key, (size, count) in sorted(grouped.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"  {size / MIB:7.2f} MiB {count:8d} blocks {size / n:6.0f} B/machine  {key}")


async def probe(daemon: Daemon, args: argparse.Namespace, libc: ctypes.CDLL, work: Path) -> None:
    machines = daemon.node.machines
    while len(machines) < args.machines:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    gc.collect()
    report("loaded", libc, work)
    if args.frames:
        tracemalloc.start(args.frames)
    before = tracemalloc.take_snapshot() if args.frames else None
    t0 = time.monotonic()
    while sum(1 for m in machines.values() if m.transitions_fired) < args.machines:
        await asyncio.sleep(0.5)
    await asyncio.sleep(2.0)  # the store thread and the publisher settle
    print(f"every machine moved after {time.monotonic() - t0:.1f} s")
    report("after every first transition", libc, work)
    if before is not None:
        by_steward_frame(before, tracemalloc.take_snapshot(), args.machines)
        tracemalloc.stop()
    if args.status:
        body = status_body(daemon)
        report(f"a status body built ({sum(map(len, body)) / 1e6:.1f} MB)", libc, work)
        del body
        gc.collect()
        report("the status body freed", libc, work)
    daemon.request_exit()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="heap-", dir="/tmp"))  # short: the socket path
    machines_dir = work / "machines"
    machines_dir.mkdir()
    write_machines(machines_dir, args.machines, args.timer, timers_only=True)
    setup_logging("json", "info", stream=(work / "daemon.log").open("w"))
    config = load_config(
        None,
        overrides={
            "machines_dir": str(machines_dir),
            "state_dir": str(work / "state"),
            "metrics_listen": "127.0.0.1:0",
        },
    )
    daemon = Daemon(config)
    serving = asyncio.ensure_future(daemon.serve())
    try:
        await probe(daemon, args, _libc(), work)
        await serving
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=10_000)
    parser.add_argument("--timer", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--frames", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--status", action="store_true", help="measure one status body too")
    asyncio.run(main(parser.parse_args()))
