"""CEL validation rules of the CRD, generated from the catalog and the managed-flag set.

Each rule has a twin in `validation.validate_spec`; the unit tests run both over the same bad
specs, and the admission tests run the CEL on a real apiserver. Lists and strings the rules walk
have `maxItems`/`maxLength` in the schema so the apiserver's cost estimate stays in budget.
"""

from __future__ import annotations

import json
from typing import Any

from gptoss_operator.catalog import MODELS, PROFILES, profile_min_tensor_parallel
from gptoss_operator.flags import MANAGED_ENV, MANAGED_FLAGS

Rule = dict[str, Any]


def _literal(value: object) -> str:
    """A CEL literal for a str/int map or list (JSON syntax is valid CEL for these)."""
    return json.dumps(value, sort_keys=True).replace('"', "'")


def _gpus_per_node(acc: str = "self.accelerator") -> str:
    defaults = _literal({p.name: p.gpus_per_node for p in PROFILES.values()})
    return (
        f"(has({acc}.gpusPerNode) ? {acc}.gpusPerNode : "
        f"has({acc}.custom) ? {acc}.custom.gpusPerNode : {defaults}[{acc}.profile])"
    )


def _min_tp_map() -> str:
    return _literal(
        {f"{m}/{p}": profile_min_tensor_parallel(m, p) for m in MODELS for p in PROFILES}
    )


def _min_vram_map() -> str:
    return _literal({m.name: m.min_vram_gib for m in MODELS.values()})


def _needs() -> str:
    return ", ".join(f"{m.name} about {m.min_vram_gib} GiB" for m in MODELS.values())


def spec_rules() -> list[Rule]:
    """Cross-field rules on `spec`."""
    gpn = _gpus_per_node()
    key = "self.model.name + '/' + self.accelerator.profile"
    vram = f"{_min_vram_map()}[self.model.name]"
    tp = "self.tensorParallelSize"
    return [
        {
            "rule": f"!has(self.tensorParallelSize) || {tp} <= {gpn}",
            "message": "spec.tensorParallelSize must not exceed the accelerator's GPUs per node",
            "fieldPath": ".tensorParallelSize",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.accelerator.profile) || {_min_tp_map()}[{key}] <= {gpn}",
            "message": "spec.accelerator: the model does not fit on the GPUs of one node of this "
            f"profile (GPU memory needed: {_needs()})",
            "fieldPath": ".accelerator",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.accelerator.custom) || {gpn} * self.accelerator.custom.gpuMemoryGiB"
            f" >= {vram}",
            "message": "spec.accelerator.custom: the model does not fit on the GPUs of one node",
            "fieldPath": ".accelerator.custom",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.tensorParallelSize) || !has(self.accelerator.profile) || "
            f"{tp} >= {_min_tp_map()}[{key}]",
            "message": "spec.tensorParallelSize is too small for the model weights on this profile",
            "fieldPath": ".tensorParallelSize",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": f"!has(self.tensorParallelSize) || !has(self.accelerator.custom) || "
            f"{tp} * self.accelerator.custom.gpuMemoryGiB >= {vram}",
            "message": "spec.tensorParallelSize is too small for the model weights on this GPU",
            "fieldPath": ".tensorParallelSize",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "!has(self.modelCache) || !has(self.modelCache.offline) || "
            "!self.modelCache.offline || has(self.modelCache.existingClaimName)",
            "message": "spec.modelCache.offline needs an existing, pre-populated claim "
            "(existingClaimName): an emptyDir or a new claim from size starts empty",
            "fieldPath": ".modelCache.offline",
            "reason": "FieldValueInvalid",
        },
        {
            # Scaling through the scale subresource is validated too, so HPA and kubectl scale
            # cannot get past it either.
            "rule": "!has(self.modelCache) || !has(self.modelCache.size) || "
            "has(self.modelCache.existingClaimName) || !has(self.replicas) || self.replicas <= 1"
            " || (has(self.modelCache.accessModes) && "
            "self.modelCache.accessModes.exists(m, m != 'ReadWriteOnce'))",
            "message": "spec.modelCache.accessModes: a ReadWriteOnce claim mounts on one node "
            "only, so more than one replica needs ReadWriteMany",
            "fieldPath": ".modelCache.accessModes",
            "reason": "FieldValueInvalid",
        },
    ]


def accelerator_rules() -> list[Rule]:
    """Rules on `spec.accelerator`."""
    return [
        {
            "rule": "has(self.profile) != has(self.custom)",
            "message": "spec.accelerator: set exactly one of profile and custom",
        }
    ]


def model_cache_rules() -> list[Rule]:
    """Rules on `spec.modelCache`."""
    return [
        {
            "rule": "!(has(self.existingClaimName) && has(self.size))",
            "message": "spec.modelCache: set existingClaimName or size, not both",
        }
    ]


def shutdown_rules() -> list[Rule]:
    """Rules on `spec.shutdown`."""
    return [
        {
            "rule": "!has(self.terminationGracePeriodSeconds) || "
            "self.terminationGracePeriodSeconds > "
            "(has(self.preStopSleepSeconds) ? self.preStopSleepSeconds : 15) + "
            "(has(self.drainSeconds) ? self.drainSeconds : 45)",
            "message": "spec.shutdown.terminationGracePeriodSeconds must exceed "
            "preStopSleepSeconds + drainSeconds",
            "fieldPath": ".terminationGracePeriodSeconds",
            "reason": "FieldValueInvalid",
        }
    ]


def security_context_rules() -> list[Rule]:
    """Rules on `spec.securityContext`."""
    return [
        {
            "rule": "!(has(self.runAsNonRoot) && self.runAsNonRoot && "
            "has(self.runAsUser) && self.runAsUser == 0)",
            "message": "spec.securityContext.runAsUser: runAsNonRoot contradicts runAsUser 0",
            "fieldPath": ".runAsUser",
            "reason": "FieldValueInvalid",
        }
    ]


def extra_args_rules() -> list[Rule]:
    """Rules on `spec.engine.extraArgs`."""
    flags = _literal(list(MANAGED_FLAGS))
    return [
        {
            "rule": f"self.all(a, !{flags}.exists(f, a == f || a.startsWith(f + '=')))",
            "message": "spec.engine.extraArgs must not contain a flag the operator manages "
            "(see the matching spec field): " + ", ".join(f for f in MANAGED_FLAGS if "_" not in f),
            "reason": "FieldValueForbidden",
        }
    ]


def extra_env_rules() -> list[Rule]:
    """Rules on `spec.engine.extraEnv`."""
    return [
        {
            "rule": f"self.all(e, !(e.name in {_literal(list(MANAGED_ENV))}))",
            "message": "spec.engine.extraEnv must not set a variable the operator manages: "
            + ", ".join(MANAGED_ENV),
            "reason": "FieldValueForbidden",
        }
    ]


def image_rules() -> list[Rule]:
    """Rules on `spec.image`."""
    return [
        {
            "rule": "!self.endsWith(':latest')",
            "message": "spec.image must be pinned to a version tag or digest, not :latest",
        }
    ]


RULES_BY_PATH: dict[tuple[str, ...], Any] = {
    (): spec_rules,
    ("accelerator",): accelerator_rules,
    ("modelCache",): model_cache_rules,
    ("shutdown",): shutdown_rules,
    ("securityContext",): security_context_rules,
    ("engine", "extraArgs"): extra_args_rules,
    ("engine", "extraEnv"): extra_env_rules,
    ("image",): image_rules,
}
"""Where each rule set attaches, as a property path below `spec`."""
