"""perpdesk's Textual themes: a dark default, a light one and a high-contrast one.

Why custom themes at all: gains and losses must read at a glance in any terminal, so every theme
carries its own ``pnl-up`` / ``pnl-down`` (and ``pnl-flat``) variables, and the one app stylesheet
(``perpdesk.tcss``) refers only to variables, never to literal colours.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from textual.theme import Theme

CSS_PATH = Path(__file__).with_name("perpdesk.tcss")
DEFAULT_THEME = "perpdesk-dark"

# Fallbacks used when the trader picks one of Textual's own themes from the palette.
PNL_DEFAULTS = {"pnl-up": "#2ecc71", "pnl-down": "#ff5f5f", "pnl-flat": "#a0a0a0"}

PERPDESK_THEMES: tuple[Theme, ...] = (
    Theme(
        name="perpdesk-dark",
        primary="#3b82f6",
        secondary="#64748b",
        accent="#f59e0b",
        warning="#f59e0b",
        error="#ef4444",
        success="#22c55e",
        foreground="#d8dee9",
        background="#0f1419",
        surface="#161c24",
        panel="#1f2733",
        dark=True,
        variables={"pnl-up": "#22c55e", "pnl-down": "#f25f5c", "pnl-flat": "#8b95a5"},
    ),
    Theme(
        name="perpdesk-light",
        primary="#1d4ed8",
        secondary="#475569",
        accent="#b45309",
        warning="#b45309",
        error="#b91c1c",
        success="#15803d",
        foreground="#1e293b",
        background="#f8fafc",
        surface="#eef2f7",
        panel="#dde3ec",
        dark=False,
        variables={"pnl-up": "#15803d", "pnl-down": "#c0262d", "pnl-flat": "#64748b"},
    ),
    Theme(
        name="perpdesk-contrast",
        primary="#00afff",
        secondary="#ffffff",
        accent="#ffff00",
        warning="#ffff00",
        error="#ff0000",
        success="#00ff00",
        foreground="#ffffff",
        background="#000000",
        surface="#000000",
        panel="#303030",
        dark=True,
        variables={"pnl-up": "#00ff00", "pnl-down": "#ff3030", "pnl-flat": "#ffffff"},
    ),
)
THEME_NAMES: tuple[str, ...] = tuple(t.name for t in PERPDESK_THEMES)


class _ThemeHost(Protocol):
    def register_theme(self, theme: Theme) -> None: ...


def register_themes(app: _ThemeHost) -> None:
    """Registers the three perpdesk themes on ``app`` (call before setting ``app.theme``)."""
    for theme in PERPDESK_THEMES:
        app.register_theme(theme)


def next_theme(current: str) -> str:
    """The theme after ``current`` in perpdesk's cycle (`t`); a foreign theme goes to the default."""
    if current not in THEME_NAMES:
        return DEFAULT_THEME
    return THEME_NAMES[(THEME_NAMES.index(current) + 1) % len(THEME_NAMES)]
