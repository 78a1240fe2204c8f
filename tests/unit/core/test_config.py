"""config.toml loading, validation messages, credentials, and ui-state.toml."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings.config import (
    SIM_DEMO_CREDENTIALS,
    ConfigError,
    Credentials,
    Settings,
    load_credentials,
    load_settings,
    read_ui_state,
    ui_state_path,
)
from core.settings.uistate import save_ui_state
from tests.helpers.paths import REPO


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = info.value.message
    assert "\n" not in message and str(path) in message
    return message


def test_committed_config_runs_on_sim_without_credentials() -> None:
    s = load_settings(REPO / "config.toml", ui_state=False)
    assert s.exchange.venue == "sim"
    assert s.exchange.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
    assert s.sim.funding_interval_s == 120 and s.sim.speed == 1
    assert s.strategy.name == "ema_scalper" and s.ui.theme == "perpdesk-dark"
    assert s.journal.dir == REPO / "journal"
    assert load_credentials(s, env={}) == SIM_DEMO_CREDENTIALS
    text = (REPO / "config.toml").read_text().lower()
    assert "perpdesk-demo-secret" not in text and "api_key =" not in text


def test_missing_default_config_means_all_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s == Settings(config_path=tmp_path / "config.toml", journal=s.journal, logs=s.logs)
    assert s.exchange.venue == "sim" and s.strategy.name == "none"
    assert s.journal.dir == tmp_path / "journal" and s.logs.dir == tmp_path / "logs"


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_sim_speed_0_freezes_the_market_as_on_the_command_line(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "[sim]\nspeed = 0\n")).sim.speed == 0


def test_full_config_parses(tmp_path: Path) -> None:
    path = write(tmp_path, """
[exchange]
venue = "okx"
sandbox = true
url = "http://127.0.0.1:8765"
symbols = ["BTC/USDT:USDT"]
[sim]
port = 8765
speed = 2.5
seed = 3
[journal]
dir = "/abs/journal"
[logs]
dir = "var/logs"
level = "debug"
[ui]
read_only = true
refresh_hz = 10
[strategy]
name = "none"
[strategy.params]
size = "0.01"
[keymap]
close = "ctrl+c"
""")
    s = load_settings(path)
    assert (s.exchange.venue, s.exchange.sandbox, s.exchange.url) == ("okx", True, "http://127.0.0.1:8765")
    assert (s.sim.port, s.sim.speed, s.sim.seed) == (8765, 2.5, 3)
    assert s.journal.dir == Path("/abs/journal") and s.logs.dir == tmp_path / "var" / "logs"
    assert s.logs.level == "DEBUG" and s.ui.read_only and s.ui.refresh_hz == 10.0
    assert s.strategy.params == {"size": "0.01"} and s.keymap == {"close": "ctrl+c"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[exchange]\nvenu = "sim"\n', 'unknown key [exchange] "venu" — did you mean "venue"?'),
        ('[exchnage]\nvenue = "sim"\n', "unknown section [exchnage] — did you mean [exchange]?"),
        ('venue = "sim"\n', 'unknown top-level key "venue"'),
        ('[sim]\nspeed = "fast"\n', '[sim] speed must be a number, got "fast"'),
        ("[sim]\nspeed = -1\n", "[sim] speed must be a number >= 0 and <= 1000, got -1"),
        ("[sim]\nspeed = 1001\n", "[sim] speed must be a number >= 0 and <= 1000"),
        ("[sim]\nport = 70000\n", "[sim] port must be an integer from 0 to 65535, got 70000"),
        ("[sim]\nport = 1.5\n", "[sim] port must be an integer"),
        ("[sim]\nseed = true\n", "[sim] seed must be an integer, got true"),
        ('[exchange]\nsandbox = "yes"\n', '[exchange] sandbox must be true or false, got "yes"'),
        ('[exchange]\nvenue = "binance"\n', 'venue "binance" is not supported yet'),
        ('[exchange]\nvenue = "okz"\n', 'did you mean "okx"?'),
        ('[exchange]\nsymbols = ["BTC-USDT-SWAP"]\n', '"BTC-USDT-SWAP" must look like BASE/QUOTE:SETTLE'),
        ('[exchange]\nsymbols = ["btc/usdt:usdt"]\n', 'did you mean "BTC/USDT:USDT"?'),
        ('[exchange]\nsymbols = "BTC/USDT:USDT"\n', "[exchange] symbols must be a non-empty array"),
        ("[exchange]\nsymbols = []\n", "[exchange] symbols must be a non-empty array"),
        ('[exchange]\nsymbols = ["BTC/USDT:USDT", "BTC/USDT:USDT"]\n', "more than once"),
        ('[exchange]\nurl = "localhost:8765"\n', "[exchange] url must be an http:// or https:// base URL"),
        ('[exchange]\napi_key = "abc123"\n', "credentials come only from the environment"),
        ('[exchange]\nsecret = "abc123"\n', "PERPDESK_API_SECRET"),
        ('[strategy]\nname = "demo_scalp"\n', 'did you mean "demo_scalper"?'),
        ('[strategy]\nparams = 3\n', "[strategy] params must be a table"),
        ('[strategy.params]\napi_secret = "x"\n', "credentials come only from the environment"),
        ('[logs]\nlevel = "LOUD"\n', "[logs] level must be one of TRACE"),
        ("[ui]\nrefresh_hz = 500\n", "[ui] refresh_hz must be a number > 0 and <= 60"),
        ('[ui]\nthem = "x"\n', 'did you mean "theme"?'),
        ('[ui]\non_hangup = "detach"\n', '[ui] on_hangup must be "stop" or "headless", got "detach"'),
        ('[ui]\non_hangup = true\n', '[ui] on_hangup must be "stop" or "headless", got true'),
        ('[ui]\non_hangpu = "stop"\n', 'did you mean "on_hangup"?'),
        ("[keymap]\nclose = 3\n", "[keymap] close must be a key name"),
        ('exchange = "okx"\n', "[exchange] must be a table"),
        ("[exchange\nvenue = 1\n", "not valid TOML"),
        ('[sim]\nspeed = \n', "line 2"),
    ],
)
def test_malformed_config_names_file_key_and_expectation(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_for(tmp_path, text)


def test_on_hangup_defaults_to_stop_and_accepts_headless(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[ui]\n")
    assert load_settings(path).ui.on_hangup == "stop"
    path.write_text('[ui]\non_hangup = "headless"\n')
    assert load_settings(path).ui.on_hangup == "headless"


def test_secret_value_is_never_echoed(tmp_path: Path) -> None:
    assert "hunter2-very-secret" not in error_for(tmp_path, '[exchange]\npassphrase = "hunter2-very-secret"\n')


def test_non_utf8_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[ui]\ntheme = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_settings(path)


ENV = {"PERPDESK_API_KEY": "k-123456789", "PERPDESK_API_SECRET": "s-abcdefghijk", "PERPDESK_API_PASSPHRASE": "p-pass"}


def test_credentials_from_env_for_real_venue(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[exchange]\nvenue = "okx"\n'))
    creds = load_credentials(s, env=ENV)
    assert creds == Credentials("k-123456789", "s-abcdefghijk", "p-pass")
    for text in (repr(creds), str(creds), f"{creds}"):
        assert "s-abcdefghijk" not in text and "p-pass" not in text and "k-123456789" not in text


def test_credentials_read_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    s = load_settings(write(tmp_path, '[exchange]\nvenue = "okx"\n'))
    assert load_credentials(s).secret == "s-abcdefghijk"


def test_missing_credentials_for_okx_name_the_variables(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[exchange]\nvenue = "okx"\n'))
    with pytest.raises(ConfigError) as info:
        load_credentials(s, env={"PERPDESK_API_KEY": "k-123456789", "PERPDESK_API_SECRET": " "})
    msg = info.value.message
    assert "PERPDESK_API_SECRET" in msg and "PERPDESK_API_PASSPHRASE" in msg and "PERPDESK_API_KEY," not in msg
    assert '"okx"' in msg


def test_sim_venue_gets_demo_credentials_even_with_env(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[exchange]\nvenue = "sim"\n'))
    assert load_credentials(s, env=ENV) == Credentials("perpdesk-demo", "perpdesk-demo-secret", "perpdesk-demo")


# ---------------------------------------------------------------- ui-state.toml

CONFIG = """# my comments stay
[ui]
theme = "from-config"   # inline comment
refresh_hz = 12
[ui.sort]
fills = "ts"
"""


def test_ui_state_round_trip_overrides_config_and_leaves_config_untouched(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    before = path.read_bytes()
    s = load_settings(path)
    assert s.ui.theme == "from-config" and s.ui.sort == {"fills": "ts"}
    s2 = save_ui_state(s, theme="perpdesk-light", sort={"positions": "-upnl"})
    assert s2.ui.theme == "perpdesk-light" and s2.ui.refresh_hz == 12
    s3 = save_ui_state(s2, layout="wide")
    assert path.read_bytes() == before
    assert ui_state_path(s) == tmp_path / "ui-state.toml"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    reloaded = load_settings(path)
    assert reloaded.ui == s3.ui
    assert (reloaded.ui.theme, reloaded.ui.layout) == ("perpdesk-light", "wide")
    assert reloaded.ui.sort == {"fills": "ts", "positions": "-upnl"}
    assert read_ui_state(tmp_path / "ui-state.toml")["theme"] == "perpdesk-light"


def test_ui_state_refuses_secrets_and_non_prefs(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, CONFIG))
    with pytest.raises(ConfigError, match="looks like a credential"):
        save_ui_state(s, api_key="abc")
    with pytest.raises(ConfigError, match="looks like a credential"):
        save_ui_state(s, sort={"secret": "x"})
    with pytest.raises(ConfigError, match="not a saved UI preference"):
        save_ui_state(s, read_only=True)
    with pytest.raises(ConfigError, match="theme must be a theme name"):
        save_ui_state(s, theme=3)
    assert not (tmp_path / "ui-state.toml").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[ui]\npassword = "x"\n', "looks like a credential"),
        ("[ui]\nread_only = false\n", '"read_only" cannot be set here'),
        ('[exchange]\nvenue = "okx"\n', "expected only a [ui] table"),
        ("[ui]\ntheme = 3\n", "[ui] theme must be"),
        ("[ui\n", "not valid TOML"),
        ("\x00\x01garbage\xff", "not valid UTF-8"),
        ('\ufeff[ui]\ntheme = "perpdesk-light"\n', "starts with a byte-order mark (BOM)"),
        (None, "cannot be read"),  # a folder in its place
    ],
)
def test_bad_ui_state_file_is_set_aside_and_the_start_goes_on(tmp_path: Path, text: str | None,
                                                              expected: str) -> None:
    from core.settings.config import take_notices

    write(tmp_path, CONFIG)
    state = tmp_path / "ui-state.toml"
    if text is None:
        state.mkdir()
    else:
        state.write_bytes(state_bytes(text))
    take_notices()
    s = load_settings(tmp_path / "config.toml")
    assert s.ui.theme == "from-config" and s.ui.sort == {"fills": "ts"}  # config.toml's [ui]
    assert not state.exists()
    (aside,) = tmp_path.glob("ui-state.toml.corrupt-*")
    assert aside.is_dir() if text is None else aside.read_bytes() == state_bytes(text)
    (notice,) = take_notices()
    assert expected in notice and str(state) in notice and aside.name in notice
    assert take_notices() == []
    s2 = save_ui_state(s, theme="perpdesk-light")  # the next save writes a fresh file
    assert s2.ui.theme == "perpdesk-light" and load_settings(tmp_path / "config.toml").ui == s2.ui


def state_bytes(text: str) -> bytes:
    return text.encode("latin-1") if "\xff" in text else text.encode("utf-8")


def test_a_file_that_goes_bad_while_running_is_set_aside_at_the_next_save(tmp_path: Path) -> None:
    from core.settings.config import take_notices

    s = load_settings(write(tmp_path, CONFIG))
    (tmp_path / "ui-state.toml").write_text("[ui\n")
    take_notices()
    s2 = save_ui_state(s, layout="wide")
    assert s2.ui.layout == "wide" and len(list(tmp_path.glob("ui-state.toml.corrupt-*"))) == 1
    assert len(take_notices()) == 1


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.exchange.venue = "okx"  # type: ignore[misc]
    assert os.fspath(s.config_path) == "config.toml"
