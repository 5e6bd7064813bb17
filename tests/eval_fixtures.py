"""Test helpers for the evaluation tests: a scripted OpenAI-compatible chat server on 127.0.0.1.

`ScriptedChatServer(reply)` answers POST /v1/chat/completions with `reply(body) -> str` (body:
the request JSON, with "model" and "messages") and counts requests per model, so tests can
check that a rerun makes no new calls. Use it as a context manager; its `spec(model)` is the
engine spec string `openai:http://127.0.0.1:<port>/v1#<model>`. Subclasses may override `hold`
(True: leave the request unanswered) and `answered` (called once a reply has been written).
Given `complete(body) -> dict`, POST /v1/completions is answered with {"choices": [that dict]}
(body: the request JSON, its "prompt" a list of token ids for the openai engine's `generate`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class ScriptedChatServer:
    def __init__(self, reply: Callable[[dict[str, Any]], str],
                 complete: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.reply, self.complete = reply, complete
        self.calls: Counter = Counter()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "ScriptedChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def spec(self, model: str) -> str:
        return f"openai:{self.url}#{model}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if server.hold(body):
                    return  # never answered: the connection just closes
                with server.lock:
                    server.calls[body["model"]] += 1
                try:
                    if self.path.endswith("/chat/completions"):
                        status, payload = 200, {"choices": [{"message": {
                            "role": "assistant", "content": server.reply(body)}}]}
                    elif self.path.endswith("/completions") and server.complete is not None:
                        status, payload = 200, {"choices": [server.complete(body)]}
                    else:
                        status, payload = 404, {"error": f"no route {self.path}"}
                except Exception as err:  # a script bug shows up as a 400 naming it
                    status, payload = 400, {"error": repr(err)}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                server.answered(body)

        return Handler

    def hold(self, body: dict[str, Any]) -> bool:
        """Whether to leave this request unanswered (never, here)."""
        return False

    def answered(self, body: dict[str, Any]) -> None:
        """Called after the reply to `body` has been written (nothing to do, here)."""
