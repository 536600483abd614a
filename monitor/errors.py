"""The one error type users see: its message is a single line naming the file and the problem."""


class SpecmonError(Exception):
    """A problem with the user's input or environment; the CLI prints it in one line, exit code 2."""

    exit_code = 2
