"""Configuration of the command line: flags, then environment variables, then a TOML file.

The file is ``--config PATH``, else ``$STREAMER_CONFIG``, else ``~/.config/streamer/config.toml``
when it exists (the first two must exist). Every key is optional; an unknown key, a value of the
wrong type or an unreadable file is an error naming the file, the key and what was expected::

    log_level = "INFO"              # $STREAMER_LOG_LEVEL, --log-level
    metrics_port = 9464             # $STREAMER_METRICS_PORT, --metrics-port

    [endpoints]
    venue = "spot"                  # $STREAMER_VENUE, --venue: spot, usdm or coinm
    local = "http://127.0.0.1:8080" # $STREAMER_LOCAL, --local: the local exchange
    testnet = false                 # $STREAMER_TESTNET, --testnet (not with local)

    [credentials]
    api_key = "..."                 # $BINANCE_API_KEY
    api_secret = "..."              # $BINANCE_API_SECRET (HMAC)
    ed25519_key_file = "~/key.pem"  # $BINANCE_ED25519_KEY_FILE (wins over api_secret)

    [book]
    depth = 10                      # $STREAMER_BOOK_DEPTH, `book --depth`
    audit_interval = 60.0           # $STREAMER_AUDIT_INTERVAL, `book --audit-interval`

    [orders]
    reconcile_interval = 30.0       # $STREAMER_RECONCILE_INTERVAL, `orders --reconcile-interval`

It is applied by setting argparse defaults before parsing, so every command that has the flag
gets the value without knowing about the file. Credentials have no flags (a secret on the command
line stays in ``ps`` and the shell history): values from the file are put in the environment
variables the commands read, unless those are already set. ``streamer config show`` prints the
effective value of every key and where it came from, with secrets masked.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamer.cli_common import LOG_LEVELS, subcommands
from streamer.errors import ConfigurationError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "add_config_parser",
    "load_config",
]

CONFIG_ENV = "STREAMER_CONFIG"
DEFAULT_CONFIG = "~/.config/streamer/config.toml"


class ConfigError(ConfigurationError):
    """A bad config file or environment variable (one line: where, which key, what)."""


def _one_of(choices: Sequence[str]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"one of {', '.join(choices)}"

    return check


def _url(value: Any) -> str | None:
    return None if str(value).startswith(("http://", "https://")) else "an http(s):// URL"


def _at_least_1(value: Any) -> str | None:
    return None if value >= 1 else "an integer of at least 1"


def _port(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else "a port number, 0 to 65535"


def _positive(value: Any) -> str | None:
    return None if value > 0 and math.isfinite(value) else "a number greater than 0"


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: its TOML name, type, environment variable and argparse dest."""

    key: str  # "log_level", "book.depth": [section] name
    kind: type  # str, bool, int or float
    env: str
    dest: str | None = None  # the argparse dest it sets the default of
    commands: frozenset[str] | None = None  # only these subcommands (None: every one with dest)
    exclude: frozenset[str] = frozenset()
    top: bool = False  # the top-level parser's flag (not the subcommands')
    mask: str = ""  # "prefix": the first 4 characters; "hidden": nothing
    check: Callable[[Any], str | None] | None = None  # None if good, else what was expected
    normalize: Callable[[Any], Any] = field(default=lambda v: v)


SETTINGS: tuple[Setting, ...] = (
    Setting("log_level", str, "STREAMER_LOG_LEVEL", dest="log_level", top=True,
            check=_one_of(LOG_LEVELS), normalize=str.upper),
    Setting("metrics_port", int, "STREAMER_METRICS_PORT", dest="metrics_port", check=_port),
    Setting("endpoints.venue", str, "STREAMER_VENUE", dest="venue",
            exclude=frozenset({"exchange"}), check=_one_of(("spot", "usdm", "coinm"))),
    Setting("endpoints.local", str, "STREAMER_LOCAL", dest="local", check=_url),
    Setting("endpoints.testnet", bool, "STREAMER_TESTNET", dest="testnet"),
    Setting("credentials.api_key", str, "BINANCE_API_KEY", mask="prefix"),
    Setting("credentials.api_secret", str, "BINANCE_API_SECRET", mask="hidden"),
    Setting("credentials.ed25519_key_file", str, "BINANCE_ED25519_KEY_FILE",
            normalize=os.path.expanduser),
    Setting("book.depth", int, "STREAMER_BOOK_DEPTH", dest="depth",
            commands=frozenset({"book"}), check=_at_least_1),
    Setting("book.audit_interval", float, "STREAMER_AUDIT_INTERVAL", dest="audit_interval",
            commands=frozenset({"book"}), check=_positive),
    Setting("orders.reconcile_interval", float, "STREAMER_RECONCILE_INTERVAL",
            dest="reconcile_interval", commands=frozenset({"orders"}), check=_positive),
)  # fmt: skip

_BY_KEY = {s.key: s for s in SETTINGS}
_SECTIONS = {s.key.split(".")[0] for s in SETTINGS if "." in s.key}
#: Keys of which one layer (flag, env, file) sets at most one: the highest layer setting any wins.
_EXCLUSIVE = ("endpoints.local", "endpoints.testnet")

_KIND_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class Value:
    """A setting's value and where it came from: ``source`` is ``env`` or ``file``."""

    value: Any
    source: str


@dataclass(slots=True)
class Config:
    """What the environment and the config file set (before flags)."""

    path: Path | None  # the config file read, if any
    path_source: str  # how it was chosen: "flag", "env", "default", "none"
    values: dict[str, Value] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # the parsers' own, for `show`


# -- reading ---------------------------------------------------------------------------------


def _typed(setting: Setting, raw: Any, where: str) -> Any:
    """``raw`` checked against ``setting`` (TOML already typed it); ConfigError naming where."""
    kind = setting.kind
    ok = isinstance(raw, kind) and not (kind is not bool and isinstance(raw, bool))
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        raw, ok = float(raw), True
    if ok and kind is str and not raw:
        ok = False
    if ok:
        raw = setting.normalize(raw)
    problem = None if ok else _KIND_NAMES[kind]
    if problem is None and setting.check is not None:
        problem = setting.check(raw)
    if problem is not None:
        shown = _toml_type(raw) if setting.mask else repr(raw)
        raise ConfigError(f"{where}: expected {problem}, got {shown}")
    return raw


def _toml_type(value: Any) -> str:
    """What a value is, in TOML's words (for a secret, whose value is never shown)."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float"),
                       (str, "a string"), (list, "an array"), (dict, "a table")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return "a date or time"


def _from_env_text(setting: Setting, text: str) -> Any:
    """An environment variable's text converted to the setting's type."""
    where = f"${setting.env}"
    kind = setting.kind
    raw: Any = text
    try:
        if kind is bool:
            low = text.strip().lower()
            if low not in _TRUE + _FALSE:
                raise ValueError
            raw = low in _TRUE
        elif kind is int:
            raw = int(text)
        elif kind is float:
            raw = float(text)
    except ValueError:
        shown = "its value" if setting.mask else repr(text)
        raise ConfigError(f"{where}: expected {_KIND_NAMES[kind]}, got {shown}") from None
    return _typed(setting, raw, where)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of the TOML file at ``path`` by key, checked; ConfigError on any fault."""
    where = f"config file {path}"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not valid TOML: not UTF-8 text") from None
    found: dict[str, Any] = {}
    for name, raw in data.items():
        if name in _SECTIONS:
            if not isinstance(raw, dict):
                raise ConfigError(f"{where}: [{name}] must be a table")
            for sub, value in raw.items():
                key = f"{name}.{sub}"
                if key not in _BY_KEY:
                    known = ", ".join(k.split(".")[1] for k in _BY_KEY if k.startswith(name + "."))
                    raise ConfigError(f"{where}: unknown key {sub!r} in [{name}] (known: {known})")
                found[key] = _typed(_BY_KEY[key], value, f"{where}: [{name}] {sub}")
        elif name in _BY_KEY:
            found[name] = _typed(_BY_KEY[name], raw, f"{where}: {name}")
        else:
            known = ", ".join(sorted({k for k in _BY_KEY if "." not in k} | _SECTIONS))
            raise ConfigError(f"{where}: unknown key {name!r} (known: {known})")
    if found.get("endpoints.local") and found.get("endpoints.testnet"):
        raise ConfigError(f"{where}: set endpoints.local or endpoints.testnet, not both")
    return found


def config_path(flag: str | None, environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """Which config file to read, and why: ``--config``, ``$STREAMER_CONFIG``, the default."""
    if flag:
        return Path(flag).expanduser(), "flag"
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser(), "env"
    default = Path(DEFAULT_CONFIG).expanduser()
    return (default, "default") if default.is_file() else (None, "none")


def load_config(flag: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """The settings the environment and the config file give, the environment winning."""
    env = os.environ if environ is None else environ
    path, why = config_path(flag, env)
    config = Config(path, why)
    from_file = read_config_file(path) if path is not None else {}
    from_env: dict[str, Any] = {}
    for setting in SETTINGS:
        text = env.get(setting.env)
        if text is not None and (text or setting.kind is bool):
            from_env[setting.key] = _from_env_text(setting, text)
    if any(from_env.get(k) for k in _EXCLUSIVE):  # the environment chose where: drop the file's
        if all(from_env.get(k) for k in _EXCLUSIVE):
            raise ConfigError(f"set ${_BY_KEY[_EXCLUSIVE[0]].env} or "
                              f"${_BY_KEY[_EXCLUSIVE[1]].env}, not both")  # fmt: skip
        for key in _EXCLUSIVE:
            from_file.pop(key, None)
    for key, value in from_file.items():
        config.values[key] = Value(value, "file")
    for key, value in from_env.items():
        config.values[key] = Value(value, "env")
    return config


# -- applying --------------------------------------------------------------------------------


def _targets(
    parser: argparse.ArgumentParser, setting: Setting
) -> list[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    """The (command, parser, action) of each flag ``setting`` gives the default of."""
    if setting.dest is None:
        return []
    parsers = [("", parser)] if setting.top else list(subcommands(parser).items())
    found = []
    for path, sub in parsers:
        if setting.commands is not None and path not in setting.commands:
            continue
        if path in setting.exclude:
            continue
        for action in sub._actions:
            if action.dest == setting.dest and action.default is not argparse.SUPPRESS:
                found.append((path, sub, action))
    return found


def apply_config(
    parser: argparse.ArgumentParser,
    config: Config,
    environ: MutableMapping[str, str] | None = None,
) -> None:
    """Make ``config`` the defaults of ``parser``'s flags, and put the file's credentials in
    the environment variables the commands read (those already set win)."""
    env = os.environ if environ is None else environ
    for setting in SETTINGS:
        targets = _targets(parser, setting)
        if targets:
            config.defaults.setdefault(setting.key, targets[0][2].default)
        else:
            config.defaults.setdefault(setting.key, None)
        value = config.values.get(setting.key)
        if value is None:
            continue
        for _path, sub, action in targets:
            sub.set_defaults(**{action.dest: value.value})
        if setting.dest is None and value.source == "file":
            env.setdefault(setting.env, str(value.value))


def given_dests(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests ``argv`` sets explicitly, by parsing it again with ``parser`` (a fresh one,
    changed here) whose defaults are all suppressed."""
    for sub in [parser, *subcommands(parser).values()]:
        for action in sub._actions:
            if not isinstance(action, argparse._SubParsersAction):
                action.default = argparse.SUPPRESS
        sub._defaults.clear()
    return set(vars(parser.parse_args(argv)))


def fix_exclusive(args: argparse.Namespace, given: set[str]) -> None:
    """``--testnet`` on the command line beats a ``local`` from the file or the environment, and
    ``--local`` a ``testnet``."""
    if "testnet" in given and getattr(args, "testnet", False) and "local" not in given:
        args.local = None
    if "local" in given and hasattr(args, "testnet") and "testnet" not in given:
        args.testnet = False


# -- `streamer config show` ------------------------------------------------------------------


def mask(setting: Setting, value: Any) -> Any:
    """What may be shown of ``value``: a secret never; an API key its first 4 characters."""
    if value is None or not setting.mask:
        return value
    if setting.mask == "prefix":
        text = str(value)
        return text[:4] + "…" if len(text) > 8 else "…"
    return "<hidden>"


def effective(
    args: argparse.Namespace, config: Config, given: set[str]
) -> dict[str, dict[str, Any]]:
    """Every setting's effective value (masked) and source: flag, env, file or default."""
    shown: dict[str, dict[str, Any]] = {}
    for setting in SETTINGS:
        flags = {setting.dest}
        if setting.key in _EXCLUSIVE:  # --testnet also decides local, and --local testnet
            flags = {_BY_KEY[k].dest for k in _EXCLUSIVE}
        if setting.dest is not None and flags & given and hasattr(args, setting.dest):
            value, source = getattr(args, setting.dest), "flag"
        elif setting.key in config.values:
            found = config.values[setting.key]
            value, source = found.value, found.source
        else:
            value, source = config.defaults.get(setting.key), "default"
        shown[setting.key] = {"value": mask(setting, value), "source": source}
    return shown


def add_config_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``streamer config show``."""
    from streamer.cli_live import add_endpoint_args

    p = subparsers.add_parser(
        "config",
        help="show the effective configuration (flags > environment > config file)",
        description="Configuration comes from flags, then environment variables, then a TOML "
        f"file: --config PATH, else ${CONFIG_ENV}, else {DEFAULT_CONFIG} if it exists.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="{show}")
    show = actions.add_parser(
        "show",
        help="print every setting, its value and where it came from (secrets masked)",
        description="Print every setting's effective value and its source (flag, env, file or "
        "default); API keys show their first 4 characters, secrets never.",
        epilog=_schema_epilog(),
    )
    add_endpoint_args(show)
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.set_defaults(func=cmd_config_show)


def _schema_epilog() -> str:
    doc = __doc__ or ""
    start = doc.index("    log_level")
    end = doc.index("It is applied")
    return "the config file (TOML), with each key's environment variable and flag:\n" + (
        doc[start:end].rstrip()
    )


def cmd_config_show(args: argparse.Namespace) -> int:
    config: Config | None = getattr(args, "cli_config", None)
    given: set[str] = getattr(args, "cli_given", set())
    if config is None:  # called without main(): the environment and default file only
        config = load_config(None)
    settings = effective(args, config, given)
    path = str(config.path) if config.path is not None else None
    if args.json:
        out = {"config_file": path, "config_file_source": config.path_source, "settings": settings}
        sys.stdout.buffer.write(orjson.dumps(out) + b"\n")
        return 0
    where = {"flag": "from --config", "env": f"from ${CONFIG_ENV}", "default": "the default"}
    if path is None:
        print(f"config file: none ({DEFAULT_CONFIG} does not exist)")
    else:
        print(f"config file: {path} ({where[config.path_source]})")
    width = max(len(k) for k in settings)
    for key, entry in settings.items():
        value = entry["value"]
        if value is None:
            text = "(not set)"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        print(f"  {key:<{width}}  {text:<24}  {entry['source']}")
    return 0
