"""Cross-field checks in Python: the same rules as the CRD's CEL, for the CLI and the operator.

The operator runs them as a second line of defence (a CRD installed from an older version, or a
spec written before a rule existed); `gptoss-operator render` runs them instead of an apiserver.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gptoss_operator.api import GptOssDeploymentSpec, ModelCache
from gptoss_operator.catalog import MODELS, PROFILES, min_tensor_parallel
from gptoss_operator.flags import MANAGED_ENV, extra_args_error

MIN_CPU = "2"
"""Least CPU request: vLLM's API server and engine core are one busy process each."""
MIN_MEMORY = "8Gi"
"""Least memory: the weights pass through host memory while loading (13 GiB for 20b)."""
_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


class SpecError(ValueError):
    """A spec the operator cannot serve; `field` is its path, e.g. spec.tensorParallelSize."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def gpu_memory_gib(spec: GptOssDeploymentSpec) -> float:
    """Memory of one GPU of the spec's accelerator."""
    acc = spec.accelerator
    if acc.custom is not None:
        return float(acc.custom.gpu_memory_gi_b)
    return PROFILES[acc.profile or ""].memory_gib


def gpus_per_node(spec: GptOssDeploymentSpec) -> int:
    """GPUs per node: the override, else the custom accelerator's, else the profile's."""
    acc = spec.accelerator
    if acc.gpus_per_node is not None:
        return acc.gpus_per_node
    if acc.custom is not None:
        return acc.custom.gpus_per_node
    return PROFILES[acc.profile or ""].gpus_per_node


def validate_spec(spec: GptOssDeploymentSpec) -> None:
    """Raise SpecError for the first rule the spec breaks (the CEL rules, in Python)."""
    acc = spec.accelerator
    if (acc.profile is None) == (acc.custom is None):
        raise SpecError("spec.accelerator", "set exactly one of profile and custom")
    model = spec.model.name
    gpn = gpus_per_node(spec)
    memory = gpu_memory_gib(spec)
    where = f"profile {acc.profile}" if acc.profile else "the custom accelerator"
    need = min_tensor_parallel(model, memory)
    if need > gpn:
        raise SpecError(
            "spec.accelerator",
            f"{model} needs about {MODELS[model].min_vram_gib} GiB of GPU memory, more than "
            f"{gpn} GPU(s) of {memory:g} GiB per node of {where}",
        )
    tp = spec.tensor_parallel_size
    if tp is not None and tp > gpn:
        raise SpecError(
            "spec.tensorParallelSize", f"{tp} exceeds the {gpn} GPU(s) per node of {where}"
        )
    if tp is not None and tp < need:
        raise SpecError(
            "spec.tensorParallelSize",
            f"{tp} is too small: {model} needs at least {need} GPU(s) of {memory:g} GiB on {where}",
        )
    bad_arg = extra_args_error(spec.engine.extra_args)
    if bad_arg is not None:
        raise SpecError(f"spec.engine.extraArgs[{bad_arg[0]}]", bad_arg[1])
    if acc.custom is not None and _not_extended(acc.custom.resource_name):
        raise SpecError(
            "spec.accelerator.custom.resourceName",
            "must be an extended resource outside kubernetes.io, without the requests. prefix",
        )
    for field, value, least in (
        ("cpu", spec.resources.cpu, MIN_CPU),
        ("memory", spec.resources.memory, MIN_MEMORY),
    ):
        if value is not None and quantity(value) < quantity(least):
            raise SpecError(f"spec.resources.{field}", f"{value} is below the minimum {least}")
    for i, env in enumerate(spec.engine.extra_env):
        if env.name in MANAGED_ENV:
            raise SpecError(f"spec.engine.extraEnv[{i}].name", f"{env.name} is set by the operator")
    cache = spec.model_cache
    if cache.existing_claim_name and cache.size:
        raise SpecError("spec.modelCache", "set existingClaimName or size, not both")
    if cache.offline and not cache.existing_claim_name and not cache.size:
        raise SpecError(
            "spec.modelCache.offline",
            "offline mode needs a claim the download Job fills (size) or an existing, "
            "pre-populated claim (existingClaimName): an emptyDir starts empty, so the model "
            "could never load",
        )
    if cache.offline and cache.size and cache.download.enabled is False:
        raise SpecError(
            "spec.modelCache.offline",
            "offline mode with a new claim (size) needs the download Job to fill it: remove "
            "download.enabled: false",
        )
    if cache.download.enabled and not (cache.existing_claim_name or cache.size):
        raise SpecError(
            "spec.modelCache.download.enabled",
            "the download Job fills a claim: set size (a new claim) or existingClaimName",
        )
    if cache.download.enabled and (spec.model.repository or "").startswith(("/", ".")):
        raise SpecError(
            "spec.modelCache.download.enabled",
            f"model.repository {spec.model.repository} is a local path: nothing to download",
        )
    if cache.size and not cache.existing_claim_name and spec.replicas > 1 and is_single_node(cache):
        raise SpecError(
            "spec.modelCache.accessModes",
            f"a ReadWriteOnce claim mounts on one node only, so {spec.replicas} replicas cannot "
            "all use it: add ReadWriteMany (or run one replica)",
        )
    _validate_autoscaling(spec)
    sd = spec.shutdown
    tgps = sd.termination_grace_period_seconds
    if tgps is not None and tgps <= sd.pre_stop_sleep_seconds + sd.drain_seconds:
        raise SpecError(
            "spec.shutdown.terminationGracePeriodSeconds",
            f"{tgps} must exceed preStopSleepSeconds + drainSeconds "
            f"({sd.pre_stop_sleep_seconds + sd.drain_seconds})",
        )
    sc = spec.security_context
    if sc.run_as_non_root and sc.run_as_user == 0:
        raise SpecError("spec.securityContext.runAsUser", "runAsNonRoot contradicts runAsUser 0")
    rollout = spec.rollout
    if (
        rollout.strategy == "RollingUpdate"
        and _is_zero(rollout.max_surge)
        and _is_zero(rollout.max_unavailable)
    ):
        # Not a CRD rule: the operator checks it before applying anything, instead of letting
        # the apiserver refuse the Deployment after the other children were already changed.
        raise SpecError(
            "spec.rollout.maxUnavailable",
            "may not be 0 when maxSurge is 0: the rollout could never replace a pod",
        )
    if spec.image.endswith(":latest"):
        raise SpecError("spec.image", "pin a version tag or digest, not :latest")


def _validate_autoscaling(spec: GptOssDeploymentSpec) -> None:
    auto, cache = spec.autoscaling, spec.model_cache
    if auto.min_replicas > auto.max_replicas:
        raise SpecError(
            "spec.autoscaling.minReplicas",
            f"{auto.min_replicas} must not exceed maxReplicas ({auto.max_replicas})",
        )
    if auto.enabled and auto.prometheus_address is None:
        raise SpecError(
            "spec.autoscaling.prometheusAddress",
            "is required when autoscaling is enabled (the Prometheus that scrapes vLLM)",
        )
    if auto.min_replicas == 0 and auto.query is None:
        raise SpecError(
            "spec.autoscaling.query",
            "minReplicas 0 needs a query: vLLM's own metrics vanish with its last pod and could "
            "never scale it up again",
        )
    if (
        auto.enabled
        and auto.max_replicas > 1
        and cache.size
        and not cache.existing_claim_name
        and is_single_node(cache)
    ):
        raise SpecError(
            "spec.modelCache.accessModes",
            "a ReadWriteOnce claim mounts on one node only, so autoscaling past one replica needs "
            "ReadWriteMany",
        )


def is_single_node(cache: ModelCache) -> bool:
    """True when the created claim's access modes allow mounting on one node only."""
    return all(mode == "ReadWriteOnce" for mode in cache.access_modes)


def quantity(value: str) -> float:
    """The number a Kubernetes quantity of the spec's `Quantity` pattern stands for."""
    number = value.rstrip("mkKMGTi")
    return float(number) * _SUFFIXES[value[len(number) :]]


def _not_extended(resource_name: str) -> bool:
    return "kubernetes.io/" in resource_name or resource_name.startswith("requests.")


def _is_zero(value: int | str) -> bool:
    return str(value).rstrip("%") == "0"


def _loc(error: dict[str, Any]) -> str:
    parts = ["spec"]
    for item in error["loc"]:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _without_nulls(value: Any) -> Any:
    """The apiserver drops null fields of a non-nullable schema before defaulting: do the same."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def parse_spec(raw: dict[str, Any]) -> GptOssDeploymentSpec:
    """Validate a raw spec like the apiserver and operator do; raise SpecError naming the field."""
    try:
        # Strict: the apiserver checks JSON types ("1" is not an integer, 1 not a boolean), so
        # the CLI and the operator must not coerce what it would refuse.
        spec = GptOssDeploymentSpec.model_validate(_without_nulls(raw), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(_loc(dict(first)), first["msg"]) from exc
    validate_spec(spec)
    return spec
