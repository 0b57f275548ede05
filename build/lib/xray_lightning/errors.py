"""Errors that carry a message meant for the user: the CLIs print them without a traceback."""


class XrayLightningError(Exception):
    """Base class of every error whose message alone tells the user what to fix."""


class CheckpointError(XrayLightningError):
    """A checkpoint is missing, unreadable, or of another stage or architecture."""


class NonFiniteLossError(XrayLightningError):
    """The training loss became NaN or infinite."""
