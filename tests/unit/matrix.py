"""The valid specs the policy and contract tests render: models x profiles x options."""

from __future__ import annotations

from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.catalog import MODELS, PROFILES, TP_CHOICES, profile_min_tensor_parallel
from gptoss_operator.validation import SpecError, parse_spec

OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "offline-claim": {"modelCache": {"existingClaimName": "weights", "offline": True}},
    "created-cache": {
        "modelCache": {
            "size": "100Gi",
            "storageClassName": "fast",
            "accessModes": ["ReadWriteMany"],
        }
    },
    "download-existing-claim": {
        "modelCache": {
            "existingClaimName": "team-weights",
            "hfTokenSecretRef": {"name": "hf", "key": "token"},
            "download": {
                "enabled": True,
                "endpoint": "https://hf-mirror.example.com",
                "encodingsUrl": "https://mirror.example.com/encodings",
                "nodeSelector": {"pool": "cpu"},
                "tolerations": [{"key": "pool", "operator": "Exists"}],
            },
        },
        "model": {"revision": "0123456789abcdef0123456789abcdef01234567"},
    },
    "download-offline-rwo": {
        "modelCache": {
            "size": "100Gi",
            "offline": True,
            "download": {"parts": 4, "parallelism": 2, "deadlineSeconds": 600, "backoffLimit": 0},
        },
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
    },
    "secrets": {
        "api": {"apiKeySecretRef": {"name": "api", "key": "key"}},
        "modelCache": {"hfTokenSecretRef": {"name": "hf", "key": "token"}},
    },
    "children": {
        "replicas": 3,
        "networkPolicy": {"enabled": True, "fromNamespaceSelector": {"team": "ml"}},
        "podMonitor": {"enabled": True},
        "podDisruptionBudget": {"enabled": False},
    },
    "engine": {
        "engine": {
            "maxModelLen": 32768,
            "gpuMemoryUtilization": 0.85,
            "maxNumSeqs": 128,
            "kvCacheDtype": "fp8",
            "streamInterval": 20,
            "extraArgs": ["--enable-prefix-caching", "--max-logprobs=5"],
            "extraEnv": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}],
        },
        "api": {"toolCalling": False, "servedModelName": "gpt-oss"},
        "model": {"revision": "main"},
    },
    "rollout": {
        "rollout": {"strategy": "Recreate"},
        "shutdown": {"preStopSleepSeconds": 0, "drainSeconds": 300},
        "scheduling": {
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "priorityClassName": "inference",
            "runtimeClassName": "nvidia",
        },
        "podLabels": {"sim.kwok.dev/behavior": "crashloop"},
        "podAnnotations": {"team": "ml"},
    },
}


def _with_model(model: str, profile: str, extra: dict[str, Any]) -> dict[str, Any]:
    raw = {"model": {"name": model}, "accelerator": {"profile": profile}, **extra}
    raw["model"] = {**extra.get("model", {}), "name": model}
    return raw


def matrix() -> list[tuple[str, GptOssDeploymentSpec]]:
    """Every valid (id, spec) of the matrix; combinations a profile cannot serve are left out."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for model in MODELS:
        for profile in PROFILES:
            for option, extra in OPTIONS.items():
                cases.append((f"{model}/{profile}/{option}", _with_model(model, profile, extra)))
            gpn = PROFILES[profile].gpus_per_node
            for tp in TP_CHOICES:
                if profile_min_tensor_parallel(model, profile) <= tp <= gpn:
                    raw = _with_model(model, profile, {"tensorParallelSize": tp})
                    cases.append((f"{model}/{profile}/tp{tp}", raw))
        custom = {
            "resourceName": "example.com/gpu",
            "nodeSelector": {"gpu": "mi300x"},
            "gpuMemoryGiB": 192,
            "gpusPerNode": 8,
        }
        cases.append(
            (f"{model}/custom", {"model": {"name": model}, "accelerator": {"custom": custom}})
        )
    specs = []
    for case_id, raw in cases:
        try:
            specs.append((case_id, parse_spec(raw)))
        except SpecError:
            assert model_cannot_fit(raw), case_id
    return specs


def model_cannot_fit(raw: dict[str, Any]) -> bool:
    """True for the combinations rejected on purpose: the model does not fit on one node."""
    profile = raw["accelerator"].get("profile")
    return bool(
        profile
        and profile_min_tensor_parallel(raw["model"]["name"], profile)
        > PROFILES[profile].gpus_per_node
    )
