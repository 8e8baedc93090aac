"""The smallest stand-in for Prometheus that keeps KEDA's real query path: an HTTP server on
127.0.0.1 answering Prometheus' instant-query API (GET /api/v1/query?query=...&time=...) the way
Prometheus does, with a value the test sets for each query. KEDA's prometheus scaler sends the
ScaledObject's PromQL as it is; a query nobody set a value for answers an empty vector (as
Prometheus does for series that do not exist), and every query asked is recorded, so a test
also proves which PromQL KEDA sent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from support.httpstub import Answer, StubServer


class PromStub(StubServer):
    """`with PromStub() as prom: prom.set(query, 3)`; `prom.url` is its serverAddress."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"http://{self.address}"
        self.values: dict[str, float] = {}
        self.asked: Counter[str] = Counter()
        # (time.monotonic(), query, value answered) of every query with a value.
        self.answers: list[tuple[float, str, float]] = []

    def respond(self, path: str, query: dict[str, str]) -> Answer:
        if path != "/api/v1/query":
            return None
        promql = query.get("query", "")
        self.asked[promql] += 1
        return "application/json", json.dumps(self.answer(promql)).encode()

    def set(self, query: str, value: float) -> None:
        self.values[query] = value

    def answer(self, query: str) -> dict[str, Any]:
        result = []
        if query in self.values:
            value = float(self.values[query])
            self.answers.append((time.monotonic(), query, value))
            result = [{"metric": {}, "value": [time.time(), repr(value)]}]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}
