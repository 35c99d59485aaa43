"""Text for people: ``steward status``, ``steward history``, events, governors."""

from __future__ import annotations

import time
from typing import Any

from steward.machine.durations import format_duration

RESULT_WIDTH = 72  # characters of a watcher result shown on one line


def _when(ts: float | None, now: float) -> str:
    if not ts:
        return "never"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    return f"{stamp} ({format_duration(max(0.0, now - ts))} ago)"


def _table(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows
    ]


def render_status(data: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    machines = data.get("machines", [])
    lines = [
        f"node {data.get('node')}: {len(machines)} machines (steward {data.get('steward_version')})"
    ]
    for m in sorted(machines, key=lambda m: m["name"]):
        lines.append("")
        lines.append(
            f"{m['name']} {m['version']}: {m['state']} "
            f"since {_when(m['since'], now)}, seq {m['seq']}"
        )
        if m.get("store_error"):
            lines.append(f"  ! state not recorded: {m['store_error']}")
        last = m.get("last_transition")
        if last:
            cause = last.get("cause") or {}
            result = cause_result(cause)
            lines.append(
                f"  last: {last['transition']} {last['from_state']} -> {last['to_state']} "
                f"by {cause.get('text', '?')}" + (f" ({result})" if result else "")
            )
        rows = [["WATCHER", "TYPE", "ACTIVE", "LAST", "AT", "DETAIL"]]
        for w in m.get("watchers", []):
            rows.append(
                [
                    w["name"],
                    w["type"],
                    "yes" if w["active"] else "no",
                    w["last_outcome"] or "-",
                    _when(w["last_run_at"], now) if w["last_run_at"] else "-",
                    (w["last_detail"] or "")[:60],
                ]
            )
        if len(rows) > 1:
            lines.extend(_table(rows, "  "))
    events = data.get("events")
    if events:
        outbox = events.get("outbox", {})
        nats = events.get("nats")
        link = "no NATS configured"
        if nats:
            link = "NATS " + (
                "connected to " + str(nats.get("server"))
                if nats.get("connected")
                else "disconnected"
            )
            if nats.get("last_error") and not nats.get("connected"):
                link += f" ({nats['last_error']})"
        lines.append("")
        by_kind = outbox.get("dropped_by_kind") or {}
        dropped = f"{outbox.get('dropped', 0)} dropped"
        if by_kind:
            dropped += " (" + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) + ")"
        lines.append(f"events: {outbox.get('events', 0)} in the outbox, {dropped}; {link}")
    fleet = data.get("fleet")
    if fleet:
        state = "up to date" if fleet.get("connected") else "waiting for NATS"
        if fleet.get("connected") and fleet.get("pending"):
            state = f"{fleet['pending']} keys to write"
        lines.append(
            f"fleet: bucket {fleet.get('bucket')}, {state}; {fleet.get('written', 0)} keys "
            f"written, {fleet.get('heartbeats', 0)} heartbeats"
            + (f" (! {fleet['last_error']})" if fleet.get("last_error") else "")
        )
    facts = data.get("facts") or {}
    if facts.get("file"):
        lines.append(
            f"facts: {facts.get('count', 0)} from {facts['file']}"
            + (f" (! {facts['error']}; keeping the last good facts)" if facts.get("error") else "")
        )
    problems = [p for p in data.get("problems", []) if p.get("severity") == "error"]
    if problems:
        lines.append("")
        lines.append(f"rejected machine files ({len({p['file'] for p in problems})}):")
        for p in problems:
            where = f"{p['file']}:{p['line']}:{p['column']}" if p["line"] else p["file"]
            field = f" {p['path']}:" if p["path"] else ""
            lines.append(f"  {where}:{field} {p['message']}")
    return "\n".join(lines) + "\n"


def render_history(entries: list[dict[str, Any]]) -> str:
    """``steward history``: one line per transition, oldest first, times local."""
    if not entries:
        return "no transitions recorded\n"
    rows = [["SEQ", "AT", "TRANSITION", "FROM -> TO", "CAUSE", "RESULT"]]
    for e in entries:
        cause = e.get("cause") or {}
        rows.append(
            [
                str(e["seq"]),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["at"])),
                e["transition"],
                f"{e['from_state']} -> {e['to_state']}",
                cause.get("text", "?"),
                cause_result(cause),
            ]
        )
    return "\n".join(_table(rows)) + "\n"


def cause_result(cause: dict[str, Any], width: int = RESULT_WIDTH) -> str:
    """A watcher cause's result in a few words: outcome, detail, exit code, output head."""
    if cause.get("kind") != "watcher":
        return ""
    detail = str(cause.get("detail") or "")
    parts = [str(cause.get("outcome") or "?")]
    if detail:
        parts.append(detail)
    result = cause.get("result") or {}
    code = result.get("exit_code")
    if code is not None and "exit code" not in detail:
        parts.append(f"exit code {code}")
    head = _first_line(result.get("stdout")) or _first_line(result.get("stderr"))
    if head and head not in detail:
        parts.append(head)
    text = ": ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _first_line(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return next((line.strip() for line in value.splitlines() if line.strip()), "")


def render_event(event: dict[str, Any]) -> str:
    """One line for one CloudEvent (steward's or Choria's format)."""
    data = event.get("data") or {}
    ctype = str(event.get("type", ""))
    when = str(event.get("time", ""))[:23] + (
        "Z" if str(event.get("time", "")).endswith("Z") else ""
    )
    node = data.get("node") or data.get("identity") or "?"
    machine = data.get("machine") or event.get("subject") or "?"
    if ctype.endswith(".transition"):
        text = (
            f"transition {data.get('transition')}: {data.get('from_state')} -> "
            f"{data.get('to_state')} (seq {data.get('seq')})"
        )
    elif ".watcher." in ctype:
        name = data.get("watcher") or data.get("name")
        wtype = data.get("watcher_type") or data.get("type")
        outcome = data.get("outcome") or data.get("previous_outcome") or ""
        text = f"watcher {name} ({wtype}): {outcome} {data.get('detail') or ''}".rstrip()
    elif ctype.endswith(".lifecycle"):
        state = f" (state {data['state']})" if data.get("state") else ""
        text = f"lifecycle {data.get('step')}{state}"
        if data.get("problems"):
            first = data["problems"][0]
            text += f": {first.get('file')}:{first.get('line')}:{first.get('column')}: "
            text += f"{first.get('path')}: {first.get('message')}"
    else:
        text = ctype
    return f"{when} {node} {machine} {text}"


def render_governors(governors: list[dict[str, Any]]) -> str:
    """``steward governor list``."""
    if not governors:
        return "no governors\n"
    rows = [["GOVERNOR", "CAPACITY", "ACTIVE", "EXPIRES", "REPLICAS"]]
    for g in governors:
        rows.append(
            [
                g["name"],
                str(g["capacity"]),
                str(g["active"]),
                format_duration(g["expires"]),
                str(g["replicas"]),
            ]
        )
    return "\n".join(_table(rows)) + "\n"


def render_governor(governor: dict[str, Any], leases: list[dict[str, Any]]) -> str:
    """``steward governor view``: settings, then who holds which slot."""
    lines = [
        f"governor {governor['name']} (stream {governor['stream']}, subject {governor['subject']})",
        f"  capacity: {governor['capacity']}",
        f"  expires:  {format_duration(governor['expires'])}",
        f"  replicas: {governor['replicas']}",
        f"  active:   {governor['active']}",
    ]
    if leases:
        rows = [["LEASE", "HOLDER", "AGE"]]
        for lease in leases:
            age = lease["age"]
            rows.append(
                [str(lease["seq"]), lease["holder"], "?" if age is None else format_duration(age)]
            )
        lines += ["", *_table(rows, "  ")]
    return "\n".join(lines) + "\n"
