"""CEL validation rules of the CRD, generated from the catalog and the managed-flag set.

Each rule has a twin in `validation.validate_spec`; the unit tests run both over the same bad
specs, and the admission tests run the CEL on a real apiserver. Lists and strings the rules walk
have `maxItems`/`maxLength` in the schema so the apiserver's cost estimate stays in budget.
"""

from __future__ import annotations

import json
from typing import Any

from gptoss_operator.api.spec import EXTRA_ARGS_MAX, MIN_GPU_MEMORY_UTILIZATION
from gptoss_operator.catalog import MODELS, PROFILES, profile_min_tensor_parallel
from gptoss_operator.flags import (
    ALLOWED_FLAGS,
    CHOICES,
    KIND_REGEX,
    MANAGED_ENV,
    NEGATIVE_NUMBER,
    REFUSED_FLAGS,
    VALUE_KINDS,
)
from gptoss_operator.validation import MIN_CPU, MIN_MEMORY
from gptoss_operator.vllm_flags import VLLM_VERSION

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
            "!self.modelCache.offline || has(self.modelCache.existingClaimName) || "
            "(has(self.modelCache.size) && !(has(self.modelCache.download) && "
            "has(self.modelCache.download.enabled) && !self.modelCache.download.enabled))",
            "message": "spec.modelCache.offline needs a claim the download Job fills (size) or "
            "an existing, pre-populated claim (existingClaimName): an emptyDir starts empty",
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
        {
            # The autoscaler would be refused at its first scale-up past one replica.
            "rule": "!has(self.autoscaling) || !has(self.autoscaling.enabled) || "
            "!self.autoscaling.enabled || !has(self.modelCache) || !has(self.modelCache.size) || "
            "has(self.modelCache.existingClaimName) || "
            "(has(self.autoscaling.maxReplicas) ? self.autoscaling.maxReplicas : 2) <= 1"
            " || (has(self.modelCache.accessModes) && "
            "self.modelCache.accessModes.exists(m, m != 'ReadWriteOnce'))",
            "message": "spec.modelCache.accessModes: a ReadWriteOnce claim mounts on one node "
            "only, so autoscaling past one replica needs ReadWriteMany",
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


def engine_rules() -> list[Rule]:
    """Rules on `spec.engine`."""
    return [
        {
            # The schema's `minimum` is truncated to an integer for integer values (0 passes
            # minimum 0.05 in the pinned apiserver), so the bound is checked here as well.
            "rule": "!has(self.gpuMemoryUtilization) || "
            f"double(self.gpuMemoryUtilization) >= {MIN_GPU_MEMORY_UTILIZATION}",
            "message": "spec.engine.gpuMemoryUtilization must be at least "
            f"{MIN_GPU_MEMORY_UTILIZATION}",
            "fieldPath": ".gpuMemoryUtilization",
            "reason": "FieldValueInvalid",
        }
    ]


def custom_accelerator_rules() -> list[Rule]:
    """Rules on `spec.accelerator.custom`."""
    return [
        {
            "rule": "!self.resourceName.contains('kubernetes.io/') && "
            "!self.resourceName.startsWith('requests.')",
            "message": "spec.accelerator.custom.resourceName must be an extended resource outside "
            "kubernetes.io, without the requests. prefix",
            "fieldPath": ".resourceName",
            "reason": "FieldValueInvalid",
        }
    ]


def resources_rules() -> list[Rule]:
    """Rules on `spec.resources`: lower bounds (Kubernetes' CEL quantity library)."""
    return [
        {
            "rule": f"!has(self.{field}) || "
            f"quantity(self.{field}).compareTo(quantity('{least}')) >= 0",
            "message": f"spec.resources.{field} must be at least {least}",
            "fieldPath": f".{field}",
            "reason": "FieldValueInvalid",
        }
        for field, least in (("cpu", MIN_CPU), ("memory", MIN_MEMORY))
    ]


def model_cache_rules() -> list[Rule]:
    """Rules on `spec.modelCache`."""
    return [
        {
            "rule": "!(has(self.existingClaimName) && has(self.size))",
            "message": "spec.modelCache: set existingClaimName or size, not both",
        },
        {
            "rule": "!has(self.download) || !has(self.download.enabled) || "
            "!self.download.enabled || has(self.existingClaimName) || has(self.size)",
            "message": "spec.modelCache.download.enabled: the download Job fills a claim: set "
            "size (a new claim) or existingClaimName",
            "fieldPath": ".download.enabled",
        },
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


def autoscaling_rules() -> list[Rule]:
    """Rules on `spec.autoscaling`."""
    return [
        {
            "rule": "(has(self.minReplicas) ? self.minReplicas : 1) <= "
            "(has(self.maxReplicas) ? self.maxReplicas : 2)",
            "message": "spec.autoscaling.minReplicas must not exceed maxReplicas",
            "fieldPath": ".minReplicas",
            "reason": "FieldValueInvalid",
        },
        {
            "rule": "!has(self.enabled) || !self.enabled || has(self.prometheusAddress)",
            "message": "spec.autoscaling.prometheusAddress is required when autoscaling is "
            "enabled (the Prometheus that scrapes vLLM)",
            "fieldPath": ".prometheusAddress",
            "reason": "FieldValueRequired",
        },
        {
            "rule": "!has(self.minReplicas) || self.minReplicas > 0 || has(self.query)",
            "message": "spec.autoscaling.minReplicas 0 needs spec.autoscaling.query: vLLM's own "
            "metrics vanish with its last pod and could never scale it up again",
            "fieldPath": ".query",
            "reason": "FieldValueRequired",
        },
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


def _let(name: str, value: str, expr: str) -> str:
    """`expr` with `name` bound to `value`, for a boolean expr: the apiserver's CEL has no
    cel.bind, but a comprehension over a one-item list binds its variable just the same."""
    return f"[{value}].all({name}, {expr})"


def _let_str(name: str, value: str, expr: str) -> str:
    """`_let` for an expression of any type (a message)."""
    return f"[{value}].map({name}, {expr})[0]"


def _is_flag(x: str) -> str:
    return f"({x}.startsWith('-') && !{x}.matches('{NEGATIVE_NUMBER}'))"


def _name(x: str) -> str:
    return f"({x}.contains('=') ? {x}.substring(0, {x}.indexOf('=')) : {x})"


def _value_ok(flag: str, value: str) -> str:
    """CEL: `value` has the type of `flag` (constant regexes: the cost estimate needs their
    length) and, when the flag has choices, is one of them (a map lookup of "flag=value")."""
    kinds = " : ".join(
        f"K[{flag}] == '{kind}' ? {value}.matches('{_escape(regex)}')"
        for kind, regex in KIND_REGEX.items()
    )
    return (
        f"(!({flag} in K) || ({kinds} : false)) && "
        f"(!({flag} in C) || ({flag} + '=' + {value}) in V)"
    )


def _escape(regex: str) -> str:
    return regex.replace("\\", "\\\\")


def _value_why(flag: str, value: str) -> str:
    return (
        f"{flag} + ' takes ' + ({flag} in C ? 'one of ' + C[{flag}] : 'a value of kind ' + "
        f"K[{flag}]) + ', not ' + {value}"
    )


def extra_args_rules() -> list[Rule]:
    """Rules on `spec.engine.extraArgs`: the grammar of `flags.extra_args_error`, in CEL.

    One rule, so the flag tables (from vLLM's own parser, `vllm_flags`) appear twice (rule and
    message) rather than once per check: F maps each allowed flag to its arity, R each refused
    one to the reason, K a typed flag to its kind, C a flag with choices to their list (for the
    message) and V holds every allowed "flag=choice". Per-item facts are computed once (FL: is
    a flag, N: the flag's name, A: the value after `=`, OW: the index of the flag that owns a
    value item, -1 for none), so the nested loop stays within the apiserver's cost budget.
    """
    item = "self[i]"
    owner = "self[OW[i]]"
    value_ok = (
        f"OW[i] >= 0 && !{owner}.contains('=') && {owner} in F && "
        f"(F[{owner}] == '+' || (F[{owner}] != '0' && OW[i] == i - 1)) && "
        f"{_value_ok(owner, item)}"
    )
    flag_bad = (
        "N[i] in R || !(N[i] in F) || "
        f"({item}.contains('=') ? F[N[i]] == '0' || !({_value_ok('N[i]', 'A[i]')}) : "
        "F[N[i]] in ['1', '+'] && !(i + 1 < size(self) && !FL[i + 1]))"
    )
    bad = f"(FL[i] ? ({flag_bad}) : !({value_ok}))"
    choice_values = {f"{flag}={v}": True for flag, values in CHOICES.items() for v in values}
    tables = (
        ("F", _literal(ALLOWED_FLAGS)),
        ("R", _literal(REFUSED_FLAGS)),
        ("K", _literal(VALUE_KINDS)),
        ("C", _literal({flag: ", ".join(values) for flag, values in CHOICES.items()})),
        ("V", _literal(choice_values)),
        ("FL", f"self.map(a, {_is_flag('a')})"),
        ("N", f"self.map(a, {_name('a')})"),
        ("A", "self.map(a, a.contains('=') ? a.substring(a.indexOf('=') + 1) : '')"),
        (
            "OW",
            "self.transformList(i, v, ([-1] + self.transformList(j, w, j < i && FL[j], j)).max())",
        ),
    )
    rule = f"self.all(i, v, !{bad})"
    # string(i) has no size bound for the cost estimate; a list of constants does.
    index_text = _literal([str(n) for n in range(EXTRA_ARGS_MAX)])
    value_message = (
        f"OW[i] >= 0 && !{owner}.contains('=') && {owner} in F && F[{owner}] != '0' && "
        f"(F[{owner}] == '+' || OW[i] == i - 1) ? {_value_why(owner, item)} : "
        f"'value ' + {item} + ' does not follow a flag that takes it'"
    )
    message = _let_str(
        "i",
        f"self.transformList(i, v, {bad}, i)[0]",
        f"'spec.engine.extraArgs[' + {index_text}[i] + ']: ' + "
        "(FL[i] ? (N[i] in R ? N[i] + ' is not allowed: ' + R[N[i]] : "
        f"!(N[i] in F) ? N[i] + ' is not a flag of vllm serve {VLLM_VERSION} (exact "
        "spelling with - not _, no abbreviation, one flag or value per item)' : "
        f"{item}.contains('=') ? (F[N[i]] == '0' ? N[i] + ' takes no value' : "
        f"{_value_why('N[i]', 'A[i]')}) : "
        f"N[i] + ' needs a value in the next item') : {value_message})",
    )
    for var, table in reversed(tables):
        rule = _let(var, table, rule)
        message = _let_str(var, table, message)
    return [{"rule": rule, "messageExpression": message, "reason": "FieldValueInvalid"}]


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
    ("engine",): engine_rules,
    ("accelerator", "custom"): custom_accelerator_rules,
    ("resources",): resources_rules,
    ("modelCache",): model_cache_rules,
    ("shutdown",): shutdown_rules,
    ("securityContext",): security_context_rules,
    ("autoscaling",): autoscaling_rules,
    ("engine", "extraArgs"): extra_args_rules,
    ("engine", "extraEnv"): extra_env_rules,
    ("image",): image_rules,
}
"""Where each rule set attaches, as a property path below `spec`."""
