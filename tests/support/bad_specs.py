"""Bad GptOssDeployment specs, shared by the unit tests (pydantic, validate_spec, CEL evaluated
in-process) and the admission tests on the real apiserver, so both refuse the same inputs."""

from __future__ import annotations

from typing import Any

CUSTOM_SMALL = {"resourceName": "x.com/gpu", "gpuMemoryGiB": 24, "gpusPerNode": 1}
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
        "offline-new-claim",
        {"modelCache": {"size": "100Gi", "offline": True}},
        "spec.modelCache.offline",
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
]
