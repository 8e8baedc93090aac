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
    gpus = int(res["requests"][r.resource_name])
    if not spec.resources.cpu:
        assert int(res["requests"]["cpu"]) >= 2 * (2 + gpus), "vLLM: 2 x (2 + N) vCPUs"
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
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


def _pod(spec: GptOssDeploymentSpec, **kwargs: Any) -> dict[str, Any]:
    pod: dict[str, Any] = _deployment(render_children("m", "ns", spec, **kwargs))["spec"]
    return pod["template"]["spec"]


def _node_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return list(required["nodeSelectorTerms"])


def test_default_placement_is_gpu_feature_discovery() -> None:
    pod = _pod(GptOssDeploymentSpec.model_validate({"model": {"name": "gpt-oss-20b"}}))
    (term,) = _node_terms(pod)
    (expr,) = term["matchExpressions"]
    assert expr["key"] == "nvidia.com/gpu.product"
    assert "NVIDIA-H100-80GB-HBM3" in expr["values"]


def test_placement_on_a_cluster_without_gfd_labels() -> None:
    """The operator's --gpu-node-labels setting replaces GFD's label for a profile."""
    spec = GptOssDeploymentSpec.model_validate(
        {"model": {"name": "gpt-oss-20b"}, "accelerator": {"profile": "L4"}}
    )
    gke = {"L4": {"cloud.google.com/gke-accelerator": ("nvidia-l4",)}}
    (term,) = _node_terms(_pod(spec, gpu_node_labels=gke))
    assert term == {
        "matchExpressions": [
            {"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-l4"]}
        ]
    }
    both = {"L4": {**gke["L4"], "nvidia.com/gpu.product": ("NVIDIA-L4",)}}
    keys = [t["matchExpressions"][0]["key"] for t in _node_terms(_pod(spec, gpu_node_labels=both))]
    assert keys == ["cloud.google.com/gke-accelerator", "nvidia.com/gpu.product"], "terms OR"


def test_user_node_affinity_replaces_the_gpu_rule() -> None:
    (case,) = [s for c, s in CASES if c == "gpt-oss-20b/H100-80GB/rollout"]
    before = json.dumps(case.scheduling.affinity, sort_keys=True)
    pod = _pod(case)
    assert pod["affinity"] == case.scheduling.affinity
    keys = [e["key"] for e in _node_terms(pod)[0]["matchExpressions"]]
    assert keys == ["zone"]
    assert json.dumps(case.scheduling.affinity, sort_keys=True) == before, "spec was mutated"
    anti = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    spec = GptOssDeploymentSpec.model_validate(
        {"model": {"name": "gpt-oss-20b"}, "scheduling": {"affinity": anti}}
    )
    pod = _pod(spec)
    assert "podAntiAffinity" in pod["affinity"]
    assert _node_terms(pod)[0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"


def test_expert_practice_in_the_pod() -> None:
    spec = GptOssDeploymentSpec.model_validate({"model": {"name": "gpt-oss-120b"}})
    pod = _pod(spec)
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VLLM_CACHE_ROOT"] == "/models/vllm"
    assert env["HF_HOME"] == "/models"
    (cache,) = [v for v in pod["volumes"] if v["name"] == "model-cache"]
    assert cache["emptyDir"] == {"sizeLimit": "80Gi"}
    assert container["resources"]["requests"]["ephemeral-storage"] == "80Gi"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"] == {"matchLabels": selector_labels("m")}
    claimed = GptOssDeploymentSpec.model_validate(
        {"model": {"name": "gpt-oss-120b"}, "modelCache": {"existingClaimName": "w"}}
    )
    pod = _pod(claimed)
    assert "ephemeral-storage" not in pod["containers"][0]["resources"]["requests"]


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
        "appProtocol": "http",
    }


def test_compile_cache_can_move_off_a_read_only_claim() -> None:
    spec = GptOssDeploymentSpec.model_validate(
        {
            "model": {"name": "gpt-oss-20b"},
            "modelCache": {"existingClaimName": "ro-weights", "offline": True},
            "engine": {"extraEnv": [{"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"}]},
        }
    )
    (container,) = _pod(spec)["containers"]
    assert [e for e in container["env"] if e["name"] == "VLLM_CACHE_ROOT"] == [
        {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"}
    ]
