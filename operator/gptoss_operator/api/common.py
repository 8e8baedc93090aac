"""Names of the API and the base model every API type shares."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "gptoss.dev"
VERSION = "v1alpha1"
KIND = "GptOssDeployment"
PLURAL = "gptossdeployments"
SINGULAR = "gptossdeployment"
SHORT_NAME = "gptoss"


class ApiModel(BaseModel):
    """Base of the API types: camelCase on the wire, attribute docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]
"""An integer or a percentage string, like a Deployment's maxSurge."""

Quantity = Annotated[
    str,
    Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$", max_length=32),
]
"""A Kubernetes resource quantity such as `8`, `500m` or `96Gi`."""

# Kubernetes' label and annotation syntax (apimachinery validation): an optional DNS-subdomain
# prefix and a name of at most 63 characters; label values the same charset, at most 63. The
# pod or Service would be refused at apply time otherwise, after admission said yes.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
MAX_KEY = 253 + 1 + 63
MAX_ENTRIES = 64


def _cel_escaped(pattern: str) -> str:
    return pattern.replace("\\", "\\\\")


def _key_rule(kind: str) -> dict[str, str]:
    return {
        # Backslashes doubled: the pattern sits in a CEL string literal.
        "rule": f"self.all(k, size(k) <= {MAX_KEY} && k.matches('{_cel_escaped(LABEL_KEY)}'))",
        "message": f"keys must be valid {kind} keys: [prefix/]name, name at most 63 characters of "
        "letters, digits, -, _ and . starting and ending with a letter or digit",
    }


def _check_map(values: bool) -> AfterValidator:
    def check(mapping: dict[str, str]) -> dict[str, str]:
        for key, value in mapping.items():
            if len(key) > MAX_KEY or re.fullmatch(LABEL_KEY, key) is None:
                raise ValueError(f"{key!r} is not a valid key")
            if values and re.fullmatch(LABEL_VALUE, value) is None:
                raise ValueError(f"{key}: {value!r} is not a valid label value")
        return mapping

    return AfterValidator(check)


LabelMap = Annotated[
    dict[str, str],
    Field(max_length=MAX_ENTRIES),
    _check_map(values=True),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_ENTRIES,
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
            "x-kubernetes-validations": [_key_rule("label")],
        }
    ),
]
"""A map of label keys to values (a label set or selector), with Kubernetes' label syntax."""

AnnotationMap = Annotated[
    dict[str, str],
    Field(max_length=MAX_ENTRIES),
    _check_map(values=False),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_ENTRIES,
            "additionalProperties": {"type": "string", "maxLength": 4096},
            "x-kubernetes-validations": [_key_rule("annotation")],
        }
    ),
]
"""A map of annotation keys to values."""
