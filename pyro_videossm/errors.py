"""Errors raised on bad user input; the CLI turns them into one line and exit status 2."""


class InputError(ValueError):
    """Input data, a file or an option is unusable. The message names the problem in one line."""


class DataWarning(UserWarning):
    """The data and the model disagree (innovations far from what the filter expects, a
    collapsed particle filter): the result exists but should not be trusted as it is. The CLI
    prints each as one line."""
