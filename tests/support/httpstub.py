"""A local HTTP server for stand-ins (Prometheus' query API, a vLLM pod's /metrics): one
`respond(path, query)` a stub defines, served on 127.0.0.1 at a free port from a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

# What `respond` answers: (content type, body), or None for 404.
Answer = tuple[str, bytes] | None


class StubServer:
    """`with Stub() as stub:` serves `stub.respond` at `stub.address` until the block ends."""

    def __init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                answer = stub.respond(url.path, {k: v[0] for k, v in parse_qs(url.query).items()})
                if answer is None:
                    self.send_error(404)
                    return
                content_type, data = answer
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, path: str, query: dict[str, str]) -> Answer:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
