"""Every PromQL query the project ships parses with Prometheus' own parser (v3.16, built from
the Go module proxy behind tests/testbed/gomod/promql/main.go): the dashboard's panels and
variables, the alerts, and the autoscaler's query for every metric. Grafana's variables are put
in as Grafana would before Prometheus sees the query. The metric names in them are checked
against vLLM's and the operator's in tests/unit/test_dashboard.py."""

from __future__ import annotations

import json
import subprocess

import pytest

from gptoss_operator.render.autoscaling import query
from gptoss_operator.validation import parse_spec
from support.observability import alert_queries, dashboard_queries
from support.testbed import Testbed

pytestmark = pytest.mark.testbed
GRAFANA = {
    "$__rate_interval": "1m",
    "$namespace": "ml",
    "$deployment": "chat",
    "$datasource": "prometheus",
}


def autoscaling_queries() -> list[tuple[str, str]]:
    found = []
    for metric in ("RequestsWaiting", "KVCacheUsage", "TimeToFirstToken"):
        spec = {
            "model": {"name": "gpt-oss-20b"},
            "autoscaling": {"enabled": True, "metric": metric, "prometheusAddress": "http://p"},
        }
        found.append((metric, query("chat", "ml", parse_spec(spec))))
    return found


def grafana(expr: str) -> str:
    for variable, value in GRAFANA.items():
        expr = expr.replace(variable, value)
    return expr


def parse(testbed: Testbed, exprs: list[str]) -> list[str]:
    out = subprocess.run(
        [str(testbed.bins["PROMQL_BIN"] / "promql")],
        input=json.dumps(exprs),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    errors: list[str] = json.loads(out)
    return errors


def test_the_checker_refuses_bad_promql(testbed: Testbed) -> None:
    ok, unclosed, dangling = parse(testbed, ["sum(up)", "sum(up", "rate(up[5m]) >"])
    assert ok == ""
    assert "unclosed left parenthesis" in unclosed
    assert "unexpected end of input" in dangling


def test_every_shipped_query_parses(testbed: Testbed) -> None:
    queries = dashboard_queries() + alert_queries() + autoscaling_queries()
    templated = [
        ("label_values" in e, where, e) for where, e in queries
    ]  # Grafana's own query syntax, not PromQL: checked for the selector inside it only
    exprs = [grafana(_inner(e) if is_label_values else e) for is_label_values, _, e in templated]
    errors = parse(testbed, exprs)
    bad = [
        f"{where}: {e} -> {err}"
        for (_, where, e), err in zip(templated, errors, strict=True)
        if err
    ]
    assert not bad, "\n".join(bad)
    assert len(exprs) > 30


def _inner(label_values: str) -> str:
    """The series selector of Grafana's `label_values(selector, label)`."""
    return label_values[len("label_values(") :].rsplit(",", 1)[0]
