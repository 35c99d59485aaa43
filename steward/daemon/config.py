"""The daemon's configuration: ``steward.yaml``, then ``STEWARD_*`` variables, then flags.

``Config`` only stores values; ``load_config`` does the reading. Relative paths in the file
resolve against the file's directory; relative paths from flags and the environment against
the current directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steward.errors import ConfigError, SpecError
from steward.machine.source import Fields, Problems, load_yaml

DEFAULT_CONFIG = Path("/etc/steward/steward.yaml")
DEFAULT_MACHINES_DIR = Path("/etc/steward/machines")
DEFAULT_STATE_DIR = Path("/var/lib/steward")
SOCKET_NAME = "steward.sock"
LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Config:
    node: str = field(default_factory=socket.gethostname)
    machines_dir: Path = DEFAULT_MACHINES_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    socket: Path | None = None  # default: <state_dir>/steward.sock
    log_format: str = "auto"
    log_level: str = "info"
    insecure_permissions: bool = False  # development only: accept machine files others can write
    source: Path | None = None  # the file this came from, if any

    @property
    def socket_path(self) -> Path:
        return self.socket if self.socket is not None else self.state_dir / SOCKET_NAME

    @property
    def database_path(self) -> Path:
        return self.state_dir / "steward.db"


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


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    keys = {
        "STEWARD_NODE": "node",
        "STEWARD_MACHINES_DIR": "machines_dir",
        "STEWARD_STATE_DIR": "state_dir",
        "STEWARD_SOCKET": "socket",
        "STEWARD_LOG_FORMAT": "log_format",
        "STEWARD_LOG_LEVEL": "log_level",
    }
    return {field: env[var] for var, field in keys.items() if env.get(var)}


def _apply(config: Config, values: Mapping[str, Any], base: Path) -> Config:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("machines_dir", "state_dir", "socket"):
            p = Path(value).expanduser()
            changes[key] = p if p.is_absolute() else base / p
        else:
            changes[key] = value
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
        for key in ("node", "machines_dir", "state_dir"):
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
                value = logs.string(key)
                if value is not None and value not in allowed:
                    logs.error(key, f"must be one of {', '.join(allowed)}, got {value!r}")
                elif value is not None:
                    values[target] = value
            logs.finish(" in log")
        doc.finish()
    if problems.has_errors:
        raise ConfigError("invalid config:\n" + "\n".join(str(p) for p in problems.items))
    return replace(_apply(Config(), values, path.parent), source=path)
