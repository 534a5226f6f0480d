"""User-facing errors: one line, exit status 2 from the CLI."""

from __future__ import annotations


class EdgetlError(Exception):
    """A problem with the user's input or environment, stated in one line.

    The CLI prints ``error: <message>`` and exits with ``exit_code``; library code
    raises it instead of letting a deep traceback reach the user.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
