"""The errors and notes dip gives a user: :class:`DipError` (one line: what is wrong and
how to fix it) and :class:`DipNote` (what dip changed on the user's behalf). The bottom of
the house: every layer may import it, and it imports nothing of dip's."""

import sys
import warnings

__all__ = ["DipError", "DipNote", "show_notes"]


class DipError(Exception):
    """A user-facing error: its message is one line that says what is wrong and how to fix it."""


class DipNote(UserWarning):
    """A note about something dip changed on the user's behalf (e.g. a converted image mode).

    The ``dip`` command prints it as one ``note: ...`` line on stderr.
    """


def show_notes() -> None:
    """Print every :class:`DipNote` as one ``note: ...`` line on stderr (even with
    ``PYTHONWARNINGS=ignore``); other warnings keep Python's format."""
    warnings.simplefilter("always", DipNote)
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DipNote):
            print(f"note: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    if getattr(default, "_dip_notes", False):
        return
    show._dip_notes = True
    warnings.showwarning = show
