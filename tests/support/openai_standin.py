"""A scripted stand-in for an OpenAI-compatible LLM server (``/v1/models``, streamed ``/v1/chat/completions``) on
127.0.0.1, for tests of the server backend's HTTP behaviour (the real server is tested in tests/real_models).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Script:
    """What the stand-in answers: a queue of statuses for chat requests, the models, and what it received."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.models = [{"id": "smol", "owned_by": "me"}, {"id": "big", "owned_by": "me"}]
        self.pieces = ["red house", ", ", "warm light"]
        self.received: list[dict] = []


@contextlib.contextmanager
def serve() -> Iterator[Script]:
    """Serve on a free port of 127.0.0.1; the yielded :class:`Script` has its ``url``."""
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            script.received.append({"path": self.path, "auth": self.headers.get("Authorization")})
            if self.path == "/v1/models":
                self._send(200, json.dumps({"data": script.models}).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.received.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            status = script.statuses.pop(0) if script.statuses else 200
            if status == 401:
                self._send(401, json.dumps({"error": {"message": "invalid api key"}}).encode())
                return
            if status != 200:
                self._send(status, json.dumps({"error": {"message": f"busy ({status})"}}).encode())
                return
            events = [{"choices": [{"delta": {"content": p}, "finish_reason": None}]} for p in script.pieces]
            events.append({"choices": [{"delta": {}, "finish_reason": "stop"}]})
            data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            self._send(200, data.encode(), "text/event-stream")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
