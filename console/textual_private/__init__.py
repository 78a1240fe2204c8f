"""Every use of Textual's private API, in one place: Textual has no public way to read an app's
keymap back or to turn key names into the form its keymap matches ("?" -> "question_mark").

tests/unit/console/test_console_textual_private.py fails when a Textual upgrade changes either, so the change
shows up there instead of as a key hint that silently stops following ``[keymap]``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import App
from textual.keys import _normalize_key_list  # noqa: PLC2701 - no public equivalent (module doc)


def normalize_key_list(keys: str) -> str:
    """Comma-separated key names as Textual's keymap compares them."""
    return _normalize_key_list(keys)


def app_keymap(app: App[Any]) -> Mapping[str, str]:
    """The keymap ``app.set_keymap`` installed (binding id -> keys)."""
    keymap: Mapping[str, str] = app._keymap  # noqa: SLF001 - no public reader (see the module doc)
    return keymap
