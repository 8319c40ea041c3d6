"""Errors a user can fix (bad config, bad file): reported as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a file, a key, a value) rather than a bug.

    Pipeline jobs and the CLI print its message alone (it names the file, key or
    value) and exit non-zero; any other exception keeps its traceback in the job's log.
    """
