"""ui-state.toml: the UI preferences the app changes (theme, pane layout, sort), saved beside the
config file so config.toml itself is never rewritten (tomli-w would drop the user's comments).

It is machine-owned and holds a single [ui] table that overrides config.toml's [ui] at the next
start. It is validated like config.toml, and any key that looks like a credential is refused on
load and on save, so a secret can never end up in a file that is not meant to hold one.

Why a bad file is set aside rather than refused: the trader never wrote it, so a torn write, a
stray BOM or a folder in its place must not stop every start with exit 2 until they find and
delete it. It is renamed ``ui-state.toml.corrupt-<UTC time>`` (kept for a look) and the start
goes on with config.toml's [ui]; the console logs and shows the notice (``take_notices``).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from core.config import SECRET_KEY_RE, ConfigError, Settings, UISettings, read_toml, with_ui

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


def _read_or_set_aside(settings: Settings, path: Path) -> dict[str, Any]:
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


def _check_no_secrets(file: str, table: Mapping[str, Any], where: str = "ui") -> None:
    for key, value in table.items():
        if SECRET_KEY_RE.search(str(key)):
            raise ConfigError(f'{file}: [{where}] "{key}" looks like a credential; ui-state.toml never holds one')
        if isinstance(value, Mapping):
            _check_no_secrets(file, value, f"{where}.{key}")


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
    _check_no_secrets(file, table)
    bad = [k for k in table if k not in SAVED_KEYS]
    if bad:
        raise ConfigError(f'{file}: [ui] "{bad[0]}" cannot be set here, expected only '
                          + ", ".join(SAVED_KEYS) + " (delete the file to reset the UI preferences)")
    return dict(table)


def apply_ui_state(settings: Settings) -> Settings:
    """Settings with ui-state.toml's [ui] laid over config.toml's [ui]."""
    path = ui_state_path(settings)
    table = _read_or_set_aside(settings, path)
    return with_ui(settings, table, str(path)) if table else settings


def ui_prefs(ui: UISettings) -> dict[str, Any]:
    """The persisted part of the UI settings, as a TOML-ready table."""
    return {"theme": ui.theme, "layout": ui.layout, "sort": dict(ui.sort)}


def save_ui_state(settings: Settings, **prefs: Any) -> Settings:
    """Persists changed preferences (theme=, layout=, sort=) atomically and returns the new Settings.

    Merges with what the file already holds, so one pane's sort does not erase another's.
    """
    path = ui_state_path(settings)
    file = str(path)
    _check_no_secrets(file, prefs)
    bad = [k for k in prefs if k not in SAVED_KEYS]
    if bad:
        raise ConfigError(f'{file}: [ui] "{bad[0]}" is not a saved UI preference, expected one of '
                          + ", ".join(SAVED_KEYS))
    table = _read_or_set_aside(settings, path)
    if "sort" in prefs:
        prefs = {**prefs, "sort": {**table.get("sort", {}), **dict(prefs["sort"])}}
    table = {**table, **prefs}
    new = with_ui(settings, table, file)  # validates types before anything is written
    _write_atomic(path, {"ui": ui_prefs(new.ui)})
    return new


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Temp file in the same folder + os.replace: a crash leaves the old file or the new, never half."""
    payload = ("# Written by perpdesk: UI preferences only. Edit config.toml instead.\n"
               + tomli_w.dumps(data)).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".ui-state.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
