"""Operator-wide settings: set once at start from the command line (the chart's values).

Rendering stays pure: the reconcile plan passes these values to the renderer as arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from gptoss_operator.catalog import DEFAULT_GPU_NODE_LABELS, PROFILES, GpuNodeLabels

GPU_NODE_LABELS_ENV = "GPTOSS_GPU_NODE_LABELS"
# Kubernetes label syntax: an optional DNS-subdomain prefix, a name, and values of the same shape.
_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE = re.compile(rf"^{_NAME}?$")


def parse_gpu_node_labels(text: str) -> GpuNodeLabels:
    """Per-profile GPU node labels from JSON `{profile: {labelKey: [values]}}`.

    Profiles left out keep GPU feature discovery's `nvidia.com/gpu.product`. A profile's entry
    replaces its default entirely; several keys mean "a node with any of them". Raises ValueError
    naming the bad part.
    """
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"gpu node labels: not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ValueError("gpu node labels: expected an object {profile: {labelKey: [values]}}")
    merged = dict(DEFAULT_GPU_NODE_LABELS)
    for profile, labels in raw.items():
        if profile not in PROFILES:
            raise ValueError(
                f"gpu node labels: unknown profile {profile!r} ({', '.join(PROFILES)})"
            )
        if not isinstance(labels, dict) or not labels:
            raise ValueError(f"gpu node labels: {profile}: expected {{labelKey: [values]}}")
        entry: dict[str, tuple[str, ...]] = {}
        for key, values in labels.items():
            if not _KEY.match(key):
                raise ValueError(f"gpu node labels: {profile}: {key!r} is not a label key")
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str) and _VALUE.match(v) for v in values)
            ):
                raise ValueError(
                    f"gpu node labels: {profile}.{key}: expected a non-empty list of label values"
                )
            entry[key] = tuple(values)
        merged[profile] = entry
    return merged


@dataclass(frozen=True)
class OperatorSettings:
    """What the operator was started with."""

    gpu_node_labels: GpuNodeLabels = field(default_factory=lambda: dict(DEFAULT_GPU_NODE_LABELS))
    # Namespaces watched; empty means the whole cluster.
    namespaces: tuple[str, ...] = ()
    # A full re-list of every watched kind this often: objects deleted while a watch was
    # reconnecting leave the caches, and a cache that stopped following the cluster is caught.
    resync_seconds: float = 300.0
    # One writer among replicas, through a coordination.k8s.io Lease (None: no election).
    lease: tuple[str, str] | None = None  # (namespace, name)
    # Where /metrics is served (address, port); None: not served.
    metrics: tuple[str, int] | None = None


_current = OperatorSettings()


def configure(settings: OperatorSettings) -> None:
    """Set the settings of this process (called once, before the handlers run)."""
    global _current
    _current = settings


def current() -> OperatorSettings:
    """The settings of this process."""
    return _current
