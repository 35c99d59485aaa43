"""Templates in watcher properties: Go text/template's grammar (the subset Choria uses),
Choria's functions, Go's printing of values, and errors with their column."""

from __future__ import annotations

from typing import Any

import pytest

from steward.templates import Template, TemplateError
from steward.templates.values import go_float

FACTS = {
    "location": "lon",
    "i": 1,
    "big": 16000000000,
    "million": 1e6,
    "ratio": 0.25,
    "up": True,
    "nothing": None,
    "roles": ["web", "db"],
    "disks": {"sdb": 2, "sda": "ssd"},
    "hosts": [{"name": "a"}, {"name": "b"}],
}
DATA = {"x": 1, "name": "web-01"}


def render(text: str, facts: dict[str, Any] = FACTS, data: dict[str, Any] = DATA) -> str:
    return Template.parse(text).render(facts, data)


def parse_error(text: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        Template.parse(text)
    return caught.value


def render_error(text: str) -> TemplateError:
    template = Template.parse(text)
    with pytest.raises(TemplateError) as caught:
        template.render(FACTS, DATA)
    return caught.value


# text -------------------------------------------------------------------------------------
def test_text_without_actions_is_static_and_renders_to_itself() -> None:
    t = Template.parse("machines.web.config")
    assert t.static
    assert t.nodes == ()  # never parsed: the fast path
    assert t.render({"identity": "n1"}, {}) == "machines.web.config"


def test_choria_exec_watcher_examples() -> None:
    # go-choria aagent/watchers/execwatcher/exec_test.go, verbatim
    assert render('{{lookup "facts.foo" "default"}}') == "default"
    text = (
        '{{lookup "facts.location" "default"| ToUpper }}: {{ lookup "i" 1 }} '
        '({{ lookup "data.x" 2 }})'
    )
    assert render(text) == "LON: 1 (1)"


# the grammar -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ "a\\tb\\u00e9\\x41\\101" }}', "a\tbéAA"),
        ("{{ `raw \\n {{ }}` }}", "raw \\n {{ }}"),
        ("{{ 'a' }}", "97"),  # a Go character constant is a number
        ("{{ 42 }} {{ -3 }} {{ 1_000 }} {{ 0x1F }} {{ 017 }}", "42 -3 1000 31 15"),
        ("{{ 1.5 }} {{ 1e6 }} {{ 2.5e-5 }}", "1.5 1e+06 2.5e-05"),
        ("{{ true }} {{ false }}", "true false"),
        ('{{ ToUpper (lookup "facts.location" "x") }}', "LON"),
        ('{{ lookup "facts.location" "x" | ToUpper | ToLower | Title }}', "Lon"),
        ('{{ (lookup "facts.disks" 0).sda }}', "ssd"),
        ('a {{- "b" -}} c', "abc"),
        ("a  \n {{- 1 }} \n {{ 2 -}} \n  c", "a1 \n 2c"),
        ("x {{-3}}", "x -3"),  # '{{-3}}' is minus three, no trim marker
        ("a {{/* a comment, {{ even }} this */}} b", "a  b"),
        ("a {{- /* trimmed */ -}} b", "ab"),
        ('{{\n  lookup "facts.location"\n  "x"\n}}', "lon"),  # newlines inside an action
    ],
)
def test_grammar(text: str, out: str) -> None:
    assert render(text) == out


def test_a_template_of_comments_and_trims_only_is_static() -> None:
    t = Template.parse("a {{- /* gone */ -}} b")
    assert t.static
    assert t.render({}, {}) == "ab"


def test_dot_reads_the_data_the_caller_gives() -> None:
    t = Template.parse("{{ .Name }}-{{ .Spec.Version }} {{ .Missing }}")
    assert t.uses_dot
    assert t.render({}, {}, {"Name": "web", "Spec": {"Version": "1.0"}}) == "web-1.0 <no value>"
    assert not Template.parse('{{ lookup "facts.x" 1 }}').uses_dot


# functions ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ "hello wORLD o\'neil foo_bar" | Title }}', "Hello World O'neil Foo_bar"),
        ('{{ Capitalize "web server" }}', "Web Server"),
        ('{{ ToLower "ÀB" }} {{ ToUpper "àb" }}', "àb ÀB"),
        ('{{ lookup "facts.roles" "" | StringsJoin }}', "web, db"),
        ('{{ Base64Encode "hi there" }}', "aGkgdGhlcmU="),
        ('{{ Base64Decode "aGkgdGhlcmU=" }}', "hi there"),
    ],
)
def test_functions(text: str, out: str) -> None:
    assert render(text) == out


@pytest.mark.parametrize(
    ("path", "out"),
    [
        ("facts.location", "lon"),
        ("data.name", "web-01"),
        ("facts.nope", "dflt"),  # missing: the default
        ("location", "dflt"),  # paths start at {"facts": …, "data": …}
        ("facts.roles.1", "db"),
        ("facts.roles.#", "2"),
        ("facts.hosts.#.name", "[a b]"),
        ("facts.dis*.sda", "ssd"),
        ("facts.up", "true"),
        ("facts.i", "1"),
        ("facts.big", "16000000000"),  # an int prints in full (Choria: 1.6e+10)
        ("facts.million", "1e+06"),  # a float prints as Go prints a float64
        ("facts.ratio", "0.25"),
        ("facts.roles", "[web db]"),
        ("facts.disks", "map[sda:ssd sdb:2]"),  # Go sorts map keys
        ("facts.nothing", "<no value>"),  # JSON null is found: nil, printed as Go does
    ],
)
def test_lookup_reads_facts_and_data_and_prints_like_go(path: str, out: str) -> None:
    assert render(f'{{{{ lookup "{path}" "dflt" }}}}') == out


def test_lookup_default_keeps_its_type() -> None:
    assert render('{{ lookup "facts.nope" 42 }}|{{ lookup "facts.nope" nil }}') == "42|<no value>"


def test_render_sees_the_facts_it_is_given_each_time() -> None:
    t = Template.parse('{{ lookup "facts.location" "?" }}')
    assert t.render({"location": "lon"}, {}) == "lon"
    assert t.render({"location": "nyc"}, {}) == "nyc"


@pytest.mark.parametrize(
    ("value", "out"),
    [
        (1.0, "1"),
        (-0.0, "-0"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        (0.1 + 0.2, "0.30000000000000004"),
        (float("inf"), "+Inf"),
    ],
)
def test_floats_print_as_go_percent_v(value: float, out: str) -> None:
    assert go_float(value) == out


# errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ('key.{{ lokup "facts.x" "d" }}', 8, "function 'lokup' not defined"),
        ("x {{ ToUpper 42 }}", 14, "ToUpper: argument 1 must be a string, not a number"),
        ('{{ ToUpper "a" "b" }}', 4, "wrong number of args for ToUpper: want 1 got 2"),
        ('{{ "a" | ToUpper "b" }}', 10, "wrong number of args for ToUpper: want 1 got 2"),
        ('{{ ToUpper "a" | StringsJoin }}', 18, "StringsJoin: argument 1 must be a list"),
        ('{{ lookup "a.#(b=1)" "" }}', 11, "lookup: 'a.#(b=1)': only keys"),
        ('{{ lookup 1 "" }}', 11, "lookup: argument 1 must be a string"),
        ("ab {{ if true }}x{{ end }}", 7, "{{ if }} is not supported"),
        ("{{ range . }}", 4, "{{ range }} is not supported"),
        ("{{ $x := 1 }}", 4, "variables ($name) are not supported"),
        ('{{ "a" | "b" }}', 10, "can't give argument to non-function"),
        ('{{ "a" "b" }}', 4, "can't give argument to non-function"),
        ("{{ nil }}", 4, "nil is not a command"),
        ("{{ }}", 1, "missing value for command"),
        ('{{ ToUpper "x" | }}', 18, "missing value for command"),
        ("a {{ 1 ", 3, "unclosed action"),
        ('{{ "abc }}', 4, "unterminated quoted string"),
        ('{{ "\\q" }}', 5, "unknown escape sequence"),
        ("{{ 12ab }}", 4, "bad number syntax"),
        ('{{ (ToUpper "a" }}', 4, "unclosed left paren"),
        ("{{ # }}", 4, "unexpected '#'"),
        ("{{/* x */ }}", 8, "comment ends before closing delimiter"),
        ("{{/* x ", 1, "unclosed comment"),
        ('{{ "x".Field }}', 4, "unexpected '.Field' after a value"),
    ],
)
def test_bad_templates_are_refused_at_parse_with_their_column(
    text: str, column: int, message: str
) -> None:
    error = parse_error(text)
    assert (error.column, error.message[: len(message)]) == (column, message)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        (
            '{{ Base64Decode "!!not base64" }}',
            4,
            "Base64Decode: '!!not base64' is not valid base64",
        ),
        (
            '{{ lookup "facts.i" "" | ToUpper }}',
            26,
            "ToUpper: argument 1 must be a string, got a number (1)",
        ),
        (
            '{{ lookup "facts.roles" "" | ToLower }}',
            30,
            "ToLower: argument 1 must be a string, got a list",
        ),
        ('{{ lookup "facts.up" "" | StringsJoin }}', 27, "StringsJoin: argument 1 must be a list"),
        ('{{ (lookup "facts.roles" "").name }}', 4, "can't evaluate field name in a list"),
    ],
)
def test_what_fails_only_with_the_values_fails_at_render_with_its_column(
    text: str, column: int, message: str
) -> None:
    error = render_error(text)
    assert (error.column, error.message[: len(message)]) == (column, message)


def test_text_is_never_evaluated_as_python() -> None:
    text = '{{ __import__("os").system("false") }}'
    assert "not defined" in parse_error(text).message
