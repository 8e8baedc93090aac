"""The smallest stand-in for Prometheus that keeps KEDA's real query path: an HTTP server on
127.0.0.1 answering Prometheus' instant-query API (GET /api/v1/query?query=...&time=...) the way
Prometheus does, with a value the test sets for each query. KEDA's prometheus scaler sends the
ScaledObject's PromQL as it is; a query nobody set a value for answers an empty vector (as
Prometheus does for series that do not exist), and every query asked is recorded, so a test
also proves which PromQL KEDA sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class PromStub:
    """`with PromStub() as prom: prom.set(query, 3)`; `prom.url` is its serverAddress."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.asked: Counter[str] = Counter()
        # (time.monotonic(), query, value answered) of every query with a value.
        self.answers: list[tuple[float, str, float]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/api/v1/query":
                    self.send_error(404)
                    return
                query = parse_qs(url.query).get("query", [""])[0]
                stub.asked[query] += 1
                self._answer(stub.answer(query))

            def _answer(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set(self, query: str, value: float) -> None:
        self.values[query] = value

    def answer(self, query: str) -> dict[str, Any]:
        result = []
        if query in self.values:
            value = float(self.values[query])
            self.answers.append((time.monotonic(), query, value))
            result = [{"metric": {}, "value": [time.time(), repr(value)]}]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    def __enter__(self) -> PromStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
