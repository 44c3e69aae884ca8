"""Errors that carry a message meant for the person, not a traceback."""


class AtomError(Exception):
    """Base of the project's user-facing errors."""


class CommandError(AtomError):
    """Bad command-line input: printed as one line on stderr, exit code 2."""


class VideoError(AtomError):
    """A video or frame folder that cannot be opened or read."""


class ModelFileError(AtomError):
    """A model file of the wrong kind, damaged, or unsafe to load."""


class FormatError(AtomError):
    """An annotation file that does not follow its format; the message names the file and line."""
