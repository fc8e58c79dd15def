"""The one exception type the command line turns into a single ``error: ...`` line."""


class SimCLRError(Exception):
    """A problem the user can fix (bad option, missing data, ...).

    The message must say what to change. The CLI prints it on one line and exits with
    status 2, without a traceback.
    """
