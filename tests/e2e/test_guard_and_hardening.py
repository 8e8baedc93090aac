"""Security on the test bed: a `restricted` namespace admits the hardened pod with a non-root
user, the API-key middleware's ConfigMap comes and goes with the key, the NetworkPolicy's
selectors select what they say, and a missing API-key Secret is diagnosed by name."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render import render_children
from support.gptoss import apply, child, condition, get, manifest, wait_condition
from support.operator import OperatorProcess
from support.testbed import Testbed, wait_until

pytestmark = pytest.mark.testbed
KEY_VALUE = "sk-e2e-5b1d0c"  # the Secret's value: must appear in no child and no status
KEY_REF = {"apiKeySecretRef": {"name": "llm-key", "key": "token"}}


def _secret(testbed: Testbed, namespace: str) -> None:
    testbed.kubectl(
        "-n",
        namespace,
        "create",
        "secret",
        "generic",
        "llm-key",
        f"--from-literal=token={KEY_VALUE}",
    )


def _pods(testbed: Testbed, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={name}"
    return list(testbed.get("-n", namespace, "pods", "-l", selector)["items"])


def test_restricted_namespace_admits_a_non_root_pod(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    # The root-user case (refused, FailedCreate) is test_operator_status's admission test.
    testbed.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    _secret(testbed, namespace)
    apply(
        testbed,
        namespace,
        manifest("nonroot", api=KEY_REF, securityContext={"runAsUser": 1000, "runAsGroup": 1000}),
    )
    cr = wait_condition(testbed, namespace, "nonroot", "Ready", reason="Available", timeout=60)
    assert cr["status"]["ready"] == "1/1"
    (pod,) = _pods(testbed, namespace, "nonroot")
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    volumes = {v["name"] for v in pod["spec"]["volumes"]}
    assert "api-key-middleware" in volumes
    # No token volume: the ServiceAccount admission plugin honours automount false.
    assert not [v for v in volumes if v.startswith("kube-api-access")]


def test_restricted_namespace_refuses_root_for_the_user_alone(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    """Without runAsUser the image's root user is the only thing `restricted` objects to: the rest
    of the hardening (capabilities, privilege escalation, seccomp, volumes) is already there."""
    testbed.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    apply(testbed, namespace, manifest("root", api=KEY_REF))
    cr = wait_condition(testbed, namespace, "root", "Degraded", reason="FailedCreate")
    message = condition(cr, "Degraded")["message"]
    assert 'violates PodSecurity "restricted:latest": runAsNonRoot != true' in message
    for hardened in ("allowPrivilegeEscalation", "capabilities", "seccompProfile", "volumes"):
        assert hardened not in message
    assert _pods(testbed, namespace, "root") == []


def test_key_stays_out_of_children_and_status_and_middleware_follows_the_key(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    _secret(testbed, namespace)
    apply(testbed, namespace, manifest("keyed", api=KEY_REF))
    wait_condition(testbed, namespace, "keyed", "Ready", reason="Available")
    config_map = child(testbed, namespace, "configmap", "keyed-api-key-middleware")
    assert config_map is not None
    assert config_map["metadata"]["ownerReferences"][0]["name"] == "keyed"
    assert "class ApiKeyMiddleware" in config_map["data"]["gptoss_api_key.py"]
    everything = [
        testbed.kubectl("-n", namespace, "get", kind, "-o", "json").stdout
        for kind in (
            "gptossdeployment", "deployment", "replicaset", "pod", "configmap", "service", "event"
        )
    ]  # fmt: skip
    assert KEY_VALUE not in "".join(everything)
    assert KEY_VALUE not in (testbed.state / "logs" / "operator.log").read_text(errors="replace")

    apply(testbed, namespace, manifest("keyed"))  # the key removed: the middleware goes
    wait_until(
        lambda: child(testbed, namespace, "configmap", "keyed-api-key-middleware") is None,
        30,
        "the middleware ConfigMap to be pruned",
    )

    def unguarded() -> bool:
        # The new pod template follows after the settle window (docs/reliability.md).
        deployment = child(testbed, namespace, "deployment", "keyed") or {}
        template = deployment.get("spec", {}).get("template", {}).get("spec", {})
        return "--middleware" not in (template.get("containers") or [{}])[0].get("args", [])

    wait_until(unguarded, 30, "the pod template without the middleware")


def test_missing_api_key_secret_is_named(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    apply(
        testbed,
        namespace,
        manifest(
            "nokey",
            api={"apiKeySecretRef": {"name": "absent", "key": "token"}},
            podLabels={"sim.gptoss.dev/behavior": "missing-secret"},
        ),
    )
    cr = wait_condition(testbed, namespace, "nokey", "Degraded", reason="SecretMissing", timeout=30)
    message = condition(cr, "Degraded")["message"]
    assert "Secret absent with key token (spec.api.apiKeySecretRef)" in message
    assert 'kubelet: secret "absent" not found' in message
    ready = condition(cr, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretMissing")
    (pod,) = _pods(testbed, namespace, "nokey")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"


def _network_policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    parsed = GptOssDeploymentSpec.model_validate({"model": {"name": "gpt-oss-20b"}, **spec})
    (policy,) = [
        c for c in render_children(name, namespace, parsed) if c["kind"] == "NetworkPolicy"
    ]
    return policy


def _selects(testbed: Testbed, kind: str, selector: dict[str, str], *scope: str) -> set[str]:
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    items = testbed.get(*scope, kind, "-l", labels)["items"] if labels else []
    return {i["metadata"]["name"] for i in items}


def test_network_policy_selectors_as_rendered(
    testbed: Testbed, operator: OperatorProcess, namespace: str
) -> None:
    clients = f"{namespace}-clients"
    monitoring = f"{namespace}-mon"
    for extra in (clients, monitoring):
        testbed.kubectl("create", "namespace", extra)
    try:
        testbed.kubectl("label", "namespace", clients, "team=ml")
        spec = {
            "networkPolicy": {
                "enabled": True,
                "fromNamespaceSelector": {"team": "ml"},
                "metricsNamespaceSelector": {"kubernetes.io/metadata.name": monitoring},
            },
            "podMonitor": {"enabled": True},
        }
        # Applied as rendered (the test bed has no PodMonitor CRD for the operator to apply).
        rendered = _network_policy("np", namespace, spec)
        testbed.apply(namespace, rendered)
        live = testbed.get("-n", namespace, "networkpolicy", "np")
        assert live["spec"] == rendered["spec"], "the apiserver changed the rendered policy"
        clients_rule, scrape_rule = live["spec"]["ingress"]
        assert _selects(
            testbed, "namespaces", clients_rule["from"][0]["namespaceSelector"]["matchLabels"]
        ) == {clients}
        assert _selects(
            testbed, "namespaces", scrape_rule["from"][0]["namespaceSelector"]["matchLabels"]
        ) == {monitoring}
        assert scrape_rule["ports"] == [{"protocol": "TCP", "port": 8000}]

        # Through the operator: the policy's pod selector picks exactly this model's pods.
        apply(testbed, namespace, manifest("served", networkPolicy={"enabled": True}))
        wait_condition(testbed, namespace, "served", "Ready", reason="Available")
        policy = child(testbed, namespace, "networkpolicy", "served")
        assert policy is not None
        assert policy["spec"]["ingress"] == [
            {"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8000}]}
        ]
        pods = {p["metadata"]["name"] for p in _pods(testbed, namespace, "served")}
        selected = _selects(
            testbed, "pods", policy["spec"]["podSelector"]["matchLabels"], "-n", namespace
        )
        assert selected == pods
        assert len(pods) == get(testbed, namespace, "served")["spec"].get("replicas", 1)
    finally:
        for extra in (clients, monitoring):
            testbed.kubectl("delete", "namespace", extra, "--wait=false", check=False)
