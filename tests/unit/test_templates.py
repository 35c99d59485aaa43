"""Templates in watcher properties: what this first version accepts and refuses."""

from __future__ import annotations

import pytest

from steward.templates import Template, TemplateError


def test_text_without_actions_renders_to_itself() -> None:
    t = Template.parse("machines.web.config")
    assert t.static
    assert t.render({"identity": "n1"}, {}) == "machines.web.config"


def test_an_action_is_refused_with_its_column() -> None:
    with pytest.raises(TemplateError) as caught:
        Template.parse('key.{{ lookup "facts.x" "d" }}')
    assert caught.value.column == 5
