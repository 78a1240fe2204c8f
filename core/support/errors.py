"""The one base of every failure perpdesk expects and can explain in a sentence.

Why one base: the CLI, headless mode and the console each need one plain line and an exit code
from whatever failed, whatever its class. A ``PerpdeskError`` carries both things a front end needs (one plain line and the process exit code), so each front
end handles it in exactly one place and a new error class needs no new ``except`` anywhere.
"""
from __future__ import annotations

EXIT_FAIL = 2  # "could not run": bad config, missing credential, unreachable exchange


class PerpdeskError(Exception):
    """An expected failure: ``message`` is one plain line for the trader, ``exit_code`` the process's."""

    exit_code: int = EXIT_FAIL

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
