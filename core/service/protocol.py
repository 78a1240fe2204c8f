"""The control socket's wire format (docs/service.md): one JSON object per line, UTF-8.

Why lines of JSON: a console and an engine of different releases must still tell each other what
is wrong (the hello carries the protocol version), a human can read a capture with ``socat``, and
orjson never writes a raw newline inside a value, so a line is a frame.
"""
from __future__ import annotations

from typing import Any

import orjson

PROTOCOL_VERSION = "1.2"  # major.minor: another major is refused, a newer minor is compatible
MAX_FRAME = 16 * 1024 * 1024  # a snapshot of many positions stays far below it
HELLO_TIMEOUT_S = 5.0

# client roles in the hello
ROLE_CONSOLE = "console"  # sends commands
ROLE_READ_ONLY = "read-only"  # the engine refuses every command it sends
ROLE_STATUS = "status"  # one status answer, then the engine closes (perpdesk status)
ROLES = (ROLE_CONSOLE, ROLE_READ_ONLY, ROLE_STATUS)


def frame(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def parse(line: bytes) -> dict[str, Any]:
    """One frame; ValueError for anything that is not a JSON object with a string ``t``."""
    data = orjson.loads(line)
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise ValueError("a frame must be a JSON object with a \"t\" field")
    return data


def major(version: object) -> int | None:
    if not isinstance(version, str):
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def version_refusal(theirs: object, *, we_are: str) -> str | None:
    """None when ``theirs`` speaks our major version, else one line saying which side to
    upgrade (``we_are``: "engine" or "console")."""
    other = major(theirs)
    ours = major(PROTOCOL_VERSION)
    if other == ours:
        return None
    peer = "console" if we_are == "engine" else "engine"
    if other is None:
        return f"the {peer} sent no readable protocol version ({theirs!r}); this {we_are} speaks {PROTOCOL_VERSION}"
    newer = peer if other > (ours or 0) else we_are
    older = we_are if newer == peer else peer
    return (f"protocol mismatch: {peer} speaks {theirs}, {we_are} speaks {PROTOCOL_VERSION}; "
            f"upgrade the {older} (perpdesk on its side) to match the {newer}")
