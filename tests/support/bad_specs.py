"""Bad (and a few good) GptOssDeployment specs, shared by the unit tests (pydantic,
validate_spec, CEL evaluated in-process) and the admission tests on the real apiserver, so both
refuse the same inputs."""

from __future__ import annotations

from typing import Any

CUSTOM_SMALL = {"resourceName": "x.com/gpu", "gpuMemoryGiB": 24, "gpusPerNode": 1}
CUSTOM_BIG = {"resourceName": "x.com/gpu", "gpuMemoryGiB": 80, "gpusPerNode": 8}
# (id, spec patch, field the error must name, whether a CEL rule (not the schema) refuses it)
BAD: list[tuple[str, dict[str, Any], str, bool]] = [
    ("tp-3", {"tensorParallelSize": 3}, "spec.tensorParallelSize", False),
    (
        "tp-above-node",
        {"accelerator": {"profile": "L4"}, "tensorParallelSize": 8},
        "spec.tensorParallelSize",
        True,
    ),
    (
        "120b-on-two-l4",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"profile": "L4", "gpusPerNode": 2}},
        "spec.accelerator",
        True,
    ),
    (
        "120b-tp1-a100-40",
        {
            "model": {"name": "gpt-oss-120b"},
            "accelerator": {"profile": "A100-40GB"},
            "tensorParallelSize": 1,
        },
        "spec.tensorParallelSize",
        True,
    ),
    (
        "120b-custom-small",
        {"model": {"name": "gpt-oss-120b"}, "accelerator": {"custom": CUSTOM_SMALL}},
        "spec.accelerator",
        True,
    ),
    ("replicas-negative", {"replicas": -1}, "spec.replicas", False),
    (
        "utilization",
        {"engine": {"gpuMemoryUtilization": 1.5}},
        "spec.engine.gpuMemoryUtilization",
        False,
    ),
    ("max-model-len", {"engine": {"maxModelLen": 200000}}, "spec.engine.maxModelLen", False),
    ("unknown-field", {"bogus": 1}, "spec.bogus", False),
    ("managed-flag", {"engine": {"extraArgs": ["--port=9000"]}}, "spec.engine.extraArgs", True),
    (
        "managed-flag-split",
        {"engine": {"extraArgs": ["--enable-prefix-caching", "--tensor-parallel-size", "4"]}},
        "spec.engine.extraArgs",
        True,
    ),
    (
        "managed-flag-snake",
        {"engine": {"extraArgs": ["--max_model_len=8"]}},
        "spec.engine.extraArgs",
        True,
    ),
    ("managed-short", {"engine": {"extraArgs": ["-tp", "2"]}}, "spec.engine.extraArgs", True),
    ("api-key-arg", {"engine": {"extraArgs": ["--api-key", "x"]}}, "spec.engine.extraArgs", True),
    (
        "managed-env",
        {"engine": {"extraEnv": [{"name": "HF_HOME", "value": "/x"}]}},
        "spec.engine.extraEnv",
        True,
    ),
    ("offline-no-cache", {"modelCache": {"offline": True}}, "spec.modelCache.offline", True),
    (
        "offline-new-claim-no-download",
        {"modelCache": {"size": "100Gi", "offline": True, "download": {"enabled": False}}},
        "spec.modelCache.offline",
        True,
    ),
    (
        "download-without-claim",
        {"modelCache": {"download": {"enabled": True}}},
        "spec.modelCache.download.enabled",
        True,
    ),
    (
        "rwo-claim-two-replicas",
        {"replicas": 2, "modelCache": {"size": "100Gi"}},
        "spec.modelCache.accessModes",
        True,
    ),
    (
        "rwo-claim-explicit-three-replicas",
        {"replicas": 3, "modelCache": {"size": "100Gi", "accessModes": ["ReadWriteOnce"]}},
        "spec.modelCache.accessModes",
        True,
    ),
    (
        "cudagraph-in-extra-args",
        {"engine": {"extraArgs": ["--max-cudagraph-capture-size=512"]}},
        "spec.engine.extraArgs",
        True,
    ),
    (
        "cache-both",
        {"modelCache": {"existingClaimName": "a", "size": "10Gi"}},
        "spec.modelCache",
        True,
    ),
    (
        "grace-too-short",
        {
            "shutdown": {
                "preStopSleepSeconds": 30,
                "drainSeconds": 60,
                "terminationGracePeriodSeconds": 90,
            }
        },
        "spec.shutdown.terminationGracePeriodSeconds",
        True,
    ),
    ("image-latest", {"image": "vllm/vllm-openai:latest"}, "spec.image", True),
    (
        "autoscaling-min-above-max",
        {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
        "spec.autoscaling.minReplicas",
        True,
    ),
    (
        "autoscaling-no-prometheus",
        {"autoscaling": {"enabled": True}},
        "spec.autoscaling.prometheusAddress",
        True,
    ),
    (
        "autoscaling-zero-without-query",
        {"autoscaling": {"minReplicas": 0}},
        "spec.autoscaling.query",
        True,
    ),
    (
        "autoscaling-rwo-cache",
        {
            "modelCache": {"size": "100Gi"},
            "autoscaling": {
                "enabled": True,
                "maxReplicas": 3,
                "prometheusAddress": "http://prometheus:9090",
            },
        },
        "spec.modelCache.accessModes",
        True,
    ),
    (
        "autoscaling-address-not-url",
        {"autoscaling": {"prometheusAddress": "prometheus:9090"}},
        "spec.autoscaling.prometheusAddress",
        False,
    ),
    (
        "autoscaling-unknown-metric",
        {"autoscaling": {"metric": "GpuUtilization"}},
        "spec.autoscaling.metric",
        False,
    ),
    (
        "non-root-as-root",
        {"securityContext": {"runAsUser": 0, "runAsNonRoot": True}},
        "spec.securityContext.runAsUser",
        True,
    ),
    ("image-untagged", {"image": "vllm/vllm-openai"}, "spec.image", False),
    (
        "profile-and-custom",
        {"accelerator": {"profile": "H200", "custom": CUSTOM_SMALL}},
        "spec.accelerator",
        True,
    ),
    # Issue 15: what fuzzing got past admission.
    *(
        (f"extra-args-{case}", {"engine": {"extraArgs": args}}, "spec.engine.extraArgs", True)
        for case, args in (
            ("abbreviation", ["--por=9000"]),
            ("prefix-of-managed", ["--tensor-parallel=4"]),
            ("mixed-underscore", ["--tensor_parallel-size", "4"]),
            ("api-key-abbreviation", ["--api-ke=KEY"]),
            ("flag-and-value-in-one-item", ["--port 9000"]),
            ("pipeline-alias", ["-pp", "2"]),
            ("data-parallel", ["--data-parallel-size=2"]),
            ("uds", ["--uds", "/tmp/vllm.sock"]),
            ("headless", ["--headless"]),
            ("memory-alias", ["--device-memory-utilization=0.5"]),
            ("unknown-flag", ["--no-such-flag"]),
            ("value-without-flag", ["x"]),
            ("second-value", ["--max-loras", "2", "3"]),
            ("missing-value", ["--max-loras"]),
            ("value-on-switch", ["--enable-prefix-caching=true"]),
            ("not-an-integer", ["--max-loras", "auto"]),
            ("not-a-choice", ["--dtype", "fp4"]),
            ("not-json", ["--compilation-config", "3"]),
        )
    ),
    ("served-name-dash", {"api": {"servedModelName": "-x"}}, "spec.api.servedModelName", False),
    (
        "repository-dash",
        {"model": {"name": "gpt-oss-20b", "repository": "-x"}},
        "spec.model.repository",
        False,
    ),
    (
        "revision-dash",
        {"model": {"name": "gpt-oss-20b", "revision": "-main"}},
        "spec.model.revision",
        False,
    ),
    (
        "reasoning-unknown",
        {"api": {"reasoningParser": "gptoss"}},
        "spec.api.reasoningParser",
        False,
    ),
    (
        "affinity-scalar",
        {"scheduling": {"affinity": {"nodeAffinity": "x"}}},
        "spec.scheduling.affinity",
        False,
    ),
    (
        "affinity-unknown-key",
        {"scheduling": {"affinity": {"nodeAffinity": {"bogus": {}}}}},
        "spec.scheduling.affinity",
        False,
    ),
    (
        "toleration-unknown-key",
        {"scheduling": {"tolerations": [{"key": "a", "bogus": 1}]}},
        "spec.scheduling.tolerations",
        False,
    ),
    (
        "toleration-seconds-string",
        {"scheduling": {"tolerations": [{"tolerationSeconds": "x"}]}},
        "spec.scheduling.tolerations",
        False,
    ),
    (
        "utilization-tiny",
        {"engine": {"gpuMemoryUtilization": 1e-9}},
        "spec.engine.gpuMemoryUtilization",
        False,
    ),
    # A CEL rule at admission (the schema's minimum lets integer 0 through), but pydantic refuses
    # it first, so the unit tier cannot build the object the CEL test needs.
    (
        "utilization-zero",
        {"engine": {"gpuMemoryUtilization": 0}},
        "spec.engine.gpuMemoryUtilization",
        False,
    ),
    ("memory-zero", {"resources": {"memory": "0"}}, "spec.resources.memory", True),
    ("memory-millis", {"resources": {"memory": "1m"}}, "spec.resources.memory", True),
    ("cpu-zero", {"resources": {"cpu": "0"}}, "spec.resources.cpu", True),
    *(
        (
            f"resource-{name.split('/')[0].split('.')[0]}",
            {"accelerator": {"custom": {**CUSTOM_BIG, "resourceName": name}}},
            "spec.accelerator.custom.resourceName",
            by_cel,
        )
        for name, by_cel in (
            ("cpu", False),
            ("memory", False),
            ("ephemeral-storage", False),
            ("hugepages-2Mi", False),
            ("kubernetes.io/gpu", True),
            ("requests.nvidia.com/gpu", True),
        )
    ),
]
# Label syntax: a CEL rule in the map type's own schema (api/common.py), not in cel.RULES_BY_PATH,
# so the admission tests check it on the apiserver.
BAD += [
    ("label-key-space", {"podLabels": {"a b": "v"}}, "spec.podLabels", False),
    ("label-value-space", {"podLabels": {"app": "a b"}}, "spec.podLabels", False),
    (
        "node-selector-empty-key",
        {"scheduling": {"nodeSelector": {"": "v"}}},
        "spec.scheduling.nodeSelector",
        False,
    ),
    ("annotation-key-slashes", {"podAnnotations": {"a/b/c": "v"}}, "spec.podAnnotations", False),
]

GOOD_EXTRA_ARGS: list[list[str]] = [
    ["--enable-prefix-caching", "--dtype=half", "--seed", "-1"],
    ["--cudagraph-capture-sizes", "1", "2", "4", "--max-loras=2"],
    ["--compilation-config", '{"cudagraph_mode": "FULL_AND_PIECEWISE"}', "--disable-log-stats"],
    ["--hf-overrides", "{}", "--disable-fastapi-docs"],
]
"""extraArgs lists every layer accepts and vLLM's parser reads."""
