"""load_config: defaults, then steward.yaml, then STEWARD_* variables, then flags."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from steward.broker.settings import StreamLimits
from steward.daemon.config import DEFAULT_CONFIG, Config, config_path, load_config
from steward.errors import ConfigError
from steward.events.drain import DrainSettings

FILE = textwrap.dedent(
    """\
    node: web1
    machines_dir: machines
    state_dir: /srv/steward
    api:
      socket: run/steward.sock
    log:
      format: json
      level: debug
    """
)


def write(tmp_path: Path, text: str, name: str = "steward.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def config_error(path: Path | None, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, **kwargs)
    return str(caught.value)


def test_defaults() -> None:
    config = load_config(None, env={})
    assert config == Config(node=socket.gethostname())
    assert config.machines_dir == Path("/etc/steward/machines")
    assert config.state_dir == Path("/var/lib/steward")
    assert config.socket_path == Path("/var/lib/steward/steward.sock")
    assert config.database_path == Path("/var/lib/steward/steward.db")
    assert (config.log_format, config.log_level, config.source) == ("auto", "info", None)


def test_absent_default_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "steward.yaml", env={}) == load_config(None, env={})


def test_file_values_and_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    config = load_config(path, required=True, env={})
    assert config == Config(
        node="web1",
        machines_dir=tmp_path / "machines",
        state_dir=Path("/srv/steward"),
        socket=tmp_path / "run" / "steward.sock",
        log_format="json",
        log_level="debug",
        source=path,
    )
    assert config.socket_path == tmp_path / "run" / "steward.sock"
    assert config.database_path == Path("/srv/steward/steward.db")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_config(path, env={}) == Config(node=socket.gethostname(), source=path)


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    etc = tmp_path / "etc"
    etc.mkdir()
    path = write(etc, FILE)
    env = {
        "STEWARD_NODE": "web2",
        "STEWARD_MACHINES_DIR": "here/machines",
        "STEWARD_STATE_DIR": "/var/tmp/steward",
        "STEWARD_SOCKET": "/run/steward.sock",
        "STEWARD_LOG_FORMAT": "text",
        "STEWARD_LOG_LEVEL": "warning",
    }
    config = load_config(path, env=env)
    assert config == Config(
        node="web2",
        machines_dir=tmp_path / "here" / "machines",  # env: relative to the current directory
        state_dir=Path("/var/tmp/steward"),
        socket=Path("/run/steward.sock"),
        log_format="text",
        log_level="warning",
        source=path,
    )


def test_empty_env_values_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    config = load_config(path, env={"STEWARD_NODE": "", "STEWARD_LOG_LEVEL": ""})
    assert (config.node, config.log_level) == ("web1", "debug")


def test_overrides_win_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, FILE)
    env = {"STEWARD_NODE": "web2", "STEWARD_LOG_LEVEL": "warning", "STEWARD_STATE_DIR": "/a"}
    overrides = {"node": "web3", "state_dir": "state", "log_level": None}
    config = load_config(path, env=env, overrides=overrides)
    assert config.node == "web3"
    assert config.state_dir == tmp_path / "state"
    assert config.log_level == "warning"  # a None override leaves the value alone
    assert config.log_format == "json"


def test_unknown_keys_name_file_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        node: web1
        log:
          format: json
          colour: true
        nmae: web2
        """,
    )
    assert config_error(path, env={}) == (
        "invalid config:\n"
        f"{path}:4:3: log.colour: unknown field 'colour' in log (known: format, level)\n"
        f"{path}:5:1: nmae: unknown field 'nmae' "
        "(known: api, events, facts, fleet, history, log, machines_dir, metrics, nats, node, "
        "reload, signing_key, state_dir)"
    )


def test_wrong_type_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "node: [web1]\n")
    assert config_error(path, env={}) == (
        f"invalid config:\n{path}:1:7: node: must be a string, not a list"
    )


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "node: web1: x\n")
    assert config_error(path, env={}) == (
        f"invalid config: {path}:1:11: YAML: mapping values are not allowed here"
    )


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert config_error(path, required=True, env={}) == f"config file {path} does not exist"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            {"env": {"STEWARD_LOG_FORMAT": "xml"}},
            "log format must be one of auto, json, text, got 'xml'",
            id="format-env",
        ),
        pytest.param(
            {"env": {}, "overrides": {"log_format": "xml"}},
            "log format must be one of auto, json, text, got 'xml'",
            id="format-flag",
        ),
        pytest.param(
            {"env": {"STEWARD_LOG_LEVEL": "loud"}},
            "log level must be one of debug, info, warning, error, got 'loud'",
            id="level-env",
        ),
        pytest.param(
            {"env": {}, "overrides": {"node": ""}},
            "node name must not be empty",
            id="empty-node",
        ),
    ],
)
def test_bad_values(source: dict[str, Any], message: str) -> None:
    assert config_error(None, **source) == message


def test_bad_log_format_in_file_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  format: xml\n")
    assert "must be one of auto, json, text, got 'xml'" in config_error(path, env={})


def test_bad_log_format_in_file_names_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  format: xml\n")
    assert config_error(path, env={}) == (
        f"invalid config:\n{path}:2:11: log.format: must be one of auto, json, text, got 'xml'"
    )


def test_config_path() -> None:
    assert config_path("/x/steward.yaml", {"STEWARD_CONFIG": "/y"}) == (
        Path("/x/steward.yaml"),
        True,
    )
    assert config_path(None, {"STEWARD_CONFIG": "/y/steward.yaml"}) == (
        Path("/y/steward.yaml"),
        True,
    )
    assert config_path(None, {}) == (DEFAULT_CONFIG, False)


def test_reload_rescan_interval(tmp_path: Path) -> None:
    assert load_config(None, env={}).rescan_interval == 60.0
    path = write(tmp_path, "reload:\n  rescan_interval: 1m30s\n")
    assert load_config(path, env={}).rescan_interval == 90.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "reload:\n  rescan_interval: 500ms\n",
            "2:20: reload.rescan_interval: must be at least 1s",
        ),
        (
            "reload:\n  rescan_interval: 30\n",
            "2:20: reload.rescan_interval: duration 30 has no unit",
        ),
        ("reload:\n  interval: 5s\n", "2:3: reload.interval: unknown field 'interval' in reload"),
    ],
)
def test_bad_reload_settings_name_their_position(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert f"{path}:{message}" in config_error(path, env={})


def test_metrics_listen_defaults_to_loopback(tmp_path: Path) -> None:
    assert load_config(None, env={}).metrics_listen == ("127.0.0.1", 9464)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("'[::1]:0'", ("::1", 0)),
        ("localhost:9464", ("localhost", 9464)),
        ("off", None),
        ('""', None),
    ],
)
def test_metrics_listen_in_file(tmp_path: Path, text: str, expected: Any) -> None:
    path = write(tmp_path, f"metrics:\n  listen: {text}\n")
    assert load_config(path, env={}).metrics_listen == expected


def test_metrics_listen_env_and_flag(tmp_path: Path) -> None:
    path = write(tmp_path, "metrics:\n  listen: 127.0.0.1:9000\n")
    env = {"STEWARD_METRICS_LISTEN": "127.0.0.1:9001"}
    assert load_config(path, env=env).metrics_listen == ("127.0.0.1", 9001)
    config = load_config(path, env=env, overrides={"metrics_listen": "off"})
    assert config.metrics_listen is None


@pytest.mark.parametrize("text", ["9464", "127.0.0.1", ":9464", "127.0.0.1:http", "h:70000"])
def test_bad_metrics_listen_names_its_position(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, f"metrics:\n  listen: '{text}'\n")
    message = config_error(path, env={})
    assert f"{path}:2:11: metrics.listen: must be HOST:PORT" in message
    assert "must be HOST:PORT" in config_error(None, env={}, overrides={"metrics_listen": text})


def test_facts_file_from_file_env_and_flag(tmp_path: Path) -> None:
    assert load_config(None, env={}).facts is None
    cfg = write(tmp_path, "facts: facts.yaml\n")
    assert load_config(cfg, env={}).facts == tmp_path / "facts.yaml"  # beside the config
    env = {"STEWARD_FACTS": "/etc/facts.json"}
    assert load_config(cfg, env=env).facts == Path("/etc/facts.json")
    flag = load_config(cfg, env=env, overrides={"facts": "rel.json"}).facts
    assert flag == Path.cwd() / "rel.json"


def test_facts_must_be_a_path_string(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, "facts: [a.json]\n"))
    assert "steward.yaml:1:8: facts: must be a string, not a list" in message


def test_signing_key_from_file_and_env_and_checked(tmp_path: Path) -> None:
    key = "ab" * 32
    assert load_config(None, env={}).signing_key is None
    cfg = write(tmp_path, f"signing_key: {key}\n")
    assert load_config(cfg, env={}).signing_key == key
    assert load_config(cfg, env={"STEWARD_SIGNING_KEY": "cd" * 32}).signing_key == "cd" * 32
    message = config_error(write(tmp_path, "signing_key: nothex\n"), env={})
    assert "signing_key must be an ed25519 public key in hex (64 digits)" in message


def test_fleet_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fleet:
          bucket: FLEET_A
          heartbeat: 10s
          forget_after: 1d
          replicas: 3
        """,
    )
    fleet = load_config(path, env={}).fleet
    assert (fleet.enabled, fleet.bucket, fleet.heartbeat, fleet.forget_after, fleet.replicas) == (
        True,
        "FLEET_A",
        10.0,
        86400.0,
        3,
    )
    assert load_config(None, env={}).fleet.heartbeat == 30.0


def test_fleet_replicas_follow_nats_replicas_unless_set(tmp_path: Path) -> None:
    assert load_config(None, env={}).fleet_settings.replicas == 1
    path = write(tmp_path, "nats:\n  servers: nats://a:4222\n  replicas: 3\n")
    config = load_config(path, env={})
    assert config.nats.replicas == 3 and config.fleet_settings.replicas == 3
    path = write(tmp_path, "nats:\n  replicas: 3\nfleet:\n  replicas: 1\n")
    assert load_config(path, env={}).fleet_settings.replicas == 1


def test_nats_cluster_keys(tmp_path: Path) -> None:
    default = load_config(None, env={}).nats
    assert (default.replicas, default.reconnect_wait, default.reconnect_jitter) == (1, 1.0, 1.0)
    assert default.reconnect_max_wait == 20.0
    assert default.limits == StreamLimits()
    assert (default.limits.max_age, default.limits.duplicate_window) == (7 * 86400.0, 120.0)
    path = write(
        tmp_path,
        """\
        nats:
          servers: [nats://n1:4222, nats://n2:4222, nats://n3:4222]
          stream: EVENTS
          replicas: 3
          reconnect_wait: 2s
          reconnect_jitter: 500ms
          reconnect_max_wait: 1m
          max_age: 30d
          max_bytes: 1073741824
          max_msgs_per_subject: -1
          duplicate_window: 10m
        """,
    )
    nats = load_config(path, env={}).nats
    assert nats.servers == ("nats://n1:4222", "nats://n2:4222", "nats://n3:4222")
    assert (nats.replicas, nats.reconnect_wait, nats.reconnect_jitter) == (3, 2.0, 0.5)
    assert nats.reconnect_max_wait == 60.0
    assert nats.limits == StreamLimits(
        max_age=30 * 86400.0,
        max_bytes=1024**3,
        max_msgs_per_subject=-1,
        duplicate_window=600.0,
    )


def test_nats_cluster_key_errors_name_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nats:\n  replicas: 7\n  max_age: forever\n  duplicate_window: 0s\n  max_bytes: -5\n",
    )
    message = config_error(path, env={})
    assert "nats.replicas" in message and "at most 5" in message
    assert "nats.max_age" in message
    assert "nats.duplicate_window" in message and "at least 1s" in message
    assert "nats.max_bytes" in message


def test_fleet_section_errors_name_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "fleet:\n  bucket: a.b\n  heartbeat: soon\n  extra: 1\n")
    message = config_error(path, env={})
    assert "fleet.bucket" in message and "not a valid KV bucket name" in message
    assert "fleet.heartbeat" in message
    assert "extra" in message


def test_history_keep(tmp_path: Path) -> None:
    assert load_config(None, env={}).history_keep == 100
    path = write(tmp_path, "history:\n  keep: 500\n")
    assert load_config(path, env={}).history_keep == 500


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("history:\n  keep: 0\n", "2:9: history.keep: must be at least 1, got 0"),
        ("history:\n  keep: lots\n", "2:9: history.keep: must be an integer"),
        ("history:\n  max: 5\n", "2:3: history.max: unknown field 'max' in history"),
    ],
)
def test_bad_history_settings_name_their_position(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert f"{path}:{message}" in config_error(path, env={})


def test_events_drain_rate_and_jitter(tmp_path: Path) -> None:
    default = load_config(None, env={}).drain
    assert (default.rate, default.jitter) == (200, 5.0)
    path = write(tmp_path, "events:\n  drain_rate: 50\n  drain_jitter: 30s\n")
    assert load_config(path, env={}).drain == DrainSettings(50, 30.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events:\n  drain_rate: 0\n", "2:15: events.drain_rate: must be at least 1, got 0"),
        ("events:\n  drain_jitter: soon\n", "2:17: events.drain_jitter:"),
    ],
)
def test_bad_drain_settings_name_their_position(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert f"{path}:{message}" in config_error(path, env={})
