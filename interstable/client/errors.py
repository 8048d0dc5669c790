"""The exceptions of :mod:`interstable.client`, which re-exports them; the tree is drawn in its docstring."""

from __future__ import annotations

from interstable.errors import InterStableError

__all__ = ["ClientError", "ExtensionMissingError", "WebUIConnectionError", "WebUIHTTPError", "WebUIResponseError"]


class ClientError(InterStableError):
    """Talking to the WebUI failed; the message names the URL and what to do."""


class WebUIConnectionError(ClientError):
    """Nothing answers at the URL (after the retries), or the answer did not come within the timeout."""


class WebUIHTTPError(ClientError):
    """The WebUI answered with an error status.

    Attributes:
        status: The HTTP status code.
        detail: The server's own explanation (for a bad script argument it names the position and the label).
    """

    def __init__(self, message: str, *, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ExtensionMissingError(WebUIHTTPError):
    """``/interstable/v1/...`` is not there: the extension is not installed, or the WebUI runs without ``--api``."""


class WebUIResponseError(ClientError):
    """The answer is not what the WebUI's API documents (not JSON, no images, undecodable base64)."""
