"""Errors a user can act on. Front ends show their message and nothing else (no traceback)."""


class DepthStudioError(Exception):
    """Base class: the message is written for the user."""


class InputError(DepthStudioError):
    """An input file (image, depth map, video) cannot be used."""


class ModelError(DepthStudioError):
    """A model cannot be found, downloaded, or run."""


class OutputError(DepthStudioError):
    """An output cannot be written."""


class SettingsError(DepthStudioError):
    """A parameter is out of range or inconsistent."""
