"""Header-style items packed into lines: an item (a label and its value) never splits.

Why: the header and the risk line under it are short items side by side; at 80 columns they do
not fit on one line, and cropping or Rich's own wrapping cut an item in two ("Expo 2,556.01 /",
"Last pause manual:"), so the trader lost the very number or reason the item was for. Packed
whole onto as many lines as they need, every item keeps its words. An item wider than the line
alone (a long risk event) is broken at spaces and ends its line.
"""
from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

GAP = "  "


def pack(items: Iterable[Text], width: int) -> list[Text]:
    """``items`` greedily into lines of at most ``width`` cells, two spaces apart."""
    width = max(1, width)
    lines: list[Text] = [Text()]
    for item in items:
        pieces = _pieces(item, width)
        for piece in pieces:
            line = lines[-1]
            if line and line.cell_len + len(GAP) + piece.cell_len > width:
                lines.append(Text())
                line = lines[-1]
            if line:
                line.append(GAP)
            line.append_text(piece)
        if len(pieces) > 1:  # a broken item ends its line: the next item does not hide in its tail
            lines.append(Text())
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines


def _pieces(item: Text, width: int) -> list[Text]:
    """The item whole when it fits a line; else cut at the last space before each line's end
    (a single word longer than the line is cut where the line ends)."""
    if item.cell_len <= width:
        return [item]
    plain = item.plain
    cuts: list[int] = []
    start = 0
    while len(plain) - start > width:
        space = plain.rfind(" ", start + 1, start + width + 1)
        end = space if space > start else start + width
        cuts.append(end)
        start = end + 1 if space > start else end
    out: list[Text] = []
    for piece in item.divide(cuts):
        piece.rstrip()
        stripped = piece.plain.lstrip(" ")
        if len(stripped) != len(piece.plain):
            piece = piece[len(piece.plain) - len(stripped):]
        if piece.plain:
            out.append(piece)
    return out
