"""The vLLM command line and environment of the server container."""

from __future__ import annotations

from typing import Any

from gptoss_operator import flags as f
from gptoss_operator.api import GptOssDeploymentSpec, SecretKeyRef
from gptoss_operator.render import auth
from gptoss_operator.render.resolve import CACHE_MOUNT, ENCODINGS_DIR, VLLM_CACHE_DIR, Resolved

# Set `command` instead of relying on the image's ENTRYPOINT: recent images use
# ["vllm", "serve"], older ones `python3 -m vllm.entrypoints.openai.api_server`.
COMMAND = ["vllm", "serve"]


def vllm_args(spec: GptOssDeploymentSpec, r: Resolved) -> list[str]:
    """Arguments after `vllm serve`: the model, extraArgs, then the managed flags (recipe
    values included, each with a spec field).

    Managed flags come last: argparse keeps the last value of a repeated flag, so even a
    spelling admission missed could not override what the Service, probes and GPU requests rely
    on.
    """
    return [r.repository, *spec.engine.extra_args, *managed_args(spec, r)]


def managed_args(spec: GptOssDeploymentSpec, r: Resolved) -> list[str]:
    """The flags the operator owns (flags.MANAGED_FLAGS refuses them in extraArgs)."""
    engine = spec.engine
    args = [
        *(f.SERVED_MODEL_NAME, r.served_model_name),
        # The recipe text defaults to 127.0.0.1; the Service needs every interface.
        *(f.HOST, "0.0.0.0"),  # noqa: S104
        *(f.PORT, str(r.port)),
        *(f.TENSOR_PARALLEL_SIZE, str(r.tensor_parallel_size)),
        # vLLM's default moved between 0.90 and 0.92 across releases: always explicit.
        *(f.GPU_MEMORY_UTILIZATION, f"{r.gpu_memory_utilization:g}"),
        *(f.MAX_MODEL_LEN, str(r.max_model_len)),
    ]
    if r.max_num_batched_tokens is not None:
        args += [f.MAX_NUM_BATCHED_TOKENS, str(r.max_num_batched_tokens)]
    if r.max_cudagraph_capture_size is not None:
        args += [f.MAX_CUDAGRAPH_CAPTURE_SIZE, str(r.max_cudagraph_capture_size)]
    if engine.max_num_seqs is not None:
        args += [f.MAX_NUM_SEQS, str(engine.max_num_seqs)]
    if r.kv_cache_dtype is not None:
        args += [f.KV_CACHE_DTYPE, r.kv_cache_dtype]
    if engine.stream_interval is not None:
        args += [f.STREAM_INTERVAL, str(engine.stream_interval)]
    if spec.api.tool_calling:
        # Function calling on Chat Completions needs both (recipe, vLLM >= 0.10.2).
        args += [f.TOOL_CALL_PARSER, "openai", f.ENABLE_AUTO_TOOL_CHOICE]
    args += [f.REASONING_PARSER, spec.api.reasoning_parser]
    if spec.model.revision:
        args += [f.REVISION, spec.model.revision]
    # vLLM >= 0.18 drains in-flight requests on SIGTERM for this long (vllm#36666).
    args += [f.SHUTDOWN_TIMEOUT, str(spec.shutdown.drain_seconds)]
    if spec.api.api_key_secret_ref is not None:
        args += [f.MIDDLEWARE, auth.MIDDLEWARE]
    return args


def secret_refs(spec: GptOssDeploymentSpec) -> tuple[tuple[str, str, str], ...]:
    """(spec field, Secret, key) of every Secret key the container reads."""
    refs = (
        ("spec.api.apiKeySecretRef", spec.api.api_key_secret_ref),
        ("spec.modelCache.hfTokenSecretRef", spec.model_cache.hf_token_secret_ref),
    )
    return tuple((field, ref.name, ref.key) for field, ref in refs if ref is not None)


def secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def vllm_env(spec: GptOssDeploymentSpec, r: Resolved) -> list[dict[str, Any]]:
    """The container environment, sorted by name. Secrets only by reference."""
    env: dict[str, dict[str, Any]] = {}
    for item in spec.engine.extra_env:
        env[item.name] = {"name": item.name, "value": item.value}
    env[f.HF_HOME] = {"name": f.HF_HOME, "value": CACHE_MOUNT}
    # torch.compile's cache next to the weights, so a restarted pod on a claim skips recompiling
    # (vLLM keys it by config hash under VLLM_CACHE_ROOT, default ~/.cache/vllm in the container).
    # A default only: a read-only claim needs it elsewhere (extraEnv, e.g. /tmp/vllm).
    env.setdefault(f.VLLM_CACHE_ROOT, {"name": f.VLLM_CACHE_ROOT, "value": VLLM_CACHE_DIR})
    env[f.VLLM_NO_USAGE_STATS] = {"name": f.VLLM_NO_USAGE_STATS, "value": "1"}
    if spec.model_cache.offline or r.download_job:
        # With the download Job the weights are complete before the pod exists: a pod that
        # found a file missing must fail, not download it while holding GPUs.
        env[f.HF_HUB_OFFLINE] = {"name": f.HF_HUB_OFFLINE, "value": "1"}
    if r.download_job:
        # The harmony tokenizer's encoding, fetched by the download Job (docs/weights.md).
        env.setdefault(
            f.TIKTOKEN_ENCODINGS_BASE, {"name": f.TIKTOKEN_ENCODINGS_BASE, "value": ENCODINGS_DIR}
        )
    if spec.model_cache.hf_token_secret_ref is not None:
        env[f.HF_TOKEN] = secret_env(f.HF_TOKEN, spec.model_cache.hf_token_secret_ref)
    if spec.api.api_key_secret_ref is not None:
        # The key goes in the environment, not argv: argv shows in process listings. Both the
        # operator's middleware (every path) and vLLM's own check (/v1...) read this variable.
        env[f.VLLM_API_KEY] = secret_env(f.VLLM_API_KEY, spec.api.api_key_secret_ref)
        env[f.PYTHONPATH] = {"name": f.PYTHONPATH, "value": auth.MOUNT}
        env[f.GPTOSS_OPEN_PATHS] = {
            "name": f.GPTOSS_OPEN_PATHS,
            "value": ",".join(auth.open_paths(spec)),
        }
    sc = spec.security_context
    if sc.run_as_user and f.HOME not in env:
        # vllm/vllm-openai keeps HOME at /root, which another UID cannot write; vLLM, Triton and
        # FlashInfer put their caches under HOME. /tmp is world-writable in the image.
        env[f.HOME] = {"name": f.HOME, "value": "/tmp"}
    return [env[name] for name in sorted(env)]
