"""An app run as on a real terminal (every frame rendered to ANSI), the frames kept to count."""
from __future__ import annotations

import re
from typing import Any

from textual.drivers.headless_driver import HeadlessDriver

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Frames:
    """What the app wrote, frame by frame."""

    def __init__(self) -> None:
        self.frames: list[str] = []

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
            frames.frames.append(data)

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


def size_of(data: Any) -> int:
    return len(str(data).encode())
