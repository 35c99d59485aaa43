"""The Nagios plugin output parser, on what real plugins print (and on broken output)."""

from __future__ import annotations

from typing import Any

import pytest

from steward.watchers.plugin_output import Perfdata, parse_perfdata, parse_plugin_output


def P(label: str, value: float, uom: str = "", *rest: Any) -> Perfdata:
    warn, crit, lo, hi = (*rest, None, None, None, None)[:4]
    return Perfdata(label, value, uom, warn, crit, lo, hi)


REAL_OUTPUTS = [
    pytest.param(
        "HTTP OK: HTTP/1.1 200 OK - 10978 bytes in 0.029 second response time "
        "|time=0.028729s;;;0.000000 size=10978B;;;0",
        "HTTP OK: HTTP/1.1 200 OK - 10978 bytes in 0.029 second response time",
        [P("time", 0.028729, "s", None, None, 0.0), P("size", 10978, "B", None, None, 0.0)],
        id="check_http",
    ),
    pytest.param(
        "DISK OK - free space: / 3326 MB (56% inode=99%);| /=2643MB;5948;5958;0;5968",
        "DISK OK - free space: / 3326 MB (56% inode=99%);",
        [P("/", 2643, "MB", "5948", "5958", 0.0, 5968.0)],
        id="check_disk",
    ),
    pytest.param(
        "OK - load average: 0.06, 0.03, 0.00|load1=0.060;15.000;30.000;0; "
        "load5=0.030;10.000;25.000;0; load15=0.000;5.000;20.000;0;",
        "OK - load average: 0.06, 0.03, 0.00",
        [
            P("load1", 0.06, "", "15.000", "30.000", 0.0),
            P("load5", 0.03, "", "10.000", "25.000", 0.0),
            P("load15", 0.0, "", "5.000", "20.000", 0.0),
        ],
        id="check_load",
    ),
    pytest.param(
        "PING OK - Packet loss = 0%, RTA = 0.05 ms|rta=0.051000ms;100.000000;500.000000;0.000000"
        " pl=0%;20;60;0",
        "PING OK - Packet loss = 0%, RTA = 0.05 ms",
        [P("rta", 0.051, "ms", "100.000000", "500.000000", 0.0), P("pl", 0, "%", "20", "60", 0.0)],
        id="check_ping",
    ),
    pytest.param(
        "PROCS OK: 2 processes with command name 'httpd' | procs=2;;1:25;0;",
        "PROCS OK: 2 processes with command name 'httpd'",
        [P("procs", 2, "", None, "1:25", 0.0)],
        id="check_procs",
    ),
    pytest.param(
        "SWAP OK - 100% free (2047 MB out of 2047 MB) |swap=2147479552B;0;0;0;2147479552",
        "SWAP OK - 100% free (2047 MB out of 2047 MB)",
        [P("swap", 2147479552, "B", "0", "0", 0.0, 2147479552.0)],
        id="check_swap",
    ),
    pytest.param(
        "USERS OK - 2 users currently logged in |users=2;20;50;0",
        "USERS OK - 2 users currently logged in",
        [P("users", 2, "", "20", "50", 0.0)],
        id="check_users",
    ),
    pytest.param(
        "TCP OK - 0.000 second response time on 127.0.0.1 port 22"
        "|time=0.000164s;;;0.000000;10.000000",
        "TCP OK - 0.000 second response time on 127.0.0.1 port 22",
        [P("time", 0.000164, "s", None, None, 0.0, 10.0)],
        id="check_tcp",
    ),
    pytest.param(
        "DNS OK: 0.011 seconds response time. example.com returns 93.184.216.34"
        "|time=0.010735s;;;0.000000",
        "DNS OK: 0.011 seconds response time. example.com returns 93.184.216.34",
        [P("time", 0.010735, "s", None, None, 0.0)],
        id="check_dns",
    ),
    pytest.param(
        "NTP OK: Offset -0.0003 secs|offset=-0.000300s;60.000000;120.000000;",
        "NTP OK: Offset -0.0003 secs",
        [P("offset", -0.0003, "s", "60.000000", "120.000000")],
        id="check_ntp_time",
    ),
    pytest.param(
        "OK: All drives within bounds.|'C:\\ %'=47%;80;90 'C:\\'=38.5GB;65.4;73.6;0;81.8",
        "OK: All drives within bounds.",
        [P("C:\\ %", 47, "%", "80", "90"), P("C:\\", 38.5, "GB", "65.4", "73.6", 0.0, 81.8)],
        id="nsclient-quoted-labels",
    ),
    pytest.param(
        "MYSQL OK - Uptime: 123  Threads: 1|Connections=10c;;; Open_files=5;;;",
        "MYSQL OK - Uptime: 123  Threads: 1",
        [P("Connections", 10, "c"), P("Open_files", 5)],
        id="check_mysql-counters",
    ),
    pytest.param(
        "SSH OK - OpenSSH_9.2p1 Debian-2 (protocol 2.0) | time=0.012271s;;;0.000000;10.000000",
        "SSH OK - OpenSSH_9.2p1 Debian-2 (protocol 2.0)",
        [P("time", 0.012271, "s", None, None, 0.0, 10.0)],
        id="check_ssh",
    ),
    pytest.param(
        "CRITICAL - load average: 8.01, 7.50, 6.00|load1=8.010;@5:10;~:20;0;",
        "CRITICAL - load average: 8.01, 7.50, 6.00",
        [P("load1", 8.01, "", "@5:10", "~:20", 0.0)],
        id="ranges-inside-and-negative-infinity",
    ),
    pytest.param(
        "APT OK: 0 packages available for upgrade (0 critical updates).",
        "APT OK: 0 packages available for upgrade (0 critical updates).",
        [],
        id="check_apt-no-perfdata",
    ),
    pytest.param(
        "OK - it's fine|'it''s quoted'=1;;;; 'with = sign'=2,5s",
        "OK - it's fine",
        [P("it's quoted", 1), P("with = sign", 2.5, "s")],
        id="doubled-quote-and-comma-decimal",
    ),
]


@pytest.mark.parametrize(("output", "text", "perfdata"), REAL_OUTPUTS)
def test_real_plugin_outputs(output: str, text: str, perfdata: list[Perfdata]) -> None:
    parsed = parse_plugin_output(output + "\n")
    assert parsed.text == text
    assert list(parsed.perfdata) == pytest.approx(perfdata)
    assert parsed.errors == ()


def test_multi_line_output_with_perfdata_continuing_after_a_later_pipe() -> None:
    # the example from the Nagios plugin guidelines
    output = (
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n"
        "/boot 68 MB (69%);\n"
        "/home 69357 MB (27%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414 \n"
        "/var/log=818MB;970;975;0;980\n"
    )
    parsed = parse_plugin_output(output)
    assert parsed.text == "DISK OK - free space: / 3326 MB (56%);"
    assert parsed.long_output == (
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
    )
    assert [(p.label, p.value, p.max) for p in parsed.perfdata] == [
        ("/", 2643, 5968),
        ("/boot", 68, 98),
        ("/home", 69357, 253414),
        ("/var/log", 818, 980),
    ]


def test_long_output_without_perfdata() -> None:
    parsed = parse_plugin_output("WARNING - 2 problems\nfirst\nsecond\n")
    assert (parsed.text, parsed.long_output, parsed.perfdata) == (
        "WARNING - 2 problems",
        "first\nsecond",
        (),
    )


MALFORMED = [
    pytest.param("load1=abc;5;10", ["'load1': value 'abc' is not a number with an optional unit"]),
    pytest.param("=5", ["'=5': empty label"]),
    pytest.param("justtext", ["'justtext': expected 'label=value'"]),
    pytest.param("x=", ["'x': value '' is not a number with an optional unit"]),
    pytest.param("x=U;1;2", ["'x': value is undetermined (U)"]),
    pytest.param("x=1;2;3;4;5;6", ["'x': too many fields (6; at most value;warn;crit;min;max)"]),
    pytest.param("x=1;high;3", ["'x': warn 'high' is not a threshold range"]),
    pytest.param("x=1;;;zero", ["'x': min 'zero' is not a number"]),
    pytest.param("x=1..2s", ["'x': value '1..2s' is not a number with an optional unit"]),
    pytest.param("'open=1 y=2", ['unterminated quoted label: "\'open=1 y=2"']),
    pytest.param(
        "x=nan y=inf",
        [
            "'x': value 'nan' is not a number with an optional unit",
            "'y': value 'inf' is not a number with an optional unit",
        ],
    ),
]


@pytest.mark.parametrize(("perf", "errors"), MALFORMED)
def test_malformed_perfdata_is_reported_not_raised(perf: str, errors: list[str]) -> None:
    items, found = parse_perfdata(perf)
    assert items == []
    assert found == errors


def test_good_items_survive_a_bad_neighbour() -> None:
    parsed = parse_plugin_output("OK|a=1 b=oops c=3s;1;2\n")
    assert [p.label for p in parsed.perfdata] == ["a", "c"]
    assert parsed.errors == ("'b': value 'oops' is not a number with an optional unit",)


def test_empty_and_odd_output() -> None:
    assert parse_plugin_output("").text == ""
    assert parse_plugin_output("|").perfdata == ()
    assert parse_plugin_output("OK |   \n").text == "OK"
    assert parse_plugin_output("OK\r\nmore\r\n").long_output == "more"


def test_payload_contract() -> None:
    item = parse_perfdata("'root fs'=2643MB;5948;5958;0;5968")[0][0]
    assert item.as_dict() == {
        "label": "root fs",
        "value": 2643.0,
        "uom": "MB",
        "warn": "5948",
        "crit": "5958",
        "min": 0.0,
        "max": 5968.0,
    }
