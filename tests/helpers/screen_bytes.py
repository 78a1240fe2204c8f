"""An app run as on a real terminal (every frame rendered to ANSI), the frames kept to count."""
from __future__ import annotations

import re

from textual.drivers.headless_driver import HeadlessDriver

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Frames:
    """What the app wrote, frame by frame."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def written(self, data: str) -> None:
        """The driver wrote ``data`` (a subclass may note when)."""
        self.frames.append(data)

    def take(self) -> str:
        """Everything written since the last take."""
        out, self.frames = "".join(self.frames), []
        return out


def recording_driver(frames: Frames) -> type:
    """Textual's headless driver, except that the app believes it has a terminal."""

    class RecordingDriver(HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            return False

        def write(self, data: str) -> None:
            frames.written(data)

        def flush(self) -> None:
            pass

    return RecordingDriver


def moves(data: str) -> list[tuple[int, int]]:
    """The (x, y) of each cursor move (0-based), in order."""
    return [(int(m.group(1).split(";")[1]) - 1, int(m.group(1).split(";")[0]) - 1)
            for m in CSI.finditer(data) if m.group(2) == "H" and ";" in m.group(1)]


def text_of(data: str) -> str:
    """The characters written, escape sequences removed."""
    return CSI.sub("", data)


Pen = tuple[frozenset[str], str, str]  # (attributes, foreground, background) as SGR codes
_BLANK: Pen = (frozenset(), "39", "49")


def paint(data: str, cells: dict[tuple[int, int], tuple[str, Pen]] | None = None,
          ) -> dict[tuple[int, int], tuple[str, Pen]]:
    """What a terminal shows after ``data``: (x, y) -> (character, pen) for every cell written.

    A small terminal for the sequences Textual writes (cursor moves, newlines, SGR with truecolor,
    39/49, attributes, 0); the pen carries over cursor moves, as on a real terminal."""
    cells = {} if cells is None else cells
    x = y = 0
    attrs: set[str] = set()
    fg, bg = "39", "49"
    pos = 0
    for m in [*CSI.finditer(data), None]:
        for ch in data[pos:m.start() if m else len(data)]:
            if ch == "\n":
                y += 1
                continue
            cells[(x, y)] = (ch, (frozenset(attrs), fg, bg))
            x += 1
        if m is None:
            break
        pos = m.end()
        params, final = m.group(1), m.group(2)
        if final == "H":
            row, _, col = params.partition(";")
            y, x = int(row or 1) - 1, int(col or 1) - 1
        elif final == "m":
            codes = (params or "0").split(";")
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == "0":
                    attrs.clear()
                    fg, bg = "39", "49"
                elif c in ("38", "48"):
                    n = 5 if codes[i + 1] == "2" else 3
                    value = ";".join(codes[i:i + n])
                    fg, bg = (value, bg) if c == "38" else (fg, value)
                    i += n - 1
                elif c == "39":
                    fg = "39"
                elif c == "49":
                    bg = "49"
                else:
                    attrs.add(c)
                i += 1
    return cells
