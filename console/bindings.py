"""The action registry (console/actions.py) as Textual bindings, and what a rebound key shows."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import App
from textual.binding import Binding, BindingType

from console.actions import ACTIONS, BY_ID, TOGETHER, Action, Scope
from console.textual_private import app_keymap, normalize_key_list


def binding(action: Action) -> Binding:
    return Binding(action.keys, action.action, action.description, show=action.show,
                   priority=action.priority, id=action.id)


def bindings(scope: Scope) -> list[BindingType]:
    """The BINDINGS of one screen or widget class."""
    return [binding(a) for a in ACTIONS if a.scope is scope]


def keys_of(action: Action, keymap: Mapping[str, str]) -> list[str]:
    """The keys an action answers to once ``keymap`` (binding id -> keys) is applied."""
    return [k for k in normalize_key_list(keymap.get(action.id, action.keys)).split(",") if k]


def key_hint(app: App[Any], action_id: str, default: str) -> str:
    """How a dialog names the key of ``action_id``: ``default`` (its own wording, e.g. "Esc")
    unless ``[keymap]`` rebound it, then the rebound keys as Textual displays them."""
    keymap = app_keymap(app)
    if action_id not in keymap:
        return default
    keys = keys_of(BY_ID[action_id], keymap)
    return "/".join(app.get_key_display(Binding(k, "")) for k in keys)


def clashes(keymap: Mapping[str, str]) -> list[str]:
    """One warning per key that ``keymap`` gives to two actions live at the same time.

    Why: Textual keeps one binding per key and silently drops the other; the trader must learn
    that, say, ``close_all = "c"`` took ``c`` away from ``close``."""
    out: list[str] = []
    for group in TOGETHER:
        owners: dict[str, list[str]] = {}
        for action in ACTIONS:
            if action.scope in group:
                for key in keys_of(action, keymap):
                    owners.setdefault(key, []).append(action.id)
        for key, ids in owners.items():
            if len(ids) > 1 and any(i in keymap for i in ids):
                out.append(f'[keymap] key "{key}" is given to both {ids[0]} and {ids[1]}'
                           f"{' (and ' + ', '.join(ids[2:]) + ')' if ids[2:] else ''}: "
                           f"only one of them will work")
    return out
