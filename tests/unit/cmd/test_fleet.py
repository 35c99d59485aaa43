"""steward fleet keygen | pack | verify, end to end through the command line."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from steward.fleet.spec import Format, decode
from tests.support.cli import invoke


def run(*args: str) -> tuple[int, str]:
    result = invoke("fleet", *args)
    return result.exit_code, result.output


def test_keygen_pack_verify(tmp_path: Path) -> None:
    code, out = run("keygen", str(tmp_path / "keys"))
    assert code == 0, out
    seed, public = tmp_path / "keys" / "fleet.seed", tmp_path / "keys" / "fleet.public"
    assert seed.stat().st_mode & 0o777 == 0o600
    assert run("keygen", str(tmp_path / "keys"))[0] == 1  # never overwrites

    machines = tmp_path / "src"
    (machines / "app").mkdir(parents=True)
    (machines / "app" / "machine.yaml").write_text("name: app\n")
    spec_file = tmp_path / "out" / "spec.json"
    spec_file.parent.mkdir()
    code, out = run(
        "pack", str(machines), "--key", str(seed), "--source-url", "nats-object://A/",
        "--match", 'app=identity("^web")', "-o", str(spec_file),
    )  # fmt: skip
    assert code == 0, out
    spec = decode(spec_file.read_bytes(), Format.PLUGINS)
    [entry] = spec.entries()
    assert entry.source == "nats-object://A/app.tar.gz" and entry.match == 'identity("^web")'
    with tarfile.open(tmp_path / "out" / "app.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["app/SHA256SUMS", "app/machine.yaml"]

    web, db = tmp_path / "web.json", tmp_path / "db.json"
    web.write_text("{}")
    db.write_text("{}")
    code, out = run(
        "verify", str(spec_file), "--public-key", str(public), "--identity", "web1", "--json",
        "--facts", str(web),
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["entries"][0]["matched"] is True

    other = tmp_path / "other"
    run("keygen", str(other))
    code, out = run("verify", str(spec_file), "--public-key", str(other / "fleet.public"))
    assert code == 1 and "does not verify" in out


def test_pack_refuses_a_readable_private_key(tmp_path: Path) -> None:
    run("keygen", str(tmp_path / "k"))
    seed = tmp_path / "k" / "fleet.seed"
    seed.chmod(0o640)
    listing = tmp_path / "list.json"
    listing.write_text("[]")
    code, out = run("pack", str(listing), "--key", str(seed))
    assert code == 1 and "accessible by group or others" in out


def test_pack_sets_each_entrys_governor(tmp_path: Path) -> None:
    run("keygen", str(tmp_path / "keys"))
    machines = tmp_path / "src"
    for name in ("app", "db", "web"):
        (machines / name).mkdir(parents=True)
        (machines / name / "machine.yaml").write_text(f"name: {name}\n")
    spec_file = tmp_path / "spec.json"
    code, out = run(
        "pack", str(machines), "--key", str(tmp_path / "keys" / "fleet.seed"),
        "--governor", "app=canary", "--governor", "*=rollout", "-o", str(spec_file),
    )  # fmt: skip
    assert code == 0, out
    governors = {
        e.name: e.governor for e in decode(spec_file.read_bytes(), Format.PLUGINS).entries()
    }
    assert governors == {"app": "canary", "db": "rollout", "web": "rollout"}
    code, out = run("pack", str(machines), "--governor", "nameless", "-o", str(spec_file))
    assert code != 0 and "use NAME=VALUE" in out
