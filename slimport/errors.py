"""Error types and the exit codes the CLI maps them to.

Exit codes (also printed by ``slimport --help``):

* 0   -- success, every gate passed
* 1   -- internal error (a bug: please report it with the traceback from ``--debug``)
* 2   -- usage or input error (bad checkpoint, unknown target, unreadable data, existing output ...)
* 3   -- a validation gate failed (the report is still written, marked FAIL)
* 130 -- interrupted (Ctrl-C); nothing half-written is left in the output folder
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_GATE = 3
EXIT_INTERRUPTED = 130


class SlimportError(Exception):
    """Base class for errors that carry a one-line, user-facing message."""

    exit_code = EXIT_INTERNAL


class InputError(SlimportError):
    """The user's input (checkpoint, target, data, output folder) cannot be used."""

    exit_code = EXIT_INPUT


class GateFailed(SlimportError):
    """An artifact was built and validated, but at least one gate failed."""

    exit_code = EXIT_GATE

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type name when empty), for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
