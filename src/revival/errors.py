"""The one exception type the CLI turns into a one-line error and exit code 2."""


class RevivalError(Exception):
    """Bad input or a failed precondition, with a message meant for the user."""
