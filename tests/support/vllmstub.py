"""A process's worth of vLLM /metrics for a real Prometheus to scrape: the metric names and
labels vLLM 0.33 exports (`vllm:num_requests_waiting{model_name, engine}` ...), with values the
test sets. No engine behind it: the names are what matters to the queries, and those are
checked against vLLM's source (tests/unit/test_vllm_metrics_contract.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from support.httpstub import Answer, StubServer

MODEL = "openai/gpt-oss-20b"


class VllmMetrics(StubServer):
    """`with VllmMetrics() as pod: pod.waiting(3)`; Prometheus scrapes `pod.target`."""

    def __init__(self) -> None:
        super().__init__()
        self.target = self.address
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

    def respond(self, path: str, query: dict[str, str]) -> Answer:
        if path != "/metrics":
            return None
        return "text/plain; version=0.0.4", generate_latest(self.registry)

    def waiting(self, value: float) -> None:
        self._waiting.labels(MODEL, "0").set(value)
