"""The vLLM flags and environment variables the operator owns.

The renderer builds its command line from these constants and the CRD's CEL rules and
`validate_spec` refuse the same names in `extraArgs`/`extraEnv`, so the three cannot drift.
Names are those of `vllm serve` in the pinned release: `vllm_flags` is generated from its parser
(the contract test checks it), so aliases of a managed flag are refused with it.
"""

from __future__ import annotations

import re

from gptoss_operator import vllm_flags

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

# Flags the renderer never emits but that would break what it does emit, by vLLM dest (so every
# alias, e.g. -pp or --device-memory-utilization, is refused with its long flag).
_REFUSED: dict[str, str] = {
    # Secrets in argv show in process listings: the spec takes them as Secret references.
    "api_key": "use spec.api.apiKeySecretRef (argv is visible in process listings)",
    "hf_token": "use spec.modelCache.hfTokenSecretRef (argv is visible in process listings)",
    # The model, its files and the cache layout are the operator's.
    "model": "use spec.model",
    "download_dir": "the weights cache is spec.modelCache",
    "config": "a config file would override the managed flags",
    "help": "prints help and exits",
    # The Service, probes and GPU requests assume one HTTP server on the pod's port, using exactly
    # the tensor-parallel GPUs the pod requests.
    "uds": "the Service needs the TCP port",
    "headless": "the Service needs the API server",
    "grpc": "the Service and probes speak HTTP",
    "ssl_keyfile": "the probes speak plain HTTP",
    "ssl_certfile": "the probes speak plain HTTP",
    "pipeline_parallel_size": "the pod requests tensorParallelSize GPUs; more would not fit",
    "prefill_context_parallel_size": "the pod requests tensorParallelSize GPUs; more would not fit",
    "nnodes": "one replica runs on one node",
    "node_rank": "one replica runs on one node",
}


def _dests_refused() -> dict[str, str]:
    refused = dict(_REFUSED)
    for flag in _EMITTED:
        refused[vllm_flags.FLAGS[flag][0]] = "managed by the operator; use the matching spec field"
    for dest, _ in vllm_flags.FLAGS.values():
        if dest.startswith("data_parallel"):
            # Each replica is one pod: scale with spec.replicas instead.
            refused[dest] = "use spec.replicas (one pod per replica)"
    return refused


REFUSED_DESTS: dict[str, str] = _dests_refused()
"""vLLM dests `extraArgs` may not set, with the reason."""

REFUSED_FLAGS: dict[str, str] = {
    option: REFUSED_DESTS[dest]
    for option, (dest, _) in sorted(vllm_flags.FLAGS.items())
    if dest in REFUSED_DESTS
}
"""Every option string (long flags and aliases) of a refused dest, with the reason."""

ALLOWED_FLAGS: dict[str, str] = {
    option: arity
    for option, (dest, arity) in sorted(vllm_flags.FLAGS.items())
    if dest not in REFUSED_DESTS
}
"""Flags `extraArgs` may contain, exactly as spelled here, with their arity (see vllm_flags)."""

MANAGED_FLAGS: tuple[str, ...] = tuple(REFUSED_FLAGS)
"""Every option string that `extraArgs` may not contain (as `--flag` or `--flag=value`)."""

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
# Set from the download Job's fields; the serving pods' TIKTOKEN_ENCODINGS_BASE is a default
# (extraEnv may point it elsewhere).
HF_ENDPOINT = "HF_ENDPOINT"
TIKTOKEN_ENCODINGS_BASE = "TIKTOKEN_ENCODINGS_BASE"

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
    """True when `arg` is, or assigns (`--flag=value`), a managed or refused flag."""
    return arg.split("=", 1)[0] in REFUSED_FLAGS


NEGATIVE_NUMBER = r"^-[0-9]+$"
"""An item that is a value though it starts with `-`: argparse reads negative numbers as values,
but vLLM's own pre-pass reads any item starting with `-` and holding a `.` as a dotted config
flag (`-0.5` included), so only integers qualify; a negative decimal goes in `--flag=-0.5`."""


def is_flag_item(arg: str) -> bool:
    """True when vLLM's parser reads `arg` as a flag (as opposed to a value)."""
    return arg.startswith("-") and re.fullmatch(NEGATIVE_NUMBER, arg) is None


_VALUE_BODIES = {
    "int": r"-?[0-9]+",
    "float": r"-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?",
    # vLLM's human_readable_int: 1k, 25.6k (decimal suffixes), 1K (binary, no decimals).
    "size": r"-?[0-9]+|[0-9]+([.][0-9]+)?[kmgt]|[0-9]+[KMGT]",
    # --lora-modules: name=path (vLLM's JSON form is not admitted: its keys are checked at start).
    "lora": r"[^={\s][^=]*=.+",
    # vLLM parses these with json.loads or a pydantic dataclass: the content is checked when
    # vLLM starts, admission only that the value is a JSON object or list.
    "json": r"\s*[{\[](?s:.*)",
    "object": r"\s*[{](?s:.*)",
}
VALUE_NAMES = {
    "int": "an integer",
    "float": "a number",
    "size": "an integer, optionally with k, m, g, t or K, M, G, T",
    "json": "a JSON object or list",
    "object": "a JSON object",
    "lora": "name=path",
}


def _value_regex(kind: str) -> str:
    body, _, none = kind.partition("/")
    # optional_type in vLLM reads "" and "None" as None.
    return f"^(?:None|{_VALUE_BODIES[body]})?$" if none else f"^(?:{_VALUE_BODIES[body]})$"


VALUE_KINDS: dict[str, str] = {
    flag: kind for flag, kind in sorted(vllm_flags.VALUE_KINDS.items()) if flag in ALLOWED_FLAGS
}
"""Allowed flags whose value has a type, with the kind (int, float, json, optionally /none)."""
KIND_REGEX: dict[str, str] = {
    kind: _value_regex(kind) for kind in sorted(set(VALUE_KINDS.values()))
}
"""The RE2 (and Python fullmatch) pattern of each kind."""
VALUE_REGEX: dict[str, str] = {flag: KIND_REGEX[kind] for flag, kind in VALUE_KINDS.items()}
"""Allowed flags whose value has a type, with the pattern of it."""
CHOICES: dict[str, tuple[str, ...]] = {
    flag: values for flag, values in sorted(vllm_flags.CHOICES.items()) if flag in ALLOWED_FLAGS
}
"""Allowed flags whose value is one of a list."""


def value_error(flag: str, value: str) -> str | None:
    """Why vLLM's parser would refuse `value` for `flag`, or None."""
    if flag in VALUE_REGEX and re.fullmatch(VALUE_REGEX[flag], value) is None:
        kind = VALUE_KINDS[flag].partition("/")[0]
        return f"{flag} takes {VALUE_NAMES[kind]}, not {value[:64]!r}"
    if flag in CHOICES and value not in CHOICES[flag]:
        return f"{flag} takes one of {', '.join(CHOICES[flag])}, not {value[:64]!r}"
    return None


def extra_args_error(args: list[str] | tuple[str, ...]) -> tuple[int, str] | None:
    """The first item of `extraArgs` vLLM would refuse or the operator does not allow.

    The grammar (the CRD's CEL rules check the same): every item is one flag (`--flag` or
    `--flag=value`, spelled exactly as `vllm serve` knows it, no abbreviation, no `_`) or one
    value; a value follows the flag that takes it (several only for flags taking one or more)
    and has its type (integer, number, JSON object or list) or is one of its choices; a flag
    that needs a value has one. Returns (index, message) or None.
    """
    owner: int | None = None  # index of the flag the next value would belong to
    for i, arg in enumerate(args):
        if is_flag_item(arg):
            name, eq, value = arg.partition("=")
            if name in REFUSED_FLAGS:
                return i, f"{name} is not allowed: {REFUSED_FLAGS[name]}"
            if name not in ALLOWED_FLAGS:
                return i, (
                    f"{name} is not a flag of vllm serve {vllm_flags.VLLM_VERSION} (exact spelling "
                    "with - not _, no abbreviation, one flag or value per item)"
                )
            arity = ALLOWED_FLAGS[name]
            if eq and arity == "0":
                return i, f"{name} takes no value"
            if eq and (why := value_error(name, value)):
                return i, why
            if not eq and arity in ("1", "+") and (i + 1 == len(args) or is_flag_item(args[i + 1])):
                return i, f"{name} needs a value in the next item"
            owner = None if eq else i
            continue
        took = owner is not None and (ALLOWED_FLAGS[args[owner]] == "+" or owner == i - 1)
        if owner is None or ALLOWED_FLAGS[args[owner]] == "0" or not took:
            return i, f"value {arg[:64]!r} does not follow a flag that takes it"
        if why := value_error(args[owner], arg):
            return i, why
    return None
