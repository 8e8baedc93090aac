"""The vLLM metrics the project reads (vllm_metrics.py: the autoscaling queries, the dashboard,
the alerts) exist with that type in the pinned vLLM's own source, and vLLM serves them where the
PodMonitor scrapes: path /metrics on the serving port (named `http`).

Reads vLLM's source files without importing vLLM (no GPU, no engine): the names are the `name=`
of the metric constructors in vllm/v1/metrics/loggers.py.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from gptoss_operator.render import render_children
from gptoss_operator.validation import parse_spec
from gptoss_operator.vllm_metrics import VLLM_METRICS

pytestmark = pytest.mark.contract

CONSTRUCTORS = {
    "_gauge_cls": "gauge",
    "_counter_cls": "counter",
    "_histogram_cls": "histogram",
    "Gauge": "gauge",
    "Counter": "counter",
    "Histogram": "histogram",
}


def _vllm() -> Path:
    spec = importlib.util.find_spec("vllm")
    assert spec is not None, "the vllm extra is not installed (make contract)"
    assert spec.origin is not None
    return Path(spec.origin).parent


def declared_metrics() -> dict[str, str]:
    """name -> type of every metric vLLM's loggers declare."""
    tree = ast.parse((_vllm() / "v1" / "metrics" / "loggers.py").read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        ctor = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        for kw in node.keywords:
            if (
                ctor in CONSTRUCTORS
                and kw.arg == "name"
                and isinstance(kw.value, ast.Constant)
                and str(kw.value.value).startswith("vllm:")
            ):
                found[str(kw.value.value)] = CONSTRUCTORS[ctor]
    return found


def test_every_metric_read_exists_with_its_type() -> None:
    declared = declared_metrics()
    assert len(declared) > 20, f"the parse found too few metrics: {declared}"
    wrong = {
        name: (kind, declared.get(name))
        for name, kind in VLLM_METRICS.items()
        if declared.get(name) != kind
    }
    assert not wrong, f"(ours, vLLM's) differ: {wrong}"


def test_vllm_serves_metrics_where_the_pod_monitor_scrapes() -> None:
    source = (_vllm() / "entrypoints" / "serve" / "instrumentator" / "metrics.py").read_text()
    assert 'Mount("/metrics"' in source
    spec = parse_spec({"model": {"name": "gpt-oss-20b"}, "podMonitor": {"enabled": True}})
    children = {c["kind"]: c for c in render_children("m", "ns", spec)}
    (endpoint,) = children["PodMonitor"]["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    container = children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # The named port is the one vLLM's API server (and so its /metrics) listens on.
    args = container["args"]
    assert args[args.index("--port") + 1] == str(ports[endpoint["port"]])
