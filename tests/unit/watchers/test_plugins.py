"""plugins/machines watchers: a verified spec becomes managing machines on disk; a bad one
changes nothing and is dropped from the data."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from steward.fleet.spec import Format, encode
from steward.machine.validate import parse_machine
from steward.watchers.base import Outcome, Watcher
from steward.watchers.context import Facts
from steward.watchers.registry import default_registry
from tests.support.fakes import fake_context
from tests.support.machines import Handle

SEED = bytes(range(32))
PUBLIC = bytes(SigningKey(SEED).verify_key).hex()


def entry(name: str, match: str = "", checksum: str = "c1") -> dict[str, str]:
    return {
        "name": name,
        "source": f"nats-object://ARCHIVES/{name}.tgz",
        "checksum": checksum,
        "verify_checksum": "v1",
        "match": match,
    }


def spec(entries: list[dict[str, str]], fmt: Format = Format.PLUGINS, seed: bytes = SEED) -> Any:
    return json.loads(encode(json.dumps(entries).encode(), fmt, seed))


def build(
    tmp_path: Path, wtype: str = "plugins", extra: str = "", node: str = "web1"
) -> tuple[Watcher, Handle, Path]:
    machines = tmp_path / "machines"
    (machines / "manager").mkdir(parents=True)
    props = textwrap.indent(f"data_item: spec\npublic_key: {PUBLIC}\n{extra}", "      ")
    text = (
        "name: manager\nversion: 1.0.0\ninitial_state: MANAGE\n"
        "transitions:\n  - {name: fail, from: [MANAGE], destination: MANAGE}\n"
        f"watchers:\n  - name: w\n    type: {wtype}\n    state_match: [MANAGE]\n"
        f"    properties:\n{props}\n"
    )
    parsed = parse_machine(
        text.encode(),
        default_registry(),
        file="m.yaml",
        path=machines / "manager" / "machine.yaml",
        directory=machines / "manager",
    )
    handle = Handle(machines / "manager", name="manager", state="MANAGE")
    facts = Facts({"role": "web"})
    context = fake_context(tmp_path / "scratch", node=node, facts=facts)
    cls = default_registry().get(wtype)
    assert cls is not None
    return cls(parsed.watchers[0], handle, context), handle, machines


async def test_writes_the_managing_machine_for_each_matching_entry(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path)
    handle.data["spec"] = spec(
        [entry("app", 'identity("^web")'), entry("db", 'get_fact("role") == "db"')]
    )
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS, result.detail
    assert result.payload["written"] == ["app"]
    written = (machines / "mm_app" / "machine.yaml").read_text()
    assert 'name: "mm_app"' in written
    assert 'source: "nats-object://ARCHIVES/app.tgz"' in written
    assert f'target: "{machines}"' in written
    assert 'interval: "2m0s"' in written
    assert (machines / "mm_app" / "machine.yaml").stat().st_mode & 0o777 == 0o600
    assert not (machines / "mm_db").exists()
    # the written machine is one steward loads (its archive watcher type aside)
    again = await watcher.check()
    assert again.outcome is Outcome.UNCHANGED, again.detail


async def test_an_update_replaces_and_purge_removes_only_prefixed(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path, extra="purge_unknown: true\n")
    handle.data["spec"] = spec([entry("app"), entry("old")])
    assert (await watcher.check()).outcome is Outcome.SUCCESS
    (machines / "old").mkdir()  # what old's archive watcher extracted
    (machines / "mine").mkdir()  # not managed: never touched
    (machines / "mmx_other").mkdir()
    handle.data["spec"] = spec([entry("app", checksum="c2")])
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS
    assert (result.payload["written"], result.payload["purged"]) == (["app"], ["old"])
    assert 'checksum: "c2"' in (machines / "mm_app" / "machine.yaml").read_text()
    assert not (machines / "mm_old").exists() and not (machines / "old").exists()
    assert (machines / "mine").is_dir() and (machines / "mmx_other").is_dir()
    assert (machines / "manager").is_dir()


async def test_without_purge_unlisted_machines_stay(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path)
    handle.data["spec"] = spec([entry("app"), entry("old")])
    await watcher.check()
    handle.data["spec"] = spec([entry("app")])
    assert (await watcher.check()).outcome is Outcome.UNCHANGED
    assert (machines / "mm_old").is_dir()


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (spec([entry("evil")], seed=bytes(32)), "does not verify"),
        (spec([entry("evil")], seed=None), "not signed"),  # type: ignore[arg-type]
        ({"plugins": "bm90IGpzb24="}, "not signed"),
    ],
)
async def test_a_bad_spec_changes_nothing_and_is_dropped(
    tmp_path: Path, value: Any, why: str
) -> None:
    watcher, handle, machines = build(tmp_path, extra="purge_unknown: true\n")
    handle.data["spec"] = spec([entry("app")])
    await watcher.check()
    before = sorted(p.name for p in machines.iterdir())
    handle.data["spec"] = value
    result = await watcher.check()
    assert result.outcome is Outcome.ERROR
    assert why in result.detail and "dropped the specification in spec" in result.detail
    assert result.data_removed == ("spec",)
    assert sorted(p.name for p in machines.iterdir()) == before


async def test_missing_data_item_is_an_error(tmp_path: Path) -> None:
    watcher, _, _ = build(tmp_path)
    result = await watcher.check()
    assert (result.outcome, result.detail) == (Outcome.ERROR, "data item spec not present")


async def test_plugins_prefix_and_directory(tmp_path: Path) -> None:
    extra = f"manager_machine_prefix: pm\nplugins_directory: {tmp_path}/plugins\n"
    watcher, handle, machines = build(tmp_path, extra=extra)
    handle.data["spec"] = spec([entry("app")])
    assert (await watcher.check()).outcome is Outcome.SUCCESS
    text = (machines / "pm_app" / "machine.yaml").read_text()
    assert 'name: "pm_app"' in text and f'target: "{tmp_path}/plugins"' in text


async def test_machines_watcher_reads_the_machines_format(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path, "machines")
    handle.data["spec"] = spec([entry("app")], Format.MACHINES)
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS, result.detail
    assert (machines / "mm_app" / "machine.yaml").is_file()
    handle.data["spec"] = spec([entry("app")], Format.PLUGINS)  # the other format: refused
    assert (await watcher.check()).outcome is Outcome.ERROR


async def test_a_broken_match_skips_the_entry(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path)
    handle.data["spec"] = spec([entry("app", "identity("), entry("ok")])
    result = await watcher.check()
    assert result.outcome is Outcome.SUCCESS
    assert result.payload["written"] == ["ok"]
    assert any(p.startswith("app:") for p in result.payload["problems"])
    assert not (machines / "mm_app").exists()


async def test_a_new_specification_in_the_data_is_acted_on_at_once(tmp_path: Path) -> None:
    watcher, handle, machines = build(tmp_path)  # manages every 2m
    watcher.activate()
    async with asyncio.timeout(5):
        while not handle.results:  # the first run: no specification yet
            await asyncio.sleep(0.01)
    assert handle.results[-1].outcome is Outcome.ERROR
    handle.data["spec"] = spec([entry("app", 'identity("^web")')])
    watcher.data_changed(frozenset({"spec"}))  # what the machine says when the kv watcher wrote it
    async with asyncio.timeout(5):  # not 2 minutes
        while not (machines / "mm_app" / "machine.yaml").exists():
            await asyncio.sleep(0.01)
    watcher.data_changed(frozenset({"unrelated"}))
    await watcher.close()
    assert handle.results[-1].outcome is Outcome.SUCCESS


async def test_the_configs_signing_key_overrides_public_key(tmp_path: Path) -> None:
    other = bytes(range(1, 33))
    other_public = bytes(SigningKey(other).verify_key).hex()
    watcher, handle, machines = build(tmp_path)  # public_key: PUBLIC
    watcher.context = dataclasses.replace(watcher.context, signing_key=other_public)
    handle.data["spec"] = spec([entry("app")])  # signed with SEED, which PUBLIC verifies
    refused = await watcher.check()
    assert refused.outcome is Outcome.ERROR
    assert "signature does not verify" in refused.detail
    assert not (machines / "mm_app").exists()
    handle.data["spec"] = spec([entry("app")], seed=other)
    accepted = await watcher.check()
    assert accepted.outcome is Outcome.SUCCESS, accepted.detail
    assert (machines / "mm_app" / "machine.yaml").exists()
