"""A process's worth of vLLM /metrics for a real Prometheus to scrape: the metric names and
labels vLLM 0.33 exports (`vllm:num_requests_waiting{model_name, engine}` ...), with values the
test sets. No engine behind it: the names are what matters to the queries, and those are
checked against vLLM's source (tests/unit/test_vllm_metrics_contract.py)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

MODEL = "openai/gpt-oss-20b"


class VllmMetrics:
    """`with VllmMetrics() as pod: pod.waiting(3)`; Prometheus scrapes `pod.target`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self._waiting = Gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            labels,
            registry=self.registry,
        )
        self._running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=self.registry,
        )
        self._kv = Gauge(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            labels,
            registry=self.registry,
        )
        self.waiting(0)
        self._running.labels(MODEL, "0").set(0)
        self._kv.labels(MODEL, "0").set(0)
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                data = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def waiting(self, value: float) -> None:
        self._waiting.labels(MODEL, "0").set(value)

    def __enter__(self) -> VllmMetrics:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
