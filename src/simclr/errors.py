"""The one exception type the command line turns into a single ``error: ...`` line."""


class SimCLRError(Exception):
    """A problem the user can fix (bad option, missing data, ...).

    The message must say what to change. The CLI prints it on one line and exits with
    status 2, without a traceback.
    """


def suggest(word: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to a misspelt ``word`` (empty if none is close)."""
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
