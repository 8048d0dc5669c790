"""``interstable status``: what a running WebUI's InterStable reports (``GET /interstable/v1/status``).

Also holds the connection options (``--url``, ``--api-auth``, ``--timeout``, ``--retries``) that ``run`` shares.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interstable.client import WebUIClient

DEFAULT_URL = "http://127.0.0.1:7860"
URL_ENV = "INTERSTABLE_WEBUI_URL"


def add_connection_arguments(parser: argparse.ArgumentParser, *, timeout: float) -> None:
    """Add ``--url``, ``--api-auth``, ``--timeout`` and ``--retries`` to ``parser``."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=None,
        help=f"the WebUI, started with --api (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--api-auth",
        metavar="USER:PASS",
        default=None,
        help="credentials of a WebUI started with --api-auth (default: $INTERSTABLE_API_AUTH)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        metavar="S",
        help="seconds to wait for an answer (default %(default)g)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=3,
        metavar="N",
        help="retries after a refused connection or HTTP 502/503/504, with backoff (default %(default)s)",
    )


def webui_url(args: argparse.Namespace) -> str:
    """The URL chosen on the command line, else from the environment, else the WebUI's default address."""
    return (args.url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def make_client(args: argparse.Namespace, parser: argparse.ArgumentParser) -> WebUIClient:
    """Return a :class:`~interstable.client.WebUIClient` for the connection options (bad ones are usage errors)."""
    from interstable.client import WebUIClient, auth_from_env
    from interstable.errors import ConfigError

    if not getattr(args, "verbose", False):  # urllib3 logs each retry as a warning; the final error says it all
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        return WebUIClient(
            webui_url(args), auth=auth_from_env(args.api_auth), timeout=args.timeout, retries=args.retries
        )
    except ConfigError as exc:
        parser.error(f"--{exc}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``status`` command."""
    parser = subparsers.add_parser(
        "status",
        help="show what a running WebUI's InterStable reports",
        description="Ask a running WebUI (started with --api) for InterStable's status: version, host, llama-cpp, "
        "GPU offload, LLM models folder and models, free VRAM.",
    )
    add_connection_arguments(parser, timeout=30)
    parser.add_argument("--json", action="store_true", help="print the server's JSON as it came")
    parser.set_defaults(func=lambda args: run(args, parser))


def format_value(key: str, value: Any) -> str:
    """One status value for people: yes/no, lists joined, bytes of free VRAM in GB."""
    if value is None:
        return "not installed" if key == "llama_cpp" else "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if key == "free_vram" and isinstance(value, int):
        return f"{value / 1e9:.2f} GB"
    return str(value)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Print the status as ``key: value`` lines (or JSON); exit 1 when the WebUI or the extension is not there."""
    with make_client(args, parser) as client:
        report = client.status()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"url: {client.url}")
    for key, value in report.items():
        print(f"{key}: {format_value(key, value)}")
    return 0
