"""dip: a reproduction harness for Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018)."""

__version__ = "0.1.0"


class DipError(Exception):
    """A user-facing error: its message is one line that says what is wrong and how to fix it."""
