"""trailmill's exceptions: every one is a :class:`trailmill.Error`."""

from __future__ import annotations

__all__ = ["Error", "DecodeError", "SourceError", "ValidationError", "DecodeWarning", "ReadWarning"]


class Error(Exception):
    """Base class of every exception trailmill raises."""


class SourceError(Error):
    """A source cannot be used: a path that does not exist, a bucket that
    cannot be reached, or a file that cannot be read (``path`` names it)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DecodeError(Error):
    """A log file is not a CloudTrail log file trailmill can read: bad gzip,
    bad JSON, no ``Records``, over a size limit. ``path`` names the file,
    ``reason`` says what is wrong with it, and ``kind`` is ``"decode"``, or
    ``"read"``, ``"unattested"``, ``"sink"`` or ``"internal"`` for the other
    ways a file can fail."""

    def __init__(self, path: str, reason: str, kind: str = "decode") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.kind = kind


class ValidationError(Error):
    """A validation could not run: bad arguments, no public keys, a source
    that cannot be listed. (Files that fail validation are verdicts in the
    :class:`trailmill.Report`, not exceptions.)"""


class DecodeWarning(UserWarning):
    """Issued for each file a scan skipped because it could not be read,
    when neither ``strict`` nor ``on_error`` says otherwise."""


class ReadWarning(UserWarning):
    """Issued for something worth telling about a file that was read: a
    record without CloudTrail's core fields, an unexpected ``eventVersion``,
    a log file named unlike CloudTrail's. Its events were delivered. The
    message starts with the file's name."""
