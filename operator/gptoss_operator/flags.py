"""The vLLM flags and environment variables the operator owns.

The renderer builds its command line from these constants and the CRD's CEL rules and
`validate_spec` refuse the same names in `extraArgs`/`extraEnv`, so the three cannot drift.
Names are those of `vllm serve` in the pinned release (checked by the contract test).
"""

from __future__ import annotations

SERVED_MODEL_NAME = "--served-model-name"
HOST = "--host"
PORT = "--port"
TENSOR_PARALLEL_SIZE = "--tensor-parallel-size"
GPU_MEMORY_UTILIZATION = "--gpu-memory-utilization"
MAX_MODEL_LEN = "--max-model-len"
MAX_NUM_SEQS = "--max-num-seqs"
MAX_NUM_BATCHED_TOKENS = "--max-num-batched-tokens"
KV_CACHE_DTYPE = "--kv-cache-dtype"
STREAM_INTERVAL = "--stream-interval"
TOOL_CALL_PARSER = "--tool-call-parser"
ENABLE_AUTO_TOOL_CHOICE = "--enable-auto-tool-choice"
REASONING_PARSER = "--reasoning-parser"
REVISION = "--revision"
SHUTDOWN_TIMEOUT = "--shutdown-timeout"
MAX_CUDAGRAPH_CAPTURE_SIZE = "--max-cudagraph-capture-size"
# Loads the operator's API-key middleware; a second one from extraArgs could not be ordered.
MIDDLEWARE = "--middleware"

# Flags the renderer never emits but that would break what it does emit: the API key belongs in a
# Secret (argv shows in process listings), the model and download dir are fixed by the cache layout.
_FORBIDDEN = ("--api-key", "--model", "--download-dir", "--config")
# Short aliases vLLM's parser accepts for managed flags.
_SHORT = ("-tp",)

_EMITTED = (
    SERVED_MODEL_NAME,
    HOST,
    PORT,
    TENSOR_PARALLEL_SIZE,
    GPU_MEMORY_UTILIZATION,
    MAX_MODEL_LEN,
    MAX_NUM_SEQS,
    MAX_NUM_BATCHED_TOKENS,
    KV_CACHE_DTYPE,
    STREAM_INTERVAL,
    TOOL_CALL_PARSER,
    ENABLE_AUTO_TOOL_CHOICE,
    REASONING_PARSER,
    REVISION,
    SHUTDOWN_TIMEOUT,
    MAX_CUDAGRAPH_CAPTURE_SIZE,
    MIDDLEWARE,
)


def _spellings(flag: str) -> tuple[str, ...]:
    # vLLM's FlexibleArgumentParser accepts `--snake_case` for every `--kebab-case` flag.
    snake = "--" + flag[2:].replace("-", "_")
    return (flag,) if snake == flag else (flag, snake)


MANAGED_FLAGS: tuple[str, ...] = tuple(
    sorted({s for f in (*_EMITTED, *_FORBIDDEN) for s in _spellings(f)} | set(_SHORT))
)
"""Every spelling of a flag that `extraArgs` may not contain (as `--flag` or `--flag=value`)."""

HF_HOME = "HF_HOME"
HOME = "HOME"
HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
HF_TOKEN = "HF_TOKEN"  # noqa: S105 - a variable name, not a secret
# The middleware's open paths; PYTHONPATH finds its module in the ConfigMap volume.
GPTOSS_OPEN_PATHS = "GPTOSS_OPEN_PATHS"
PYTHONPATH = "PYTHONPATH"
VLLM_API_KEY = "VLLM_API_KEY"
VLLM_NO_USAGE_STATS = "VLLM_NO_USAGE_STATS"
# A default, not managed: extraEnv may move it off a read-only cache claim.
VLLM_CACHE_ROOT = "VLLM_CACHE_ROOT"

MANAGED_ENV: tuple[str, ...] = tuple(
    sorted(
        {
            HF_HOME,
            HF_HUB_OFFLINE,
            HF_TOKEN,
            GPTOSS_OPEN_PATHS,
            PYTHONPATH,
            "HUGGING_FACE_HUB_TOKEN",
            VLLM_API_KEY,
            VLLM_NO_USAGE_STATS,
        }
    )
)
"""Environment variables the operator sets; `extraEnv` may not contain them."""


def is_managed_arg(arg: str) -> bool:
    """True when `arg` is, or assigns (`--flag=value`), a managed flag."""
    return arg.split("=", 1)[0] in MANAGED_FLAGS
