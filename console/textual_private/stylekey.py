"""A value that changes whenever a CSS rule of a widget or of one of its ancestors changes.

Why: console/widgets/plainlines.py decides once whether Textual's styles cache would do anything
to a widget's lines (border, padding, tint, opacity...) and what background it pads them with;
the decision holds until a rule of the widget or an ancestor changes (a theme, a class, an
animation). Textual counts those changes per node (``RenderStyles._cache_key``, what it keys its
own gutter cache on) but has no public reader. tests/unit/console/test_console_textual_private.py
fails when a Textual upgrade changes it; without it ``styles_key`` returns None (no reuse).
"""
from __future__ import annotations

from textual.widget import Widget


def styles_key(widget: Widget) -> tuple[int, ...] | None:
    """The widget's and its ancestors' style revision counters, or None on another Textual."""
    try:
        return tuple(node.styles._cache_key for node in widget.ancestors_with_self)  # noqa: SLF001
    except AttributeError:
        return None
