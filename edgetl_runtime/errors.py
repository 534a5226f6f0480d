"""The one error type users see: a problem they can fix, stated in one line."""

from __future__ import annotations


class EdgetlError(Exception):
    """A problem with the user's input or environment, stated in one line.

    The CLIs print ``error: <message>`` and exit with ``exit_code``; library code
    raises it instead of letting a deep traceback reach the user.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class DeviceUnavailable(EdgetlError):
    """The runtime is installed but the requested device or provider is not here."""
