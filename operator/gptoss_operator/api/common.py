"""Names of the API and the base model every API type shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
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

LabelMap = Annotated[dict[str, str], Field(max_length=64)]
"""A map of label or annotation keys to values."""
