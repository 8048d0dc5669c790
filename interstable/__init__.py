"""InterStable: seeded random lines, a caption and a local LLM prompt for img2img.

The core package never imports the WebUI (``modules``, ``gradio``, ``launch``) nor heavy libraries at import time;
``interstable.webui`` is the only host-coupled subpackage.
"""

from __future__ import annotations

__version__ = "0.1.0"

TITLE = "InterStable LLM R-Line"
"""The script title; the WebUI API's ``script_name`` is its lower case. Public contract: never change it."""
