"""A small client for a running WebUI's public HTTP API: img2img with the InterStable script, and our status route.

The request is built from the same argument table as the script's ``ui()`` (:data:`interstable.args.ARGS`), so
``script_args`` always has every value, in order, with choices as the labels the WebUI's dropdowns hold. Building,
decoding and saving are pure functions; :class:`WebUIClient` only moves bytes, with retries for the failures where a
retry can help (nothing answers yet, 502/503/504) and none where it cannot (the script refused a value).

``requests`` is imported when a :class:`WebUIClient` is made, so importing this package stays cheap. The client lives
in :mod:`interstable.client.http`, the pure functions in :mod:`interstable.client.payload` and the exceptions in
:mod:`interstable.client.errors`; their public names are re-exported here.

::

    InterStableError
    └── ClientError                  talking to the WebUI failed
        ├── WebUIConnectionError     nothing answers at the URL (after the retries), or no answer in time
        ├── WebUIHTTPError           the WebUI answered with an error status (``status``, ``detail``)
        │   └── ExtensionMissingError    404 from ``/interstable/v1/...``: not installed, or no ``--api``
        └── WebUIResponseError       the answer is not what the API documents (not JSON, no images)
"""

from interstable.client.errors import (
    ClientError,
    ExtensionMissingError,
    WebUIConnectionError,
    WebUIHTTPError,
    WebUIResponseError,
)
from interstable.client.http import AUTH_ENV, WebUIClient, auth_from_env, error_detail, parse_auth
from interstable.client.payload import (
    CLIP_SKIP_MAX,
    CLIP_SKIP_SETTING,
    SCRIPT_NAME,
    Img2ImgResult,
    build_img2img_request,
    check_generation_options,
    image_extension,
    parse_img2img_response,
    save_outputs,
    script_args,
)

__all__ = [
    "AUTH_ENV",
    "CLIP_SKIP_MAX",
    "CLIP_SKIP_SETTING",
    "SCRIPT_NAME",
    "ClientError",
    "ExtensionMissingError",
    "Img2ImgResult",
    "WebUIClient",
    "WebUIConnectionError",
    "WebUIHTTPError",
    "WebUIResponseError",
    "auth_from_env",
    "build_img2img_request",
    "check_generation_options",
    "error_detail",
    "image_extension",
    "parse_auth",
    "parse_img2img_response",
    "save_outputs",
    "script_args",
]
