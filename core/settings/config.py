"""Settings from config.toml (+ the machine-owned ui-state.toml), and credentials from the env.

Why strict: a trader who misspells ``venue`` must not silently end up trading somewhere else, so
every unknown key, wrong type or bad value is a ``ConfigError`` whose one-line message names the
file, the key and what was expected (with a close-match suggestion for typos). Credentials are
read from environment variables only, so config.toml can be shared and committed safely.
config.toml is read, never written: tomli-w would drop the user's comments and ordering.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import re
import socket
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.settings.demo import DEMO_KEY, DEMO_PASSPHRASE, DEMO_SECRET
from core.store.connect import url_problem
from core.strategies import NAMES as STRATEGY_NAMES
from core.support.errors import PerpdeskError
from core.venue.registry import VENUES, venue_names

DEFAULT_CONFIG = Path("config.toml")
SUPPORTED_VENUES = venue_names()  # the list itself lives in core.venue.registry
STRATEGIES = STRATEGY_NAMES  # the list itself lives in core.strategies
MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
ENV_KEY, ENV_SECRET, ENV_PASSPHRASE = "PERPDESK_API_KEY", "PERPDESK_API_SECRET", "PERPDESK_API_PASSPHRASE"
SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+$")
# Key names that look like a credential: refused in config.toml and ui-state.toml alike.
SECRET_KEY_RE = re.compile(r"(?i)(^|[_-])(api[_-]?key|key|secret|passphrase|password|token)($|[_-])")


class ConfigError(PerpdeskError):
    """A configuration or credential problem the user can fix; ``message`` is one plain line."""


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    venue: str = "sim"
    sandbox: bool = False
    url: str | None = None
    symbols: tuple[str, ...] = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")


@dataclass(frozen=True, slots=True)
class SimSettings:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = an ephemeral port chosen by the OS
    speed: float = 1.0
    seed: int = 7
    funding_interval_s: float = 120.0
    protocol: str = "okx"  # the face `perpdesk sim` shows: "okx" (OKX v5) or "bybit" (Bybit v5)


@dataclass(frozen=True, slots=True)
class JournalSettings:
    dir: Path = Path("journal")


@dataclass(frozen=True, slots=True)
class LogSettings:
    dir: Path = Path("logs")
    level: str = "INFO"
    retention_days: int = 14


@dataclass(frozen=True, slots=True)
class UISettings:
    theme: str = "perpdesk-dark"
    read_only: bool = False
    refresh_hz: float = 30.0
    layout: str = "default"  # pane layout name, owned by the console
    sort: dict[str, str] = field(default_factory=dict)  # pane -> column ("-col" = descending)
    # what a lost terminal (SIGHUP) does: "stop" like q, or "headless" (the engine keeps going)
    on_hangup: str = "stop"


@dataclass(frozen=True, slots=True)
class StrategySettings:
    """A built-in by ``name``, or the trader's own class: ``path`` (a .py file, resolved against
    config.toml's folder) or ``module`` ("pkg.mod:Class"); at most one of the three is given."""

    name: str = "none"
    params: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    module: str | None = None
    max_callback_s: float = 5.0  # float ok: a callback running longer (engine commands excluded) stops it

    @property
    def label(self) -> str:
        """How the strategy is named to the trader (headless banner, log)."""
        if self.path is not None:
            return self.path.name
        return self.module if self.module is not None else self.name


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """[risk]: every limit optional (None = no limit). Money in the settle currency (USDT).

    ``daily_loss_limit`` is the loss (a positive number) at which trading halts; ``max_drawdown``
    is measured from the day's peak of the same net PnL; the day starts at ``day_start`` UTC.
    """

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None  # per symbol
    max_total_notional: Decimal | None = None
    max_open_positions: int | None = None
    max_orders_per_minute: int | None = None
    daily_loss_limit: Decimal | None = None
    max_drawdown: Decimal | None = None
    day_start: time = time(0, 0)
    flatten_on_halt: bool = False


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """[engine] name: how this engine's rows and status are labelled in the store ("" = the
    host name and the journal folder, unique per engine on a machine)."""

    name: str = ""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """[store]: the optional PostgreSQL copy of the journal (core/store). ``url`` is the engine's
    (insert-only role); ``read_url`` is for `perpdesk accounts`, `report --store` and the Accounts
    screen (read-only role; default ``url``). Passwords never here: PGPASSWORD or ~/.pgpass."""

    url: str | None = None
    read_url: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    sim: SimSettings = field(default_factory=SimSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    logs: LogSettings = field(default_factory=LogSettings)
    ui: UISettings = field(default_factory=UISettings)
    strategy: StrategySettings = field(default_factory=StrategySettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> key
    config_path: Path = DEFAULT_CONFIG
    engine: EngineSettings = field(default_factory=EngineSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    @property
    def engine_name(self) -> str:
        """[engine] name, or host + journal folder when it is not set."""
        return self.engine.name or f"{socket.gethostname()}:{self.journal.dir.resolve()}"


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    api_key: str
    secret: str
    passphrase: str

    def __repr__(self) -> str:
        """Redacted so that a stray log line or traceback never carries the secret."""
        return f"Credentials(api_key='{_mask(self.api_key)}', secret='***', passphrase='***')"

    __str__ = __repr__


SIM_DEMO_CREDENTIALS = Credentials(DEMO_KEY, DEMO_SECRET, DEMO_PASSPHRASE)


def _mask(value: str) -> str:
    return value[:4] + "***" if len(value) >= 12 else "***"


# ---------------------------------------------------------------- value checks


def show(value: Any) -> str:
    """A value as the user wrote it in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


class _Section:
    """Validates one TOML table; every error names the file, the section and the key."""

    def __init__(self, file: str, name: str, table: Any, allowed: tuple[str, ...]) -> None:
        self.file, self.name = file, name
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: [{name}] must be a table, got {show(table)}")
        self.table = table
        for key in table:
            if SECRET_KEY_RE.search(key):
                raise ConfigError(
                    f'{file}: [{name}] "{key}" is not allowed here — credentials come only from the '
                    f"environment variables {ENV_KEY}, {ENV_SECRET}, {ENV_PASSPHRASE}"
                )
            if key not in allowed:
                raise ConfigError(f'{file}: unknown key [{name}] "{key}"{suggest(key, allowed, quote=True)}')

    def fail(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"{self.file}: [{self.name}] {key} must be {expected}, got {show(self.table[key])}")

    def text(self, key: str, default: str, check: Callable[[str], bool] | None = None,
            expected: str = "a string") -> str:
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, str) or not value.strip() or (check is not None and not check(value)):
            raise self.fail(key, expected)
        return value

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.table:
            return default
        if not isinstance(self.table[key], bool):
            raise self.fail(key, "true or false")
        return bool(self.table[key])

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int) or (lo is not None and value < lo) or (
            hi is not None and value > hi
        ):
            raise self.fail(key, _range("an integer", lo, hi))
        return value

    def number(self, key: str, default: float, positive: bool = False, hi: float | None = None,
               zero_ok: bool = False) -> float:
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, "a number")
        low_ok = value >= 0 if zero_ok else value > 0
        if (positive and not low_ok) or (hi is not None and value > hi) or value != value:
            low = ">= 0" if zero_ok else "> 0"
            raise self.fail(key, f"a number {low}" + ("" if hi is None else f" and <= {hi:g}"))
        return float(value)  # float ok: a setting such as speed or refresh rate, not money

    def table_of_str(self, key: str) -> dict[str, str]:
        value = self.table.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise self.fail(key, 'a table of strings (e.g. positions = "symbol")')
        return dict(value)


def _range(kind: str, lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    return f"{kind} >= {lo}" if lo is not None else kind


def suggest(word: str, choices: tuple[str, ...] | list[str], *, quote: bool = False, brackets: bool = False) -> str:
    """A hint for a mistyped name: " — did you mean X?", else the names it may be."""
    def fmt(s: str) -> str:
        return f'"{s}"' if quote else f"[{s}]" if brackets else s

    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f" — did you mean {fmt(close[0])}?"
    return " — expected one of: " + ", ".join(fmt(c) for c in choices)


# ---------------------------------------------------------------- sections

_SECTIONS = ("exchange", "sim", "journal", "logs", "ui", "strategy", "risk", "keymap", "engine", "store")
UI_KEYS = ("theme", "read_only", "refresh_hz", "layout", "sort", "on_hangup")
ON_HANGUP = ("stop", "headless")


def _venue_ok(file: str, venue: str) -> str:
    if venue in SUPPORTED_VENUES:
        return venue
    import ccxt  # only on this error path: importing ccxt costs most of a second

    supported = ", ".join(f'"{v}"' for v in SUPPORTED_VENUES)
    if venue in ccxt.exchanges:
        raise ConfigError(f'{file}: [exchange] venue "{venue}" is not supported yet — supported: {supported}')
    raise ConfigError(
        f'{file}: [exchange] venue must be one of {supported}, got "{venue}"'
        + (f' — did you mean "{m[0]}"?' if (m := difflib.get_close_matches(venue, list(SUPPORTED_VENUES), n=1)) else "")
    )


def _exchange(file: str, raw: Any) -> ExchangeSettings:
    s = _Section(file, "exchange", raw, ("venue", "sandbox", "url", "symbols"))
    d = ExchangeSettings()
    venue = _venue_ok(file, s.text("venue", d.venue, expected='"sim" or a ccxt exchange id such as "okx"'))
    url = s.text("url", "", lambda u: re.match(r"^https?://[^\s/]+", u) is not None,
                'an http:// or https:// base URL such as "http://127.0.0.1:8765"') or None
    symbols = d.symbols
    if "symbols" in s.table:
        value = s.table["symbols"]
        if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
            raise s.fail("symbols", 'a non-empty array of strings like ["BTC/USDT:USDT"]')
        for sym in value:
            if not SYMBOL_RE.match(sym):
                hint = f' — did you mean "{sym.upper()}"?' if SYMBOL_RE.match(sym.upper()) else ""
                raise ConfigError(
                    f'{file}: [exchange] symbols entry "{sym}" must look like BASE/QUOTE:SETTLE '
                    f'(e.g. "BTC/USDT:USDT"){hint}'
                )
        dupes = sorted({x for x in value if value.count(x) > 1})
        if dupes:
            raise ConfigError(f'{file}: [exchange] symbols lists "{dupes[0]}" more than once')
        symbols = tuple(value)
    return ExchangeSettings(venue=venue, sandbox=s.flag("sandbox", d.sandbox), url=url, symbols=symbols)


def _sim(file: str, raw: Any) -> SimSettings:
    s = _Section(file, "sim", raw, ("host", "port", "speed", "seed", "funding_interval_s", "protocol"))
    d = SimSettings()
    return SimSettings(
        host=s.text("host", d.host, expected='a host name or address such as "127.0.0.1"'),
        port=s.integer("port", d.port, 0, 65535),
        # 0 freezes the market, as `perpdesk sim --speed 0` does
        speed=s.number("speed", d.speed, positive=True, hi=1000, zero_ok=True),
        seed=s.integer("seed", d.seed),
        funding_interval_s=s.number("funding_interval_s", d.funding_interval_s, positive=True),
        protocol=s.text("protocol", d.protocol, lambda v: v in ("okx", "bybit"), expected='"okx" or "bybit"'),
    )


def _store(file: str, raw: Any) -> StoreSettings:
    s = _Section(file, "store", raw, ("url", "read_url"))
    urls = [s.text(key, "", expected="a PostgreSQL URL such as \"postgresql://perpdesk_writer@localhost/perpdesk\"")
            for key in ("url", "read_url")]
    for key, url in zip(("url", "read_url"), urls, strict=True):
        problem = url_problem(url) if url else None
        if problem is not None:
            raise ConfigError(f"{file}: [store] {key} {problem}")
    return StoreSettings(url=urls[0] or None, read_url=urls[1] or None)


def _engine(file: str, raw: Any) -> EngineSettings:
    s = _Section(file, "engine", raw, ("name",))
    return EngineSettings(name=s.text("name", "", expected="a non-empty name").strip())


def _dir(s: _Section, key: str, default: Path, base: Path) -> Path:
    path = Path(s.text(key, str(default), expected="a directory path"))
    return path if path.is_absolute() else base / path


def _ui(file: str, raw: Any, base: UISettings) -> UISettings:
    s = _Section(file, "ui", raw, UI_KEYS)
    return UISettings(
        theme=s.text("theme", base.theme, expected='a theme name such as "perpdesk-dark"'),
        read_only=s.flag("read_only", base.read_only),
        refresh_hz=s.number("refresh_hz", base.refresh_hz, positive=True, hi=60),
        layout=s.text("layout", base.layout, expected="a layout name"),
        sort={**base.sort, **s.table_of_str("sort")},
        on_hangup=s.text("on_hangup", base.on_hangup, lambda v: v in ON_HANGUP,
                         expected='"stop" or "headless"'),
    )


def _strategy(file: str, raw: Any, base: Path) -> StrategySettings:
    s = _Section(file, "strategy", raw, ("name", "path", "module", "params", "max_callback_s"))
    given = [k for k in ("name", "path", "module") if k in s.table]
    if len(given) > 1:
        raise ConfigError(f"{file}: [strategy] takes one of name, path or module, got "
                          + " and ".join(given))
    name = StrategySettings().name
    if "name" in s.table:
        name = s.table["name"]
        if name not in STRATEGIES:
            raise ConfigError(
                f"{file}: [strategy] name must be one of "
                + ", ".join(f'"{n}"' for n in STRATEGIES)
                + f", got {show(name)}"
                + (suggest(name, STRATEGIES, quote=True) if isinstance(name, str) and
                   difflib.get_close_matches(name, list(STRATEGIES), n=1) else "")
                + (' (your own strategy file goes in path = "strategies/my.py")'
                   if isinstance(name, str) and name.endswith(".py") else "")
            )
    path: Path | None = None
    if "path" in s.table:
        text = s.text("path", "", expected='a Python file such as "strategies/my.py"')
        path = Path(text).expanduser()
        path = path if path.is_absolute() else base / path
        if not text.endswith(".py"):
            raise s.fail("path", 'a Python file ending in .py, such as "strategies/my.py"')
        if not path.is_file():
            raise ConfigError(f'{file}: [strategy] path "{text}": no such file (looked for {path})')
    module = None
    if "module" in s.table:
        module = s.text("module", "", lambda m: MODULE_RE.match(m) is not None, 'an importable "package.module:ClassName"')
    params = s.table.get("params", {})
    if not isinstance(params, dict):
        raise s.fail("params", "a table (e.g. [strategy.params])")
    for key in params:
        if SECRET_KEY_RE.search(key):
            raise ConfigError(f'{file}: [strategy.params] "{key}" is not allowed here — credentials come only '
                              f"from the environment variables {ENV_KEY}, {ENV_SECRET}, {ENV_PASSPHRASE}")
    limit = s.number("max_callback_s", StrategySettings().max_callback_s, positive=True, hi=3600)
    return StrategySettings(name=name, params=dict(params), path=path, module=module, max_callback_s=limit)


RISK_KEYS = ("max_order_notional", "max_position_notional", "max_total_notional",
             "max_open_positions", "max_orders_per_minute", "daily_loss_limit", "max_drawdown",
             "day_start", "flatten_on_halt")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _money_limit(s: _Section, key: str) -> Decimal | None:
    """A positive USDT amount; TOML floats are read through their text so 0.1 stays 0.1."""
    if key not in s.table:
        return None
    value = s.table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or value in (float("inf"), float("-inf")) or not value > 0:  # float ok: TOML's own type, checked
        raise s.fail(key, "a number of USDT > 0")
    return Decimal(str(value))


def _count_limit(s: _Section, key: str) -> int | None:
    if key not in s.table:
        return None
    return s.integer(key, 0, 1)


def _risk(file: str, raw: Any) -> RiskSettings:
    s = _Section(file, "risk", raw, RISK_KEYS)
    text = s.text("day_start", "00:00", lambda v: _HHMM.match(v) is not None,
                  'a UTC time "HH:MM" such as "00:00"')
    hour, minute = (int(x) for x in text.split(":"))
    return RiskSettings(
        max_order_notional=_money_limit(s, "max_order_notional"),
        max_position_notional=_money_limit(s, "max_position_notional"),
        max_total_notional=_money_limit(s, "max_total_notional"),
        max_open_positions=_count_limit(s, "max_open_positions"),
        max_orders_per_minute=_count_limit(s, "max_orders_per_minute"),
        daily_loss_limit=_money_limit(s, "daily_loss_limit"),
        max_drawdown=_money_limit(s, "max_drawdown"),
        day_start=time(hour, minute),
        flatten_on_halt=s.flag("flatten_on_halt", False),
    )


def _keymap(file: str, raw: Any, ids: Collection[str] | None) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: [keymap] must be a table, got {show(raw)}")
    for binding, key in raw.items():
        if ids is not None and binding not in ids:
            known = list(ids)
            raise ConfigError(f'{file}: unknown binding id [keymap] "{binding}"'
                              f"{suggest(binding, known, quote=True)}")
        if not isinstance(key, str) or not key or any(c.isspace() for c in key):
            raise ConfigError(
                f'{file}: [keymap] {binding} must be a key name such as "c" or "ctrl+x", got {show(key)}'
            )
    return dict(raw)


# ---------------------------------------------------------------- loading


def parse_settings(data: Mapping[str, Any], *, file: str = "config.toml",
                   config_path: Path = DEFAULT_CONFIG, keymap_ids: Collection[str] | None = None) -> Settings:
    """Builds Settings from an already-parsed TOML document; relative dirs resolve beside the file.

    ``keymap_ids``: the binding ids ``[keymap]`` may name. They are the console's (console/actions.py
    defines them, and the CLI passes them); None leaves the ids unchecked."""
    for name in data:
        if name not in _SECTIONS:
            if isinstance(data[name], dict):
                raise ConfigError(f"{file}: unknown section [{name}]{suggest(name, _SECTIONS, brackets=True)}")
            raise ConfigError(
                f'{file}: unknown top-level key "{name}" — settings go in a section such as [exchange]'
            )
    base = config_path.parent
    dl, dj = LogSettings(), JournalSettings()
    journal = _Section(file, "journal", data.get("journal", {}), ("dir",))
    logs = _Section(file, "logs", data.get("logs", {}), ("dir", "level", "retention_days"))
    level = logs.text("level", dl.level).upper()
    if level not in LOG_LEVELS:
        raise logs.fail("level", "one of " + ", ".join(LOG_LEVELS))
    return Settings(
        exchange=_exchange(file, data.get("exchange", {})),
        sim=_sim(file, data.get("sim", {})),
        journal=JournalSettings(dir=_dir(journal, "dir", dj.dir, base)),
        logs=LogSettings(dir=_dir(logs, "dir", dl.dir, base), level=level,
                         retention_days=logs.integer("retention_days", dl.retention_days, 1)),
        ui=_ui(file, data.get("ui", {}), UISettings()),
        strategy=_strategy(file, data.get("strategy", {}), base),
        risk=_risk(file, data.get("risk", {})),
        keymap=_keymap(file, data.get("keymap", {}), keymap_ids),
        config_path=config_path,
        engine=_engine(file, data.get("engine", {})),
        store=_store(file, data.get("store", {})),
    )


def read_toml(path: Path, file: str) -> dict[str, Any]:
    """Reads a TOML file; every failure is a ConfigError naming the file (with the line for syntax)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not valid UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


# ---------------------------------------------------------------- ui-state.toml, read at start
# Why a bad file is set aside rather than refused: the trader never wrote it (the app saves it:
# core/settings/uistate.py), so a torn write, a stray BOM or a folder in its place must not stop every
# start with exit 2 until they find and delete it. It is renamed ``ui-state.toml.corrupt-<UTC
# time>`` (kept for a look) and the start goes on with config.toml's [ui]; the console logs and
# shows the notice (``take_notices``).

UI_STATE_NAME = "ui-state.toml"
SAVED_KEYS = ("theme", "layout", "sort")  # preferences the app may persist; never read_only
_notices: list[str] = []  # files set aside in this process, until the console says so


def take_notices() -> list[str]:
    """The set-aside notices not shown yet (each is returned once)."""
    out = list(_notices)
    _notices.clear()
    return out


def set_aside(path: Path, why: str) -> str:
    """Move a bad ui-state file out of the way; the notice (also kept for ``take_notices``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        os.rename(path, target)
        done = f"moved it to {target.name}"
    except OSError as exc:
        done = f"could not move it aside ({exc.strerror or exc}): delete it"
    notice = (f"{path} could not be used ({why}); {done}; "
              "UI preferences from config.toml [ui] this time")
    _notices.append(notice)
    return notice


def read_or_set_aside(settings: Settings, path: Path) -> dict[str, Any]:
    """The validated [ui] table of ``path``; {} (and the file set aside) when it is bad."""
    try:
        table = read_ui_state(path)
        with_ui(settings, table, str(path))  # the values too: theme = 3 is as bad as garbage
        return table
    except ConfigError as exc:
        why = exc.message.removeprefix(f"{path}: ")
        with contextlib.suppress(OSError):
            with open(path, "rb") as fh:
                if fh.read(3) == b"\xef\xbb\xbf":  # an editor's byte-order mark: TOML has none
                    why = f"it starts with a byte-order mark (BOM); {why}"
        set_aside(path, why)
        return {}


def ui_state_path(settings: Settings) -> Path:
    return settings.config_path.parent / UI_STATE_NAME


def check_no_secrets(file: str, table: Mapping[str, Any], where: str = "ui") -> None:
    for key, value in table.items():
        if SECRET_KEY_RE.search(str(key)):
            raise ConfigError(f'{file}: [{where}] "{key}" looks like a credential; ui-state.toml never holds one')
        if isinstance(value, Mapping):
            check_no_secrets(file, value, f"{where}.{key}")


def read_ui_state(path: Path) -> dict[str, Any]:
    """The raw [ui] table of a ui-state file ({} when there is none); ConfigError if it is bad."""
    if not path.exists() and not path.is_symlink():
        return {}
    file = str(path)
    data = read_toml(path, file)
    unknown = [k for k in data if k != "ui"]
    if unknown or not isinstance(data.get("ui", {}), dict):
        raise ConfigError(f"{file}: expected only a [ui] table, found {unknown[0] if unknown else 'ui'!r} "
                          "(the app writes this file; delete it to reset the UI preferences)")
    table = data.get("ui", {})
    check_no_secrets(file, table)
    bad = [k for k in table if k not in SAVED_KEYS]
    if bad:
        raise ConfigError(f'{file}: [ui] "{bad[0]}" cannot be set here, expected only '
                          + ", ".join(SAVED_KEYS) + " (delete the file to reset the UI preferences)")
    return dict(table)


def apply_ui_state(settings: Settings) -> Settings:
    """Settings with ui-state.toml's [ui] laid over config.toml's [ui]."""
    path = ui_state_path(settings)
    table = read_or_set_aside(settings, path)
    return with_ui(settings, table, str(path)) if table else settings


def load_settings(path: str | Path | None = None, *, ui_state: bool = True,
                  keymap_ids: Collection[str] | None = None) -> Settings:
    """Loads config.toml, then ui-state.toml beside it. ``path=None`` means ./config.toml, which may
    be absent (all defaults: the simulator); an explicit path that does not exist is an error."""
    explicit = path is not None
    given = Path(path) if path is not None else DEFAULT_CONFIG
    file = str(given)
    config_path = given.expanduser().resolve()
    if config_path.is_file() or (explicit and config_path.exists()):
        settings = parse_settings(read_toml(config_path, file), file=file, config_path=config_path,
                                  keymap_ids=keymap_ids)
    elif explicit:
        raise ConfigError(f"{file}: config file not found (expected a TOML file at {config_path})")
    else:
        settings = parse_settings({}, file=file, config_path=config_path)
    if ui_state:
        settings = apply_ui_state(settings)
    return settings


def with_ui(settings: Settings, raw_ui: Mapping[str, Any], file: str) -> Settings:
    """Settings with a [ui] table laid over the current one (ui-state.toml, validated as config)."""
    return replace(settings, ui=_ui(file, dict(raw_ui), settings.ui))


def load_credentials(settings: Settings, env: Mapping[str, str] | None = None) -> Credentials:
    """The simulator's public demo account for a demo venue ("sim"); otherwise all three env variables."""
    entry = VENUES.get(settings.exchange.venue)
    if entry is not None and entry.demo_account:
        return SIM_DEMO_CREDENTIALS
    env = os.environ if env is None else env
    names = (ENV_KEY, ENV_SECRET, ENV_PASSPHRASE) if entry is None or entry.passphrase else (ENV_KEY, ENV_SECRET)
    missing = [n for n in names if not env.get(n, "").strip()]
    if missing:
        raise ConfigError(
            f'missing credentials for venue "{settings.exchange.venue}" ({settings.config_path.name}): '
            f"set the environment variable{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            "(credentials never go in config.toml)"
        )
    key, secret, *passphrase = (env[n].strip() for n in names)
    return Credentials(key, secret, passphrase[0] if passphrase else "")
