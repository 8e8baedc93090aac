"""A seeded generator of malformed and adversarial GptOssDeployment specs, shared by the unit
fuzz tier (pydantic/validate_spec, portable CEL, render, the render CLI, vLLM's parser) and the
admission fuzz tier on the test bed (the real apiserver, then the operator for a sample).

Each variant changes one field of a valid gpt-oss-20b spec (or builds one extraArgs list from
the flag grammar) and says which spec fields a refusal may name. The seed comes from
GPTOSS_FUZZ_SEED when set, else from the clock; tests print it so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gptoss_operator.catalog import MODELS, PROFILES
from gptoss_operator.flags import ALLOWED_FLAGS, REFUSED_FLAGS
from gptoss_operator.vllm_flags import CHOICES, REASONING_PARSERS, VALUE_KINDS

BASE: dict[str, Any] = {"model": {"name": "gpt-oss-20b"}}
COUNT = 320


@dataclass(frozen=True)
class Variant:
    """One fuzzed spec: `spec` is the whole spec, `fields` the paths a refusal may name."""

    id: str
    spec: dict[str, Any]
    fields: tuple[str, ...]


def seed() -> int:
    """GPTOSS_FUZZ_SEED, or a fresh seed (printed by the tests for replay)."""
    env = os.environ.get("GPTOSS_FUZZ_SEED")
    return int(env) if env else int(time.time() * 1000) % 1_000_000


def _strings(rnd: random.Random) -> list[Any]:
    """Values a careless or hostile user puts in a string field."""
    return [
        "",
        " ",
        "-x",
        "--port=9000",
        "a b",
        "ok-value",
        "x" * rnd.choice([64, 254, 300]),
        "日本語",
        "emoji-\U0001f600",
        "tab\there",
        "line\nbreak",
        "quote'\"",
        "${HOME}",
        rnd.randint(-5, 5),
        1.5,
        True,
        None,
        [],
        {},
        ["a"],
    ]


def _numbers(rnd: random.Random, low: int, high: int) -> list[Any]:
    return [
        low - 1,
        low,
        high,
        high + 1,
        rnd.randint(low, high),
        -(2**63),
        2**63,
        1e-9,
        0.5,
        "1",
        None,
        True,
        [1],
    ]


def _set(path: str, value: Any) -> dict[str, Any]:
    """A spec patch setting the dotted `path` (below spec) to `value`."""
    out: dict[str, Any] = {}
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _flag_token(rnd: random.Random) -> list[str]:
    """One piece of an extraArgs list, drawn across the flag grammar."""
    allowed = sorted(ALLOWED_FLAGS)
    flag = rnd.choice(allowed)
    arity = ALLOWED_FLAGS[flag]
    refused = rnd.choice(sorted(REFUSED_FLAGS))
    value = rnd.choice(["1", "0", "-1", "-0.5", "auto", "x y", "", "{}", '{"a": 1}', "-z", "None"])
    long = [f for f in allowed if f.startswith("--") and len(f) > 6]
    picked = rnd.choice(long)
    choices: list[list[str]] = [
        [flag] if arity == "0" else [flag, value],
        [f"{flag}={value}"],
        [flag],
        [refused],
        [refused, "2"],
        [f"{refused}=2"],
        [picked[: rnd.randint(3, len(picked) - 1)], "1"],  # an abbreviation
        [picked.replace("-", "_").replace("__", "--", 1)],  # an _ spelling
        ["--" + picked[2:].replace("-", "_", 1), "1"],  # a mix of _ and -
        [f"{flag} {value}"],  # one item holding a flag and its value
        [value],  # a value without its flag
        ["-tp", "2"],
        ["--tensor-parallel=4"],
        ["--por=9000"],
        ["--api-ke=KEY"],
        ["--", "x"],
        ["-"],
        ["-O3"],
        ["--compilation-config.mode", "3"],
        ["--cudagraph-capture-sizes", "1", "2", "4"],
        ["--enable-prefix-caching=true"],
        ["--max-num-seqs"],
    ]
    return rnd.choice(choices)


def _good_value(rnd: random.Random, flag: str) -> str:
    """A value vLLM's parser takes for `flag` (its type and choices), as a careful user writes."""
    if flag in CHOICES:
        return rnd.choice(CHOICES[flag])
    kind = VALUE_KINDS.get(flag, "").partition("/")[0]
    good = {"int": str(rnd.randint(0, 64)), "float": "0.5", "json": "{}", "object": "{}"}
    return (good | {"size": "4k", "lora": "adapter=/models/adapter"}).get(kind, "x")


def _good_token(rnd: random.Random) -> list[str]:
    flag = rnd.choice(sorted(ALLOWED_FLAGS))
    arity = ALLOWED_FLAGS[flag]
    if arity == "0":
        return [flag]
    if rnd.random() < 0.3:
        return [f"{flag}={_good_value(rnd, flag)}"]
    count = rnd.randint(1, 3) if arity == "+" else 1
    return [flag, *(_good_value(rnd, flag) for _ in range(count))]


def _extra_args(rnd: random.Random) -> list[str]:
    """Half the lists only well-formed flags (any flag vLLM has), half with a bad piece."""
    args: list[str] = []
    for _ in range(rnd.randint(1, 4)):
        args += _good_token(rnd)
    if rnd.random() < 0.5:
        bad = _flag_token(rnd)
        at = rnd.randint(0, len(args))
        while at < len(args) and not args[at].startswith("--"):
            at += 1  # between two whole tokens
        args[at:at] = bad
    return args


def _label_maps() -> list[dict[str, str]]:
    """Label and annotation maps with keys or values Kubernetes' label syntax refuses, or takes."""
    return [
        {"": "v"},
        {"a b": "v"},
        {"-a": "v"},
        {"example.com/app": "v"},
        {"Example.com/app": "v"},
        {"a/b/c": "v"},
        {"x" * 64: "v"},
        {"app": "x" * 64},
        {"app": "a b"},
        {"app": "-v"},
        {"app": ""},
        {"app": "emoji-\U0001f600"},
    ]


def _mutations(
    rnd: random.Random,
) -> list[tuple[str, Callable[[], dict[str, Any]], tuple[str, ...]]]:
    """(name, patch maker, fields a refusal may name) for every field of the spec."""
    s = _strings
    num = _numbers
    custom = {"resourceName": "nvidia.com/gpu", "gpuMemoryGiB": 80, "gpusPerNode": 8}
    resource_names = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "hugepages-2Mi",
        "kubernetes.io/gpu",
        "requests.nvidia.com/gpu",
        "nvidia.com/gpu",
        "amd.com/gpu",
        "gpu",
        "-x/y",
    ]
    quantities = ["0", "1m", "1", "2", "500m", "1Ki", "8Gi", "7Gi", "96Gi", "1e3", "-1", "x", 4]
    affinities: list[Any] = [
        {"nodeAffinity": "x"},
        {"nodeAffinity": {"bogus": 1}},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}},
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 10,
                        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"},
                    }
                ]
            }
        },
        {"bogus": {}},
        [],
        "x",
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"x": 1}}},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "Near"}]}]
                }
            }
        },
    ]
    tolerations: list[Any] = [
        [{"key": "a", "operator": "Exists"}],
        [{"key": "a", "bogus": 1}],
        [{"tolerationSeconds": "x"}],
        [{"tolerationSeconds": 30, "effect": "NoExecute", "key": "k", "operator": "Exists"}],
        ["x"],
        {"key": "a"},
        [{"key": 5}],
        [{"key": "a", "operator": "Foo"}],
        [{"key": "a", "operator": "Equal", "value": "v", "effect": "NoSchedule"}],
        [{"key": "a", "effect": "Sometimes"}],
    ]
    extra_env: list[Any] = [
        [{"name": "HF_HOME", "value": "/x"}],
        [{"name": "VLLM_API_KEY", "value": "k"}],
        [{"name": "1BAD"}],
        [{"name": "OK", "value": rnd.choice(["v", "emoji-\U0001f600", "x" * 5000])}],
        [{"name": "OK", "valueFrom": {}}],
        "x",
    ]
    return [
        ("model.name", lambda: _set("model.name", rnd.choice([*MODELS, *s(rnd)])), ("spec.model",)),
        ("model.repository", lambda: _set("model.repository", rnd.choice(s(rnd))), ("spec.model",)),
        (
            "model.revision",
            lambda: _set("model.revision", rnd.choice([*s(rnd), "main", "v1.0", "-main"])),
            ("spec.model",),
        ),
        ("model.extra", lambda: _set("model.bogus", 1), ("spec.model",)),
        ("replicas", lambda: _set("replicas", rnd.choice(num(rnd, 0, 1000))), ("spec.replicas",)),
        (
            "tensorParallelSize",
            lambda: _set("tensorParallelSize", rnd.choice([0, 1, 2, 3, 4, 8, 16, "2", None])),
            ("spec.tensorParallelSize", "spec.accelerator"),
        ),
        (
            "accelerator.profile",
            lambda: {"accelerator": {"profile": rnd.choice([*PROFILES, *s(rnd)])}},
            ("spec.accelerator", "spec.tensorParallelSize"),
        ),
        (
            "accelerator.custom",
            lambda: {
                "accelerator": {
                    "custom": _merge(
                        custom,
                        rnd.choice(
                            [
                                {"resourceName": rnd.choice(resource_names)},
                                {"gpuMemoryGiB": rnd.choice(num(rnd, 1, 4096))},
                                {"gpusPerNode": rnd.choice(num(rnd, 1, 64))},
                                {"nodeSelector": rnd.choice([{"a": 1}, "x", *_label_maps()])},
                                {"bogus": 1},
                            ]
                        ),
                    )
                }
            },
            ("spec.accelerator", "spec.tensorParallelSize"),
        ),
        (
            "accelerator.both",
            lambda: {"accelerator": {"profile": "H200", "custom": custom}},
            ("spec.accelerator",),
        ),
        (
            "accelerator.gpusPerNode",
            lambda: {
                "accelerator": {"profile": "H100-80GB", "gpusPerNode": rnd.choice(num(rnd, 1, 64))}
            },
            ("spec.accelerator", "spec.tensorParallelSize"),
        ),
        (
            "engine.gpuMemoryUtilization",
            lambda: _set(
                "engine.gpuMemoryUtilization",
                rnd.choice([1e-9, 0, 0.04, 0.05, 0.5, 0.9, 1, 1.01, "0.9", -1, None]),
            ),
            ("spec.engine.gpuMemoryUtilization",),
        ),
        (
            "engine.maxModelLen",
            lambda: _set("engine.maxModelLen", rnd.choice(num(rnd, 256, 131072))),
            ("spec.engine.maxModelLen",),
        ),
        (
            "engine.maxNumSeqs",
            lambda: _set("engine.maxNumSeqs", rnd.choice(num(rnd, 1, 65536))),
            ("spec.engine.maxNumSeqs",),
        ),
        (
            "engine.maxNumBatchedTokens",
            lambda: _set("engine.maxNumBatchedTokens", rnd.choice(num(rnd, 256, 1048576))),
            ("spec.engine.maxNumBatchedTokens",),
        ),
        (
            "engine.kvCacheDtype",
            lambda: _set("engine.kvCacheDtype", rnd.choice(["fp8", "auto", "int4", *s(rnd)])),
            ("spec.engine.kvCacheDtype",),
        ),
        (
            "engine.streamInterval",
            lambda: _set("engine.streamInterval", rnd.choice(num(rnd, 1, 1024))),
            ("spec.engine.streamInterval",),
        ),
        (
            "engine.maxCudagraphCaptureSize",
            lambda: _set("engine.maxCudagraphCaptureSize", rnd.choice(num(rnd, 1, 65536))),
            ("spec.engine.maxCudagraphCaptureSize",),
        ),
        (
            "engine.extraArgs",
            lambda: _set("engine.extraArgs", _extra_args(rnd)),
            ("spec.engine.extraArgs",),
        ),
        (
            "engine.maxCudagraphCaptureSize",
            lambda: _set("engine.maxCudagraphCaptureSize", rnd.choice(num(rnd, 1, 65536))),
            ("spec.engine.maxCudagraphCaptureSize",),
        ),
        (
            "engine.extraArgs",
            lambda: _set("engine.extraArgs", _extra_args(rnd)),
            ("spec.engine.extraArgs",),
        ),
        (
            "engine.maxCudagraphCaptureSize",
            lambda: _set("engine.maxCudagraphCaptureSize", rnd.choice(num(rnd, 1, 65536))),
            ("spec.engine.maxCudagraphCaptureSize",),
        ),
        (
            "engine.extraArgs",
            lambda: _set("engine.extraArgs", _extra_args(rnd)),
            ("spec.engine.extraArgs",),
        ),
        (
            "engine.maxCudagraphCaptureSize",
            lambda: _set("engine.maxCudagraphCaptureSize", rnd.choice(num(rnd, 1, 65536))),
            ("spec.engine.maxCudagraphCaptureSize",),
        ),
        (
            "engine.extraArgs",
            lambda: _set("engine.extraArgs", _extra_args(rnd)),
            ("spec.engine.extraArgs",),
        ),
        (
            "engine.extraArgs.shape",
            lambda: _set(
                "engine.extraArgs", rnd.choice([["--seed"] * 65, "x", [1], [None], ["y" * 1025]])
            ),
            ("spec.engine.extraArgs",),
        ),
        (
            "engine.extraEnv",
            lambda: _set("engine.extraEnv", rnd.choice(extra_env)),
            ("spec.engine.extraEnv",),
        ),
        (
            "api.servedModelName",
            lambda: _set("api.servedModelName", rnd.choice(s(rnd))),
            ("spec.api.servedModelName",),
        ),
        (
            "api.reasoningParser",
            lambda: _set(
                "api.reasoningParser",
                rnd.choice([*rnd.sample(REASONING_PARSERS, 3), "-x", "gptoss", 1]),
            ),
            ("spec.api.reasoningParser",),
        ),
        (
            "api.toolCalling",
            lambda: _set("api.toolCalling", rnd.choice([True, False, "yes", 1])),
            ("spec.api",),
        ),
        (
            "api.apiKeySecretRef",
            lambda: _set(
                "api.apiKeySecretRef", rnd.choice([{"name": "s", "key": "k"}, {"name": ""}, "x"])
            ),
            ("spec.api.apiKeySecretRef",),
        ),
        (
            "modelCache",
            lambda: {
                "modelCache": rnd.choice(
                    [
                        {"size": rnd.choice(quantities)},
                        {"existingClaimName": "c", "size": "10Gi"},
                        {"offline": True},
                        {"offline": True, "existingClaimName": "c"},
                        {"accessModes": rnd.choice([["ReadWriteMany"], ["Bogus"], [], "x"])},
                        {"storageClassName": rnd.choice(s(rnd))},
                        {"hfTokenSecretRef": rnd.choice([{"name": "hf", "key": "t"}, {"key": ""}])},
                    ]
                )
            },
            ("spec.modelCache",),
        ),
        (
            "modelCache.download",
            lambda: {
                "modelCache": {
                    rnd.choice(["size", "existingClaimName"]): rnd.choice(["100Gi", "c"]),
                    "offline": rnd.choice([True, False]),
                    "download": rnd.choice(
                        [
                            {"enabled": rnd.choice([True, False, "x"])},
                            {"endpoint": rnd.choice(["https://hf-mirror.example.com", "ftp://x"])},
                            {"encodingsUrl": rnd.choice(["http://mirror/enc", "", "x y"])},
                            {"parts": rnd.choice(_numbers(rnd, 1, 64))},
                            {"parallelism": rnd.choice(_numbers(rnd, 1, 64))},
                            {"cpu": rnd.choice(quantities)},
                            {"memory": rnd.choice(quantities)},
                            {"deadlineSeconds": rnd.choice(_numbers(rnd, 60, 604800))},
                            {"backoffLimit": rnd.choice(_numbers(rnd, 0, 100))},
                            {"nodeSelector": rnd.choice(_label_maps())},
                            {
                                "tolerations": [
                                    {
                                        "key": "cpu-pool",
                                        "operator": "Exists",
                                        "effect": rnd.choice(["NoSchedule", "Bogus"]),
                                    }
                                ]
                            },
                        ]
                    ),
                }
            },
            ("spec.modelCache",),
        ),
        (
            "image",
            lambda: _set(
                "image",
                rnd.choice(
                    [
                        "vllm/vllm-openai:latest",
                        "vllm/vllm-openai",
                        "vllm/vllm-openai:v0.33.0",
                        "r/x@sha256:" + "a" * 64,
                        "r/x@sha256:abc",
                        *s(rnd),
                    ]
                ),
            ),
            ("spec.image",),
        ),
        (
            "imagePullPolicy",
            lambda: _set("imagePullPolicy", rnd.choice(["Always", "Sometimes", *s(rnd)])),
            ("spec.imagePullPolicy",),
        ),
        (
            "resources",
            lambda: _set(f"resources.{rnd.choice(['cpu', 'memory'])}", rnd.choice(quantities)),
            ("spec.resources",),
        ),
        (
            "scheduling.affinity",
            lambda: _set("scheduling.affinity", rnd.choice(affinities)),
            ("spec.scheduling.affinity",),
        ),
        (
            "scheduling.tolerations",
            lambda: _set("scheduling.tolerations", rnd.choice(tolerations)),
            ("spec.scheduling.tolerations",),
        ),
        (
            "scheduling.nodeSelector",
            lambda: _set(
                "scheduling.nodeSelector", rnd.choice([{"a": "b"}, {"a": 1}, "x", *_label_maps()])
            ),
            ("spec.scheduling.nodeSelector",),
        ),
        (
            "scheduling.names",
            lambda: _set(
                f"scheduling.{rnd.choice(['priorityClassName', 'runtimeClassName'])}",
                rnd.choice(s(rnd)),
            ),
            ("spec.scheduling",),
        ),
        (
            "podLabels",
            lambda: _set(
                rnd.choice(["podLabels", "podAnnotations"]),
                rnd.choice([{"a": "b"}, {"a": 1}, "x", *_label_maps()]),
            ),
            ("spec.podLabels", "spec.podAnnotations"),
        ),
        (
            "service",
            lambda: {
                "service": rnd.choice(
                    [
                        {"type": rnd.choice(["NodePort", "ExternalName", 1])},
                        {"port": rnd.choice(num(rnd, 1, 65535))},
                        {"annotations": {"a": "b"}},
                    ]
                )
            },
            ("spec.service",),
        ),
        (
            "probes",
            lambda: _set("probes.startupBudgetSeconds", rnd.choice(num(rnd, 60, 86400))),
            ("spec.probes",),
        ),
        (
            "rollout",
            lambda: {
                "rollout": rnd.choice(
                    [
                        {"strategy": rnd.choice(["Recreate", "Canary"])},
                        {"maxSurge": rnd.choice([0, 1, "25%", "x", -1, None])},
                        {"maxUnavailable": rnd.choice([0, 1, "25%", "x", -1])},
                        {"maxSurge": 0, "maxUnavailable": 0},
                        {"progressDeadlineSeconds": rnd.choice(num(rnd, 10, 86400))},
                        {"revisionHistoryLimit": rnd.choice(num(rnd, 0, 100))},
                        {"autoRollback": rnd.choice([False, "no"])},
                    ]
                )
            },
            ("spec.rollout",),
        ),
        (
            "shutdown",
            lambda: {
                "shutdown": rnd.choice(
                    [
                        {"preStopSleepSeconds": rnd.choice(num(rnd, 0, 600))},
                        {"drainSeconds": rnd.choice(num(rnd, 0, 3600))},
                        {"terminationGracePeriodSeconds": rnd.choice(num(rnd, 1, 7200))},
                    ]
                )
            },
            ("spec.shutdown",),
        ),
        (
            "podDisruptionBudget",
            lambda: _set(
                f"podDisruptionBudget.{rnd.choice(['enabled', 'maxUnavailable'])}",
                rnd.choice([True, 0, 1, "50%", "x", -1]),
            ),
            ("spec.podDisruptionBudget",),
        ),
        (
            "networkPolicy",
            lambda: {
                "networkPolicy": rnd.choice(
                    [
                        {"enabled": True},
                        {"enabled": True, "fromPodSelector": {"a": 1}},
                        {"fromNamespaceSelector": "x"},
                        {"enabled": True, "metricsNamespaceSelector": rnd.choice(_label_maps())},
                        {"enabled": True, "metricsPodSelector": rnd.choice(_label_maps())},
                    ]
                )
            },
            ("spec.networkPolicy",),
        ),
        (
            "securityContext",
            lambda: {
                "securityContext": rnd.choice(
                    [
                        {"runAsUser": rnd.choice(num(rnd, 0, 2147483647))},
                        {"runAsGroup": rnd.choice(num(rnd, 0, 2147483647))},
                        {"fsGroup": rnd.choice(num(rnd, 0, 2147483647))},
                        {"runAsNonRoot": rnd.choice([True, False, "yes"])},
                        {"runAsNonRoot": True, "runAsUser": 0},
                        {"runAsUser": 2000, "runAsGroup": 0, "fsGroup": 0},
                    ]
                )
            },
            ("spec.securityContext",),
        ),
        (
            "podMonitor",
            lambda: {
                "podMonitor": rnd.choice(
                    [
                        {"interval": rnd.choice(["30s", "1m", "1d", "x", "", 30])},
                        {
                            "enabled": rnd.choice([True, "true"]),
                            "labels": rnd.choice(_label_maps()),
                        },
                    ]
                )
            },
            ("spec.podMonitor",),
        ),
        (
            "autoscaling",
            lambda: {
                "autoscaling": {
                    "enabled": rnd.choice([True, False, "yes"]),
                    "minReplicas": rnd.choice([0, 1, 3, -1, 1001, "1"]),
                    "maxReplicas": rnd.choice([1, 2, 8, 0, 5000]),
                    "metric": rnd.choice(
                        ["RequestsWaiting", "KVCacheUsage", "TimeToFirstToken", "Cpu", ""]
                    ),
                    "target": rnd.choice([0.8, 2, 0, -1, "2", 1e9]),
                    "query": rnd.choice(["sum(gateway_requests)", "", None, "x" * 3000]),
                    "activationTarget": rnd.choice([0, 0.5, -1]),
                    "idleSeconds": rnd.choice([0, 600, -5, 100000]),
                    "scaleDownStabilizationSeconds": rnd.choice([0, 1200, 4000, -1]),
                    "scaleUpStabilizationSeconds": rnd.choice([0, 60, 5000]),
                    "pollingIntervalSeconds": rnd.choice([1, 30, 0]),
                    "prometheusAddress": rnd.choice(
                        ["http://prometheus:9090", "https://p.example/x", "prometheus:9090", ""]
                    ),
                    "authenticationRef": rnd.choice(["prom-auth", "Bad_Name", ""]),
                }
            },
            ("spec.autoscaling", "spec.modelCache.accessModes"),
        ),
        ("unknown", lambda: {rnd.choice(["bogus", "Replicas", "extraArgs"]): 1}, ("spec",)),
    ]


def variants(seed_value: int, count: int = COUNT) -> list[Variant]:
    """`count` variants: every mutation in turn (so each field is covered), then random ones."""
    rnd = random.Random(seed_value)  # noqa: S311 - reproducible test data, not secrets
    mutations = _mutations(rnd)
    out = []
    for i in range(count):
        name, make, fields = mutations[i] if i < len(mutations) else rnd.choice(mutations)
        out.append(Variant(f"{i:03d}-{name}", _merge(BASE, make()), fields))
    return out


def names_field(message: str, fields: tuple[str, ...]) -> bool:
    """True when a refusal `message` names one of `fields` (a dotted spec path prefix)."""
    return any(field in message for field in fields)
