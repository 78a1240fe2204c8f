"""The private Textual names console/textual_private/ wraps still do what the console relies on:
an upgrade that renames or changes them fails here, not as a key hint that ignores [keymap]."""
from __future__ import annotations

from textual.app import App

from console.textual_private import app_keymap, normalize_key_list


def test_normalize_key_list_gives_the_names_textual_binds() -> None:
    assert normalize_key_list("?,ctrl+x") == "question_mark,ctrl+x"
    assert normalize_key_list("slash") == "slash"


def test_app_keymap_reads_back_what_set_keymap_installed() -> None:
    app: App[None] = App()
    assert dict(app_keymap(app)) == {}
    app.set_keymap({"close": "z", "help": "?"})
    keymap = app_keymap(app)
    assert keymap["close"] == "z" and "help" in keymap
