"""One policy over every rendered workload of the matrix."""

from __future__ import annotations

import json
from typing import Any

import pytest
from matrix import matrix

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.render import (
    SPEC_HASH_ANNOTATION,
    endpoint_url,
    render_children,
    resolve,
    selector_labels,
    selector_string,
)

CASES = matrix()
SECRET_VALUES = ("api", "key", "hf", "token")
OWNER = {"apiVersion": "gptoss.dev/v1alpha1", "kind": "GptOssDeployment", "name": "m", "uid": "u"}


def _deployment(children: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    return deployment


def test_matrix_is_large() -> None:
    assert len(CASES) > 100


@pytest.mark.parametrize(("case_id", "spec"), CASES, ids=[c for c, _ in CASES])
def test_policy(case_id: str, spec: GptOssDeploymentSpec) -> None:
    children = render_children("m", "ns", spec, OWNER)
    assert children == render_children("m", "ns", spec, OWNER), "rendering is not deterministic"
    r = resolve(spec)
    for child in children:
        assert child["metadata"]["ownerReferences"] == [OWNER]
        assert child["metadata"]["namespace"] == "ns"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gptoss-operator"
    deployment = _deployment(children)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"] == selector_labels("m")
    assert SPEC_HASH_ANNOTATION in deployment["spec"]["template"]["metadata"]["annotations"]
    assert pod["enableServiceLinks"] is False
    # Hardened by default, whatever the spec says.
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= r.startup_budget_seconds
    assert not container["image"].endswith(":latest")
    assert ":" in container["image"].rsplit("/", 1)[-1] or "@" in container["image"]
    res = container["resources"]
    assert res["requests"]["cpu"]
    assert res["requests"]["memory"]
    assert res["limits"]["memory"]
    gpu_keys = {k for k in res["limits"] if k.endswith("/gpu")}
    assert gpu_keys == {r.resource_name}
    tp = r.tensor_parallel_size
    assert res["limits"][r.resource_name] == str(tp) == res["requests"][r.resource_name]
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == str(tp)
    assert "--api-key" not in args
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    keyed = spec.api.api_key_secret_ref is not None
    assert ("--middleware" in args) == keyed
    assert any(c["kind"] == "ConfigMap" for c in children) == keyed
    shm = [v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"]
    assert bool(shm) == (tp > 1)
    for env in container["env"]:
        if env["name"] in ("VLLM_API_KEY", "HF_TOKEN"):
            assert "value" not in env
            assert "secretKeyRef" in env["valueFrom"]
    assert [e["name"] for e in container["env"]] == sorted(e["name"] for e in container["env"])
    assert pod["terminationGracePeriodSeconds"] > (
        spec.shutdown.pre_stop_sleep_seconds + spec.shutdown.drain_seconds
    )
    for label, value in spec.pod_labels.items():
        assert deployment["spec"]["template"]["metadata"]["labels"][label] == value
    for child in children:
        if child["kind"] != "Deployment":
            assert "nvidia.com/gpu" not in json.dumps(child.get("spec", {}).get("resources", {}))


def test_no_secret_values_rendered() -> None:
    spec = GptOssDeploymentSpec.model_validate(
        {
            "model": {"name": "gpt-oss-20b"},
            "api": {"apiKeySecretRef": {"name": "s3cr3t-name", "key": "s3cr3t-key"}},
        }
    )
    container = _deployment(render_children("m", "ns", spec))["spec"]["template"]["spec"][
        "containers"
    ][0]
    # The key travels only as a secretKeyRef: not in argv, not in the ConfigMap, nowhere else.
    everything = json.dumps(render_children("m", "ns", spec))
    assert everything.count("s3cr3t-name") == 1
    assert everything.count("s3cr3t-key") == 1
    (env,) = [e for e in container["env"] if e["name"] == "VLLM_API_KEY"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "s3cr3t-name", "key": "s3cr3t-key"}


def test_spec_change_changes_hash_and_no_change_is_identical() -> None:
    base = {"model": {"name": "gpt-oss-20b"}}
    one = _deployment(render_children("m", "ns", GptOssDeploymentSpec.model_validate(base)))
    same = _deployment(render_children("m", "ns", GptOssDeploymentSpec.model_validate(base)))
    changed = _deployment(
        render_children(
            "m", "ns", GptOssDeploymentSpec.model_validate({**base, "engine": {"maxNumSeqs": 8}})
        )
    )
    scaled = _deployment(
        render_children("m", "ns", GptOssDeploymentSpec.model_validate({**base, "replicas": 4}))
    )

    def digest(d: dict[str, Any]) -> str:
        return str(d["spec"]["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION])

    assert json.dumps(one) == json.dumps(same)
    assert digest(one) != digest(changed)
    assert digest(one) == digest(scaled), "scaling must not roll the pods"


def test_affinity_combines_user_terms_with_gpu_product() -> None:
    (case,) = [s for c, s in CASES if c == "gpt-oss-20b/H100-80GB/rollout"]
    before = json.dumps(case.scheduling.affinity, sort_keys=True)
    pod = _deployment(render_children("m", "ns", case))["spec"]["template"]["spec"]
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    keys = [e["key"] for e in required["nodeSelectorTerms"][0]["matchExpressions"]]
    assert keys == ["zone", "nvidia.com/gpu.product"]
    assert json.dumps(case.scheduling.affinity, sort_keys=True) == before, "spec was mutated"


def test_endpoint_and_selector() -> None:
    spec = GptOssDeploymentSpec.model_validate(
        {"model": {"name": "gpt-oss-20b"}, "service": {"port": 80}}
    )
    assert endpoint_url("m", "ns", spec) == "http://m.ns.svc.cluster.local:80/v1"
    assert selector_string("m") == "app.kubernetes.io/instance=m,app.kubernetes.io/name=gpt-oss"
    service = next(c for c in render_children("m", "ns", spec) if c["kind"] == "Service")
    assert service["spec"]["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": "http",
        "protocol": "TCP",
    }
