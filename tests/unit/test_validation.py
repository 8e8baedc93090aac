"""Bad specs are refused by pydantic/validate_spec and by the CRD's CEL rules, naming the field."""

from __future__ import annotations

from functools import cache
from typing import Any

import celpy
import pytest
from matrix import matrix

from gptoss_operator.api import GptOssDeploymentSpec
from gptoss_operator.cel import RULES_BY_PATH
from gptoss_operator.validation import SpecError, parse_spec
from support.bad_specs import BAD, GOOD_EXTRA_ARGS


def _raw(patch: dict[str, Any]) -> dict[str, Any]:
    return {"model": {"name": "gpt-oss-20b"}, **patch}


@pytest.mark.parametrize(("case", "patch", "field", "by_cel"), BAD, ids=[b[0] for b in BAD])
def test_python_validation_names_field(
    case: str, patch: dict[str, Any], field: str, by_cel: bool
) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_raw(patch))
    assert info.value.field.startswith(field), info.value
    assert field in str(info.value)


# Rules using Kubernetes' own CEL libraries (two-variable comprehensions, quantity, lists' max),
# which cel-python lacks: the admission tests (tests/e2e/test_admission.py and
# test_fuzz_admission.py) run them on the real apiserver, on the same bad specs and fuzz variants.
K8S_ONLY = ("transformList(", "quantity(")
K8S_ONLY_FIELDS = ("spec.engine.extraArgs", "spec.resources")


def _portable(rule: dict[str, Any]) -> bool:
    return not any(marker in rule["rule"] for marker in K8S_ONLY)


@cache
def _programs() -> list[tuple[tuple[str, ...], Any, str]]:
    """The portable rules compiled once: (path below spec, program, message)."""
    env = celpy.Environment()
    return [
        (path, env.program(env.compile(rule["rule"])), rule["message"])
        for path, rules in RULES_BY_PATH.items()
        for rule in filter(_portable, rules())
    ]


def _cel_failures(obj: dict[str, Any]) -> list[str]:
    """Messages of the CEL rules refusing `obj` (a defaulted spec), run as the apiserver does."""
    failures = []
    for path, program, message in _programs():
        node: Any = obj
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        if node is not None and not program.evaluate({"self": celpy.json_to_cel(node)}):
            failures.append(message)
    return failures


def _defaulted(raw: dict[str, Any]) -> dict[str, Any]:
    spec = GptOssDeploymentSpec.model_validate(raw)
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


BY_PORTABLE_CEL = [b for b in BAD if b[3] and not b[2].startswith(K8S_ONLY_FIELDS)]


def test_k8s_only_rules_are_where_expected() -> None:
    """Only the rule sets the unit tier cannot evaluate use Kubernetes' CEL libraries."""
    where = {
        ".".join(("spec", *path))
        for path, rules in RULES_BY_PATH.items()
        for r in rules()
        if not _portable(r)
    }
    assert where == set(K8S_ONLY_FIELDS)


@pytest.mark.parametrize(
    ("case", "patch", "field", "by_cel"), BY_PORTABLE_CEL, ids=[b[0] for b in BY_PORTABLE_CEL]
)
def test_cel_refuses_and_names_field(
    case: str, patch: dict[str, Any], field: str, by_cel: bool
) -> None:
    failures = _cel_failures(_defaulted(_raw(patch)))
    assert failures, f"no CEL rule refused {case}"
    assert any(field in message for message in failures), failures


def test_cel_accepts_whole_matrix() -> None:
    for case_id, spec in matrix():
        obj = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        assert _cel_failures(obj) == [], case_id


def test_good_examples_parse() -> None:
    parse_spec({"model": {"name": "gpt-oss-120b"}, "tensorParallelSize": 1})
    parse_spec({"model": {"name": "gpt-oss-120b"}, "accelerator": {"profile": "H200"}})


@pytest.mark.parametrize("args", GOOD_EXTRA_ARGS, ids=[a[0] for a in GOOD_EXTRA_ARGS])
def test_good_extra_args_are_accepted(args: list[str]) -> None:
    spec = parse_spec(_raw({"engine": {"extraArgs": args}}))
    assert spec.engine.extra_args == args
