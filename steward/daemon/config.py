"""The daemon's configuration: ``steward.yaml``, then ``STEWARD_*`` variables, then flags.

``Config`` only stores values; ``load_config`` does the reading. Relative paths in the file
resolve against the file's directory; relative paths from flags and the environment against
the current directory.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, SpecError
from steward.machine.source import Fields, Problems, load_yaml
from steward.settings import (
    BUCKET_RE,
    DEFAULT_HISTORY_KEEP,
    DrainSettings,
    FleetSettings,
    NatsSettings,
    OutboxLimits,
    StreamLimits,
)

DEFAULT_CONFIG = Path("/etc/steward/steward.yaml")
DEFAULT_MACHINES_DIR = Path("/etc/steward/machines")
DEFAULT_STATE_DIR = Path("/var/lib/steward")
SOCKET_NAME = "steward.sock"
DEFAULT_RESCAN_INTERVAL = 60.0  # seconds: the full rescan that backs up inotify
MIN_RESCAN_INTERVAL = 1.0
LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
EVENT_FORMATS = ("steward", "choria")
SUBJECT_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
DEFAULT_METRICS_LISTEN = ("127.0.0.1", 9464)  # Prometheus, loopback only unless configured
METRICS_OFF = ("", "off")


@dataclass(frozen=True)
class Config:
    node: str = field(default_factory=socket.gethostname)
    machines_dir: Path = DEFAULT_MACHINES_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    socket: Path | None = None  # default: <state_dir>/steward.sock
    log_format: str = "auto"
    log_level: str = "info"
    insecure_permissions: bool = False  # development only: accept machine files others can write
    nats: NatsSettings = field(default_factory=NatsSettings)  # no servers: outbox only
    events_format: str = "steward"  # steward | choria
    events_prefix: str = "steward.events"
    outbox: OutboxLimits = field(default_factory=OutboxLimits)
    drain: DrainSettings = field(default_factory=DrainSettings)  # events.drain_rate, drain_jitter
    fleet: FleetSettings = field(default_factory=FleetSettings)  # the fleet KV (with NATS)
    history_keep: int = DEFAULT_HISTORY_KEEP  # history.keep: transitions kept per machine
    rescan_interval: float = DEFAULT_RESCAN_INTERVAL  # reload.rescan_interval
    metrics_listen: tuple[str, int] | None = DEFAULT_METRICS_LISTEN  # None: no metrics endpoint
    facts: Path | None = None  # the node's facts (JSON, or YAML by suffix); Choria's plugin.yaml
    # hex ed25519 public key every machines/plugins watcher verifies specifications with,
    # overriding their public_key (Choria's plugin.choria.machine.signing_key)
    signing_key: str | None = None
    source: Path | None = None  # the file this came from, if any

    @property
    def socket_path(self) -> Path:
        return self.socket if self.socket is not None else self.state_dir / SOCKET_NAME

    @property
    def database_path(self) -> Path:
        return self.state_dir / "steward.db"

    @property
    def fleet_settings(self) -> FleetSettings:
        """``fleet:`` with its replicas resolved (``fleet.replicas``, else ``nats.replicas``)."""
        if self.fleet.replicas is not None:
            return self.fleet
        return replace(self.fleet, replicas=self.nats.replicas)


def config_path(explicit: str | None, env: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file to read and whether it must exist (it must if it was named)."""
    if explicit:
        return Path(explicit), True
    if env.get("STEWARD_CONFIG"):
        return Path(env["STEWARD_CONFIG"]), True
    return DEFAULT_CONFIG, False


def load_config(
    path: Path | None,
    *,
    required: bool = False,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the file (if any), then apply ``STEWARD_*`` env, then non-None ``overrides``."""
    env = os.environ if env is None else env
    config = Config()
    if path is not None:
        if path.is_file():
            config = _read_file(path)
        elif required:
            raise ConfigError(f"config file {path} does not exist")
    config = _apply(config, _from_env(env), Path.cwd())
    config = _apply(
        config, {k: v for k, v in (overrides or {}).items() if v is not None}, Path.cwd()
    )
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"log format must be one of {', '.join(LOG_FORMATS)}, got {config.log_format!r}"
        )
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"log level must be one of {', '.join(LOG_LEVELS)}, got {config.log_level!r}"
        )
    if not config.node:
        raise ConfigError("node name must not be empty")
    return config


def parse_listen(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; port 0 picks a free one), or None for ``off``
    or empty. ValueError says what is wrong."""
    text = text.strip()
    if text.lower() in METRICS_OFF:
        return None
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be HOST:PORT (e.g. 127.0.0.1:9464) or off, got {text!r}")
    return host, int(port)


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    keys = {
        "STEWARD_NODE": "node",
        "STEWARD_MACHINES_DIR": "machines_dir",
        "STEWARD_STATE_DIR": "state_dir",
        "STEWARD_SOCKET": "socket",
        "STEWARD_LOG_FORMAT": "log_format",
        "STEWARD_LOG_LEVEL": "log_level",
        "STEWARD_NATS_SERVERS": "nats_servers",
        "STEWARD_NATS_STREAM": "nats_stream",
        "STEWARD_NATS_CREDENTIALS": "nats_credentials",
        "STEWARD_METRICS_LISTEN": "metrics_listen",
        "STEWARD_FACTS": "facts",
        "STEWARD_SIGNING_KEY": "signing_key",
    }
    out: dict[str, Any] = {field: env[var] for var, field in keys.items() if env.get(var)}
    if "nats_servers" in out:
        out["nats_servers"] = tuple(x.strip() for x in out["nats_servers"].split(",") if x.strip())
    return out


def _apply(config: Config, values: Mapping[str, Any], base: Path) -> Config:
    changes: dict[str, Any] = {}
    nats: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith("nats_"):
            field_name = key.removeprefix("nats_")
            if field_name in ("credentials", "nkey", "tls_ca", "tls_cert", "tls_key"):
                p = Path(value).expanduser()
                value = str(p if p.is_absolute() else base / p)
            nats[field_name] = tuple(value) if field_name == "servers" else value
        elif key == "metrics_listen":
            try:
                changes[key] = parse_listen(value)
            except ValueError as exc:
                raise ConfigError(f"metrics listen address {exc}") from None
        elif key == "signing_key":
            changes[key] = _signing_key(value)
        elif key in ("machines_dir", "state_dir", "socket", "facts"):
            p = Path(value).expanduser()
            changes[key] = p if p.is_absolute() else base / p
        else:
            changes[key] = value
    if nats:
        changes["nats"] = replace(config.nats, **nats)
    return replace(config, **changes)


def _read_file(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    problems = Problems(str(path))
    try:
        data = load_yaml(text, str(path))
    except SpecError as exc:
        raise ConfigError(f"invalid config: {exc}") from exc
    doc = Fields.document(data, problems) if data is not None else None
    values: dict[str, Any] = {}
    if doc is not None:
        for key in ("node", "machines_dir", "state_dir", "facts", "signing_key"):
            value = doc.string(key)
            if value is not None:
                values[key] = value
        api = doc.mapping("api")
        if api is not None:
            sock = api.string("socket")
            if sock is not None:
                values["socket"] = sock
            api.finish(" in api")
        logs = doc.mapping("log")
        if logs is not None:
            for key, target, allowed in (
                ("format", "log_format", LOG_FORMATS),
                ("level", "log_level", LOG_LEVELS),
            ):
                value = logs.choice(key, allowed)
                if value is not None:
                    values[target] = value
            logs.finish(" in log")
        _read_nats(doc, values)
        _read_events(doc, values)
        _read_reload(doc, values)
        _read_metrics(doc, values)
        _read_fleet(doc, values)
        _read_history(doc, values)
        doc.finish()
    if problems.has_errors:
        raise ConfigError("invalid config:\n" + "\n".join(str(p) for p in problems.items))
    return replace(_apply(Config(), values, path.parent), source=path)


def _read_nats(doc: Fields, values: dict[str, Any]) -> None:
    nats = doc.mapping("nats")
    if nats is None:
        return
    raw = nats.raw("servers")
    if isinstance(raw, str):
        values["nats_servers"] = tuple(x.strip() for x in raw.split(",") if x.strip())
    elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        values["nats_servers"] = tuple(raw)
    elif raw is not None:
        nats.error("servers", "must be a URL or a list of URLs, e.g. [nats://127.0.0.1:4222]")
    for key in ("stream", "credentials", "nkey", "user", "password", "token"):
        value = nats.string(key)
        if value is not None:
            values[f"nats_{key}"] = value
    default = NatsSettings()
    if nats.has("replicas"):
        values["nats_replicas"] = nats.integer("replicas", 1, minimum=1, maximum=5)
    for key in ("reconnect_wait", "reconnect_jitter", "reconnect_max_wait"):
        seconds = nats.duration(key, maximum=600.0)
        if seconds is not None:
            values[f"nats_{key}"] = seconds
    limits = _read_stream_limits(nats, default.limits)
    if limits != default.limits:
        values["nats_limits"] = limits
    tls = nats.mapping("tls")
    if tls is not None:
        for key in ("ca", "cert", "key"):
            value = tls.string(key)
            if value is not None:
                values[f"nats_tls_{key}"] = value
        tls.finish(" in nats.tls")
    nats.finish(" in nats")


def _read_stream_limits(nats: Fields, default: StreamLimits) -> StreamLimits:
    """``nats.max_age`` … : the events stream's limits, when steward creates it."""
    max_age = nats.duration("max_age")
    window = nats.duration("duplicate_window", minimum=1.0, minimum_text="1s")
    return StreamLimits(
        max_age=default.max_age if max_age is None else max_age,
        max_bytes=nats.integer("max_bytes", default.max_bytes, minimum=-1),
        max_msgs_per_subject=nats.integer(
            "max_msgs_per_subject", default.max_msgs_per_subject, minimum=-1
        ),
        duplicate_window=default.duplicate_window if window is None else window,
    )


def _read_events(doc: Fields, values: dict[str, Any]) -> None:
    events = doc.mapping("events")
    if events is None:
        return
    fmt = events.choice("format", EVENT_FORMATS)
    if fmt is not None:
        values["events_format"] = fmt
    prefix = events.string("subject_prefix")
    if prefix is not None and not SUBJECT_PREFIX_RE.match(prefix):
        events.error("subject_prefix", f"not a valid NATS subject prefix: {prefix!r}")
    elif prefix is not None:
        values["events_prefix"] = prefix
    outbox = events.mapping("outbox")
    if outbox is not None:
        default = OutboxLimits()
        values["outbox"] = OutboxLimits(
            max_events=outbox.integer("max_events", default.max_events, minimum=1),
            max_bytes=outbox.integer("max_bytes", default.max_bytes, minimum=1024),
        )
        outbox.finish(" in events.outbox")
    default_drain = DrainSettings()
    rate = events.integer("drain_rate", default_drain.rate, minimum=1)
    jitter = events.duration("drain_jitter", maximum=3600.0)
    values["drain"] = DrainSettings(rate, default_drain.jitter if jitter is None else jitter)
    events.finish(" in events")


def _read_reload(doc: Fields, values: dict[str, Any]) -> None:
    reload = doc.mapping("reload")
    if reload is None:
        return
    interval = reload.duration(
        "rescan_interval", minimum=MIN_RESCAN_INTERVAL, minimum_text=f"{MIN_RESCAN_INTERVAL:g}s"
    )
    if interval is not None:
        values["rescan_interval"] = interval
    reload.finish(" in reload")


def _read_metrics(doc: Fields, values: dict[str, Any]) -> None:
    metrics = doc.mapping("metrics")
    if metrics is None:
        return
    listen = metrics.string("listen", non_empty=False)  # "" or off: no endpoint
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as exc:
            metrics.error("listen", str(exc))
        else:
            values["metrics_listen"] = listen
    metrics.finish(" in metrics")


def _read_fleet(doc: Fields, values: dict[str, Any]) -> None:
    fleet = doc.mapping("fleet")
    if fleet is None:
        return
    default = FleetSettings()
    bucket = fleet.string("bucket")
    if bucket is not None and not BUCKET_RE.match(bucket):
        fleet.error("bucket", f"not a valid KV bucket name (letters, digits, _ and -): {bucket!r}")
        bucket = None
    heartbeat = fleet.duration("heartbeat", minimum=0.1, minimum_text="0.1s")
    forget_after = fleet.duration("forget_after")
    values["fleet"] = FleetSettings(
        enabled=fleet.boolean("enabled", default.enabled),
        bucket=bucket or default.bucket,
        heartbeat=heartbeat if heartbeat is not None else default.heartbeat,
        forget_after=forget_after if forget_after is not None else default.forget_after,
        replicas=fleet.integer("replicas", 1, minimum=1, maximum=5)
        if fleet.has("replicas")
        else None,
    )
    fleet.finish(" in fleet")


def _read_history(doc: Fields, values: dict[str, Any]) -> None:
    history = doc.mapping("history")
    if history is None:
        return
    values["history_keep"] = history.integer("keep", DEFAULT_HISTORY_KEEP, minimum=1)
    history.finish(" in history")


def _signing_key(value: str) -> str:
    """A hex ed25519 public key; ConfigError otherwise."""
    key = value.strip()
    try:
        if len(bytes.fromhex(key)) == 32:
            return key
    except ValueError:
        pass
    raise ConfigError(
        f"signing_key must be an ed25519 public key in hex (64 digits), got {value!r}"
    )
