"""Errors raised on bad user input; the CLI turns them into one line and exit status 2."""


class InputError(ValueError):
    """Input data, a file or an option is unusable. The message names the problem in one line."""
