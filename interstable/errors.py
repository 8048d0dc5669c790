"""Exceptions raised by InterStable.

Every error the user can cause or fix is an :class:`InterStableError`; the message says what failed, the bad value and
how to fix it. Errors are never written into a prompt, a caption or an image.

::

    InterStableError
    ├── ConfigError            a parameter or script argument is out of range or of the wrong type (also ValueError)
    │   └── SettingError           ... of the server's own setup (a WebUI setting, a folder): not the caller's to fix
    ├── InputImageError        the init image or mask cannot be used (also ValueError)
    ├── ModelError             an LLM or captioning model problem
    │   ├── ModelNotFoundError     the file or name does not exist (also FileNotFoundError)
    │   └── ModelLoadError         the file exists but cannot be loaded (not a GGUF, truncated, out of memory)
    ├── CaptionError           the interrogator failed or returned an error text
    ├── PromptError            the LLM produced nothing usable (empty, refusal)
    └── JobInterrupted         the user pressed Interrupt or Skip; not a failure
"""

from __future__ import annotations

__all__ = [
    "CaptionError",
    "ConfigError",
    "InputImageError",
    "InterStableError",
    "JobInterrupted",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PromptError",
    "SettingError",
]


class InterStableError(Exception):
    """Base class of every error InterStable raises on purpose."""


class ConfigError(InterStableError, ValueError):
    """A parameter is out of range, of the wrong type or an unknown choice.

    Attributes:
        field: The name (or label) of the bad parameter.
        value: The value that was given.
    """

    def __init__(self, field: str, value: object, fix: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {_shown(value)} is not valid; {fix}")


_SHOWN_CHARS = 120


def _shown(value: object) -> str:
    """``repr(value)``, cut to a readable length (an API caller may send a megabyte where a number belongs)."""
    try:
        text = repr(value)
    except Exception:  # an int of more than 4300 digits has no repr; the message must still come out
        text = f"<{type(value).__name__}>"
    if len(text) > _SHOWN_CHARS:
        text = f"{text[: _SHOWN_CHARS - 30]}... ({len(text):,} characters)"
    return text


class SettingError(ConfigError):
    """A server-side setting (Settings -> InterStable, a command-line flag, a models folder) is wrong.

    Raised where the value comes from the server's setup rather than the request: an API caller cannot fix it, so
    the WebUI routes answer 409 (the setup is in the way), not 422.
    """


class InputImageError(InterStableError, ValueError):
    """The init image (or its mask) cannot be used as given."""


class ModelError(InterStableError):
    """A model could not be found or loaded."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model file or model name does not exist."""


class ModelLoadError(ModelError):
    """A model file exists but could not be loaded."""


class CaptionError(InterStableError):
    """The interrogator failed; the message says why. Never used as a caption."""


class PromptError(InterStableError):
    """The LLM returned nothing usable (empty or refused). Never used as a prompt."""


class JobInterrupted(InterStableError):  # noqa: N818 (not an error: a user request)
    """The user interrupted or skipped the job; work done so far is kept."""
