"""dip: a reproduction harness for Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018)."""

__version__ = "0.1.0"


class DipError(Exception):
    """A user-facing error: its message is one line that says what is wrong and how to fix it."""


class DipNote(UserWarning):
    """A note about something dip changed on the user's behalf (e.g. a converted image mode).

    The ``dip`` command prints it as one ``note: ...`` line on stderr.
    """
