"""The vLLM metrics this project reads: the autoscaling queries, the Grafana dashboard and the
alerts. Names as vLLM 0.33 exports them at /metrics (vllm/v1/metrics/loggers.py: a counter
`vllm:x` is exported as `vllm:x_total`, a histogram as `_bucket`, `_sum` and `_count`); the
contract test (tests/unit/test_vllm_metrics_contract.py) checks each against vLLM's source.
"""

from __future__ import annotations

from typing import Literal

MetricType = Literal["gauge", "counter", "histogram"]

VLLM_METRICS: dict[str, MetricType] = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:num_preemptions": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
}
"""Metric name (as vLLM declares it) and type."""

_SUFFIXES: dict[MetricType, tuple[str, ...]] = {
    "gauge": ("",),
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def exported_series() -> set[str]:
    """Every series name the metrics above appear under at /metrics."""
    return {name + suffix for name, kind in VLLM_METRICS.items() for suffix in _SUFFIXES[kind]}
