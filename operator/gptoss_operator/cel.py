"""CEL validation rules of the CRD, generated from the catalog and the managed-flag set.

Each rule has a twin in `validation.validate_spec`; the unit tests run both over the same bad
specs, and the admission tests run the CEL on a real apiserver. Lists and strings the rules walk
have `maxItems`/`maxLength` in the schema so the apiserver's cost estimate stays in budget.
"""

from __future__ import annotations

import json
from typing import Any

from gptoss_operator.api.spec import EXTRA_ARGS_MAX
from gptoss_operator.catalog import MODELS, PROFILES, profile_min_tensor_parallel
from gptoss_operator.flags import (
    ALLOWED_FLAGS,
    CHOICES,
    MANAGED_ENV,
    NEGATIVE_NUMBER,
    REFUSED_FLAGS,
    VALUE_REGEX,
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
            "has(self.modelCache.size)",
            "message": "spec.modelCache.offline needs a cache volume (existingClaimName or size)",
            "fieldPath": ".modelCache.offline",
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


def _is_flag(x: str) -> str:
    return f"({x}.startsWith('-') && !{x}.matches('{NEGATIVE_NUMBER}'))"


def _name(x: str) -> str:
    return f"({x}.contains('=') ? {x}.substring(0, {x}.indexOf('=')) : {x})"


def _value_ok(flag: str, value: str) -> str:
    return (
        f"(!({flag} in K) || {value}.matches(K[{flag}])) && "
        f"(!({flag} in C) || {value} in C[{flag}])"
    )


def _value_why(flag: str, value: str) -> str:
    return (
        f"{flag} + ' takes ' + ({flag} in C && !({value} in C[{flag}]) ? "
        f"'one of ' + C[{flag}].join(', ') : 'a value matching ' + K[{flag}]) + ', not ' + {value}"
    )


def extra_args_rules() -> list[Rule]:
    """Rules on `spec.engine.extraArgs`: the grammar of `flags.extra_args_error`, in CEL.

    One rule, so the flag tables (from vLLM's own parser, `vllm_flags`) appear twice (rule and
    message) rather than once per check: F maps each allowed flag to its arity, R each refused
    one to the reason, K a typed flag to the pattern of its value, C a flag to its choices.
    Items are visited by index over a literal list as long as `maxItems`, because whether a
    value is in place depends on the flags before it.
    """
    idx = _literal(list(range(EXTRA_ARGS_MAX)))
    item = "self[i]"
    name = _name(item)
    assigned = f"{item}.substring({item}.indexOf('=') + 1)"
    # The nearest flag before item i owns it: a bare flag taking a value, the one just before
    # unless it takes one or more.
    owner = f"{idx}.filter(j, j < i && {_is_flag('self[j]')})"
    value_ok = (
        f"i > 0 && cel.bind(js, {owner}, size(js) > 0 && cel.bind(o, self[js.max()], "
        "!o.contains('=') && o in F && (F[o] == '+' || (F[o] != '0' && js.max() == i - 1)) && "
        f"{_value_ok('o', item)}))"
    )
    flag_bad = (
        f"{name} in R || !({name} in F) || ({item}.contains('=') ? "
        f"F[{name}] == '0' || !({_value_ok(name, assigned)}) : "
        f"F[{item}] in ['1', '+'] && !(i + 1 < size(self) && !{_is_flag('self[i + 1]')}))"
    )
    bad = f"i < size(self) && ({_is_flag(item)} ? ({flag_bad}) : !({value_ok}))"
    bind = (
        f"cel.bind(F, {_literal(ALLOWED_FLAGS)}, cel.bind(R, {_literal(REFUSED_FLAGS)}, "
        f"cel.bind(K, {_literal(VALUE_REGEX)}, cel.bind(C, {_literal(CHOICES)}, "
    )
    # The owner again, for the message about a value.
    owner_name = f"cel.bind(js, {owner}, size(js) > 0 ? self[js.max()] : '')"
    value_message = (
        f"cel.bind(o, {owner_name}, o in F && !o.contains('=') && F[o] != '0' && "
        f"(F[o] == '+' || {owner}.max() == i - 1) ? {_value_why('o', item)} : "
        f"'value ' + {item} + ' does not follow a flag that takes it')"
    )
    message = (
        f"cel.bind(i, {idx}.filter(i, {bad})[0], 'spec.engine.extraArgs[' + string(i) + ']: ' + "
        f"({_is_flag(item)} ? ({name} in R ? {name} + ' is not allowed: ' + R[{name}] : "
        f"!({name} in F) ? {name} + ' is not a flag of vllm serve {VLLM_VERSION} (exact "
        "spelling with - not _, no abbreviation, one flag or value per item)' : "
        f"{item}.contains('=') ? (F[{name}] == '0' ? {name} + ' takes no value' : "
        f"{_value_why(name, assigned)}) : "
        f"{name} + ' needs a value in the next item') : {value_message}))"
    )
    return [
        {
            "rule": f"{bind}{idx}.all(i, !({bad}))))))",
            "messageExpression": f"{bind}{message}))))",
            "reason": "FieldValueInvalid",
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
    ("accelerator", "custom"): custom_accelerator_rules,
    ("resources",): resources_rules,
    ("modelCache",): model_cache_rules,
    ("shutdown",): shutdown_rules,
    ("engine", "extraArgs"): extra_args_rules,
    ("engine", "extraEnv"): extra_env_rules,
    ("image",): image_rules,
}
"""Where each rule set attaches, as a property path below `spec`."""
