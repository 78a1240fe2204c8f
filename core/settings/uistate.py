"""Saving the UI preferences the app changes (theme, pane layout, sort) to ui-state.toml.

The file sits beside the config file so config.toml itself is never rewritten (tomli-w would drop
the user's comments). Reading it at start is core/settings/config.py's (``load_settings`` lays its [ui]
table over config.toml's); saving merges with what the file holds, validates like config.toml and
refuses any key that looks like a credential, so a secret can never end up in it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from core.settings.config import (
    SAVED_KEYS,
    ConfigError,
    Settings,
    UISettings,
    check_no_secrets,
    read_or_set_aside,
    ui_state_path,
    with_ui,
)


def ui_prefs(ui: UISettings) -> dict[str, Any]:
    """The persisted part of the UI settings, as a TOML-ready table."""
    return {"theme": ui.theme, "layout": ui.layout, "sort": dict(ui.sort)}


def save_ui_state(settings: Settings, **prefs: Any) -> Settings:
    """Persists changed preferences (theme=, layout=, sort=) atomically and returns the new Settings.

    Merges with what the file already holds, so one pane's sort does not erase another's.
    """
    path = ui_state_path(settings)
    file = str(path)
    check_no_secrets(file, prefs)
    bad = [k for k in prefs if k not in SAVED_KEYS]
    if bad:
        raise ConfigError(f'{file}: [ui] "{bad[0]}" is not a saved UI preference, expected one of '
                          + ", ".join(SAVED_KEYS))
    table = read_or_set_aside(settings, path)
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
