"""The PromQL the chart ships: the Grafana dashboard's panels and variables, and the alerts."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "gptoss-operator"
DASHBOARD = CHART / "dashboards" / "gptoss.json"
ALERTS = CHART / "alerts" / "gptoss.rules.yaml"


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    found = [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            found.append((variable["name"], variable["query"]["query"]))
    return found


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]
