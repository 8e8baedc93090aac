"""Generated docs: the defaults table (from the catalog) and the API reference (from the CRD).

Python gathers the facts; the page layout lives in the jinja2 templates of `templates/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from gptoss_operator.api import GptOssDeploymentSpec, ModelRef
from gptoss_operator.catalog import (
    DEFAULT_IMAGE,
    MODELS,
    PROFILES,
    RECIPE,
    GpuProfile,
    profile_min_tensor_parallel,
)
from gptoss_operator.crd import openapi_schema
from gptoss_operator.render import Resolved, resolve
from gptoss_operator.render.resolve import CACHE_MOUNT, VLLM_CACHE_DIR
from gptoss_operator.validation import SpecError


def _cell(text: str) -> str:
    """Text as one Markdown table cell: no column breaks, no HTML tags, one line."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gptoss_operator", "templates"),
        # Markdown, not HTML: cells are escaped for tables by the `cell` filter instead.
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = _cell
    # Not jinja2's `tojson`: that one escapes <, > and & for HTML.
    env.filters["json"] = json.dumps
    return env


@dataclass(frozen=True)
class DefaultsRow:
    """One model on one GPU profile: what the operator picks when the spec leaves it open."""

    model: str
    profile: str
    memory_gib: float
    gpus_per_node: int
    min_tensor_parallel: int
    fits: bool
    tensor_parallel: int = 0
    cpu: str = ""
    batched_tokens: str = ""
    notes: list[str] = field(default_factory=list)
    cached_seconds: int = 0
    download_seconds: int = 0


def _batched(profile: GpuProfile, r: Resolved, tight: bool) -> str:
    if tight:
        return f"{r.max_num_batched_tokens} (recipe, H100 TP1 known limitation)"
    if profile.recipe_batched_tokens is not None:
        return f"{profile.recipe_batched_tokens} (recipe)"
    return f"not set: vLLM's {profile.vllm_default_batched_tokens} (get_batch_defaults)"


def defaults_rows() -> list[DefaultsRow]:
    """Every model on every profile, resolved exactly as the operator resolves a bare spec."""
    rows = []
    for model in MODELS.values():
        for profile in PROFILES.values():
            spec = GptOssDeploymentSpec(
                model=ModelRef(name=model.name),
                accelerator={"profile": profile.name},
            )
            row = DefaultsRow(
                model=model.name,
                profile=profile.name,
                memory_gib=profile.memory_gib,
                gpus_per_node=profile.gpus_per_node,
                min_tensor_parallel=profile_min_tensor_parallel(model.name, profile.name),
                fits=False,
            )
            try:
                r = resolve(spec)
            except SpecError:
                rows.append(row)
                continue
            tight = r.gpu_memory_utilization != spec.engine.gpu_memory_utilization
            notes = []
            if r.max_cudagraph_capture_size is not None:
                notes.append(f"`--max-cudagraph-capture-size {r.max_cudagraph_capture_size}`")
            if r.kv_cache_dtype is not None:
                notes.append(f"`--kv-cache-dtype {r.kv_cache_dtype}`")
            if tight:
                notes.append(f"tight fit: `--gpu-memory-utilization {r.gpu_memory_utilization:g}`")
            rows.append(
                replace(
                    row,
                    fits=True,
                    tensor_parallel=r.tensor_parallel_size,
                    cpu=r.cpu,
                    batched_tokens=_batched(profile, r, tight),
                    notes=notes,
                    cached_seconds=model.startup_budget_seconds,
                    download_seconds=r.startup_budget_seconds,
                )
            )
    return rows


def defaults_md() -> str:
    """docs/defaults.md: what each model gets on each GPU profile, and where each number is from."""
    template = _environment().get_template("defaults.md.j2")
    return template.render(
        image=DEFAULT_IMAGE,
        rows=defaults_rows(),
        recipe=RECIPE,
        cache_mount=CACHE_MOUNT,
        vllm_cache_dir=VLLM_CACHE_DIR,
        profiles=list(PROFILES.values()),
        models=list(MODELS.values()),
    )


@dataclass(frozen=True)
class FieldRow:
    """One field of the CRD's schema, as the API reference lists it."""

    path: str
    type: str
    required: bool
    has_default: bool
    default: Any
    description: str


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type(node.get('items', {}))}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return "map[string]string"
    if "enum" in node:
        return f"{kind}: " + ", ".join(f"`{v}`" for v in node["enum"])
    return kind


def _fields(path: str, node: dict[str, Any], required: set[str]) -> list[FieldRow]:
    """The fields under `node`, depth first; an array's item fields read `path[].field`."""
    rows = []
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}"
        rows.append(
            FieldRow(
                path=here,
                type=_type(sub),
                required=name in required,
                has_default="default" in sub,
                default=sub.get("default"),
                description=sub.get("description", ""),
            )
        )
        if sub.get("type") == "array":
            sub, here = sub.get("items", {}), here + "[]"
        rows += _fields(here, sub, set(sub.get("required", [])))
    return rows


def api_reference_md() -> str:
    """docs/api-reference.md: every field of the CRD with its type, default and description."""
    schema = openapi_schema()
    sections = []
    for part in ("spec", "status"):
        node = schema["properties"][part]
        sections.append(
            {
                "name": part,
                "description": node.get("description", ""),
                "fields": _fields(part, node, set(node.get("required", []))),
            }
        )
    return _environment().get_template("api-reference.md.j2").render(sections=sections)


def write_docs(out: Path) -> list[Path]:
    """Write both generated pages into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    pages = {"defaults.md": defaults_md(), "api-reference.md": api_reference_md()}
    written = []
    for name, text in pages.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
