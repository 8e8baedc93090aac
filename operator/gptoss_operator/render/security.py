"""Who the operator's containers run as: the vLLM pods and the download Job alike."""

from __future__ import annotations

from typing import Any

from gptoss_operator.api import GptOssDeploymentSpec


def _run_as_non_root(spec: GptOssDeploymentSpec) -> bool | None:
    sc = spec.security_context
    if sc.run_as_non_root is not None:
        return sc.run_as_non_root
    return True if sc.run_as_user else None


def pod_security_context(spec: GptOssDeploymentSpec) -> dict[str, Any]:
    """User, groups and seccomp of the pod: what a `restricted` namespace checks."""
    sc = spec.security_context
    fs_group = sc.fs_group if sc.fs_group is not None else sc.run_as_group
    context: dict[str, Any] = {
        "runAsUser": sc.run_as_user,
        "runAsGroup": sc.run_as_group,
        "runAsNonRoot": _run_as_non_root(spec),
        "fsGroup": fs_group,
        # The default, Always, walks and re-chowns the whole model cache at every mount;
        # OnRootMismatch only when the volume's top directory has the wrong group.
        "fsGroupChangePolicy": "OnRootMismatch" if fs_group is not None else None,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {k: v for k, v in context.items() if v is not None}


def container_security_context() -> dict[str, Any]:
    """vLLM needs no capability and no setuid: the GPU devices come from the device plugin."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
