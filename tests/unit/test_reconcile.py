"""The reconcile plan is pure: a spec and what is live in, the writes out."""

from __future__ import annotations

import copy
from typing import Any

from gptoss_operator.reconcile import Live, is_subset, plan

NOW = "2026-11-25T00:00:00Z"


def resource(spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "gptoss.dev/v1alpha1",
        "kind": "GptOssDeployment",
        "metadata": {
            "name": "chat",
            "namespace": "ml",
            "uid": "u-1",
            "generation": 1,
            "resourceVersion": "10",
        },
        "spec": spec or {"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "L40S"}},
    }


def settled_children() -> list[dict[str, Any]]:
    """The children of `resource()` as the cluster holds them once its rollout is done."""
    children = copy.deepcopy(plan(Live(cr=resource()), NOW).apply)
    for child in children:
        if child["kind"] == "Deployment":  # what the Deployment controller reports when done
            child["metadata"]["generation"] = 1
            child["status"] = {
                "observedGeneration": 1,
                "replicas": 1,
                "readyReplicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
            }
    return children


def test_subset_ignores_what_the_server_adds_and_matches_named_items() -> None:
    desired = {
        "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 8000}]}], "replicas": 1}
    }
    live = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                    "terminationMessagePath": "/dev/termination-log",
                }
            ],
            "replicas": 1,
        },
        "status": {},
    }
    assert is_subset(desired, live)
    live["spec"]["replicas"] = 2
    assert not is_subset(desired, live)
    assert is_subset({"limits": {"nvidia.com/gpu": 1}}, {"limits": {"nvidia.com/gpu": "1"}})


def test_first_reconcile_applies_every_child_with_an_owner() -> None:
    result = plan(Live(cr=resource()), NOW)
    kinds = [m["kind"] for m in result.apply]
    assert "Deployment" in kinds
    assert "Service" in kinds
    assert all(m["metadata"]["ownerReferences"][0]["uid"] == "u-1" for m in result.apply)
    assert result.status is not None
    assert result.status["phase"] == "Progressing"


def test_a_converged_object_plans_no_write() -> None:
    children = settled_children()
    cr = resource()
    settled = plan(Live(cr=cr, children=children), NOW)
    assert settled.apply == []
    assert settled.status is not None
    assert settled.status["phase"] == "Ready"
    cr["status"] = {k: v for k, v in settled.status.items() if v is not None}
    again = plan(Live(cr=cr, children=children), "2026-11-26T00:00:00Z")
    assert (again.apply, again.prune, again.status, again.events) == ([], [], None, [])


def test_children_the_spec_no_longer_asks_for_are_pruned() -> None:
    with_policy = resource(
        {
            "model": {"name": "gpt-oss-20b"},
            "accelerator": {"profile": "L40S"},
            "networkPolicy": {"enabled": True},
        }
    )
    children = plan(Live(cr=with_policy), NOW).apply
    assert any(m["kind"] == "NetworkPolicy" for m in children)
    result = plan(Live(cr=resource(), children=children), NOW)
    assert [m["kind"] for m in result.prune] == ["NetworkPolicy"]


def test_an_invalid_spec_writes_only_status() -> None:
    bad = resource(
        {
            "model": {"name": "gpt-oss-20b"},
            "accelerator": {"profile": "L40S"},
            "rollout": {"maxSurge": 0, "maxUnavailable": 0},
        }
    )
    result = plan(Live(cr=bad), NOW)
    assert result.apply == []
    assert result.status is not None
    assert result.status["reason"] == "InvalidSpec"
    assert "spec.rollout.maxUnavailable" in result.status["message"]


def test_an_invalid_change_keeps_describing_what_runs() -> None:
    children = settled_children()
    cr = resource()
    cr["status"] = {
        k: v
        for k, v in (plan(Live(cr=cr, children=children), NOW).status or {}).items()
        if v is not None
    }
    bad = copy.deepcopy(cr)
    bad["spec"]["rollout"] = {"maxSurge": 0, "maxUnavailable": 0}
    result = plan(Live(cr=bad, children=children), NOW)
    assert result.apply == []
    assert result.status is not None
    assert (result.status["phase"], result.status["reason"]) == ("Failed", "InvalidSpec")
    assert result.status["selector"] == cr["status"]["selector"]
    assert (result.status["replicas"], result.status["ready"]) == (1, "1/1")


KEYED = {
    "model": {"name": "gpt-oss-20b"},
    "accelerator": {"profile": "L40S"},
    "api": {"apiKeySecretRef": {"name": "llm-key", "key": "token"}},
}


def test_the_middleware_config_map_is_pruned_with_the_key() -> None:
    children = plan(Live(cr=resource(KEYED)), NOW).apply
    assert [m["kind"] for m in children][:2] == ["ConfigMap", "Deployment"]
    result = plan(Live(cr=resource(), children=children), NOW)
    assert [m["metadata"]["name"] for m in result.prune] == ["chat-api-key-middleware"]


def test_a_pod_without_its_secret_names_the_spec_field() -> None:
    stuck = {
        "metadata": {"name": "chat-1"},
        "status": {
            "containerStatuses": [
                {
                    "name": "vllm",
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": "couldn't find key token in Secret ml/llm-key",
                        }
                    },
                }
            ]
        },
    }
    result = plan(Live(cr=resource(KEYED), pods=[stuck]), NOW)
    assert result.status is not None
    assert result.status["reason"] == "SecretMissing"
    assert "Secret llm-key with key token (spec.api.apiKeySecretRef)" in result.status["message"]
