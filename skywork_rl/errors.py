"""Errors a user can act on.

A `SkyworkError` says what is wrong, where (file, key, column, path) and how to fix it, so the
command line prints its message in one line and exits non-zero instead of a traceback (which
`--debug` still shows). Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class SkyworkError(Exception):
    """A failure the user can fix from its message alone (bad recipe, missing input, refused run)."""


class DataError(SkyworkError, ValueError):
    """Input data that cannot be used as asked: a missing column, an empty result, an unreadable file."""
