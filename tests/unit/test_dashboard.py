"""The Grafana dashboard and the alerts the chart ships, and the autoscaling queries: valid JSON
and YAML, and every metric they name is one vLLM 0.33 exports (vllm_metrics.py, itself checked
against vLLM's source by test_vllm_metrics_contract.py) or the operator exports (read from its
own registry, as /metrics serves it)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gptoss_operator import metrics
from gptoss_operator.render.autoscaling import query
from gptoss_operator.validation import parse_spec
from gptoss_operator.vllm_metrics import exported_series
from support.observability import DASHBOARD, alert_queries, dashboard_queries

# A metric name in PromQL: vLLM's `vllm:` prefix or the operator's; `up` and functions aside.
NAME = re.compile(r"\b(vllm:[a-z0-9_:]+|gptoss_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
PANELS_SEEN = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:generation_tokens_total",
    "vllm:kv_cache_usage_perc",
    "vllm:num_preemptions_total",
)


class _Controller:
    """Enough of a controller for every level family to appear."""

    indexes: dict[str, Any] = {
        "gptoss_by_key": {("ns", "x"): [{"metadata": {}, "spec": {}, "status": {}}]}
    }

    def queue_depth(self) -> tuple[int, int, int]:
        return (0, 0, 0)

    def resources(self) -> list[tuple[str, str]]:
        return [("ns", "x")]


@pytest.fixture(scope="module")
def operator_series() -> set[str]:
    """Every series name the operator's /metrics serves (histogram buckets, counter totals),
    from the families it declares (a labelled counter has no sample before its first event)."""
    metrics.watch(_Controller())
    try:
        text = generate_latest(REGISTRY).decode()
    finally:
        metrics.watch(None)
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        if family.name.startswith("gptoss_")
        for suffix in SUFFIXES[family.type]
    }


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "gptoss-operator"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    exprs = " ".join(e for _, e in dashboard_queries())
    for series in PANELS_SEEN:
        assert series in exprs, f"the dashboard shows no {series}"


@pytest.mark.parametrize(
    ("where", "expr"), dashboard_queries() + alert_queries(), ids=lambda v: str(v)[:40]
)
def test_every_query_names_exported_metrics(
    where: str, expr: str, operator_series: set[str]
) -> None:
    names = set(NAME.findall(expr))
    assert names, f"{where}: no metric found in {expr}"
    unknown = names - exported_series() - operator_series
    assert not unknown, (
        f"{where}: {sorted(unknown)} are exported by neither vLLM 0.33 nor the operator"
    )


@pytest.mark.parametrize("metric", ["RequestsWaiting", "KVCacheUsage", "TimeToFirstToken"])
def test_autoscaling_queries_name_exported_metrics(metric: str) -> None:
    spec = {
        "model": {"name": "gpt-oss-20b"},
        "autoscaling": {"enabled": True, "metric": metric, "prometheusAddress": "http://p:9090"},
    }
    names = set(NAME.findall(query("x", "ns", parse_spec(spec))))
    assert names
    assert names <= exported_series()
