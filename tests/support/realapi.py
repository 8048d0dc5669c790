"""Helpers for the real-host tests (tests/realhost): script_args by key, image coding, the test image's colour."""

from __future__ import annotations

import base64
import io

from PIL import Image

from interstable.args import ARGS

SCRIPT_NAME = "interstable llm r-line"
USER = "<lora:none_such:0.5>, (watercolour:1.2)"
KEYS = [a.key for a in ARGS]
BASE = (120, 160, 200)
"""The test image's one colour: a pixel of another colour in a lined image is a stroke pixel."""


def script_args(**values) -> list:
    """script_args with ``values`` by key, the rest as null (the defaults)."""
    args: list = [None] * len(KEYS)
    for key, value in values.items():
        args[KEYS.index(key)] = value
    return args


NO_CAPTION = script_args(caption_backend="None")


def encode(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode(image: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(image)))
