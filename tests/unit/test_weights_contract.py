"""The download script against the huggingface_hub the pinned vLLM ships (vllm extra).

The script runs in the vLLM image as `python3 -c`; nothing else checks it before a cluster
does. Here it runs for real, in-process, for every index of a 3-part Job, with the network
replaced at huggingface_hub's two entry points it uses (`HfApi.model_info`, `hf_hub_download`)
by fakes that return the library's own types (`ModelInfo` built from the API's JSON shape). The
signatures and error classes it relies on are checked on the installed version.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from gptoss_operator.render import render_children
from gptoss_operator.render.weights import (
    EXIT_REVISION,
    EXIT_UNAUTHORIZED,
    EXIT_VERIFY,
    SCRIPT,
)
from gptoss_operator.validation import parse_spec

pytestmark = pytest.mark.contract
hf = pytest.importorskip("huggingface_hub")
COMMIT = "d" * 40
FILES = {
    "config.json": b"{}",
    "tokenizer.json": b"t" * 50,
    "model-00000-of-00002.safetensors": b"a" * 400,
    "model-00001-of-00002.safetensors": b"b" * 300,
    "model-00002-of-00002.safetensors": b"c" * 200,
    "original/model.safetensors": b"o" * 900,
    "metal/model.bin": b"m" * 900,
}
ENCODING = b"encoding\n"


def test_the_names_the_script_uses_exist_with_these_signatures() -> None:
    from huggingface_hub import HfApi, errors, hf_hub_download

    model_info = inspect.signature(HfApi.model_info).parameters
    assert {"repo_id", "revision", "files_metadata"} <= set(model_info)
    download = inspect.signature(hf_hub_download).parameters
    assert list(download)[:2] == ["repo_id", "filename"]
    assert "revision" in download
    # The except clauses are ordered by these relations.
    assert issubclass(errors.GatedRepoError, errors.RepositoryNotFoundError)
    assert issubclass(errors.RepositoryNotFoundError, errors.HfHubHTTPError)
    assert issubclass(errors.RevisionNotFoundError, errors.HfHubHTTPError)
    assert not issubclass(errors.RevisionNotFoundError, errors.RepositoryNotFoundError)
    compile(SCRIPT, "download", "exec")


def _env(spec: dict[str, Any], tmp: Path) -> dict[str, str]:
    (job,) = [c for c in render_children("m", "ns", parse_spec(spec)) if c["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["python3", "-c"]
    assert container["command"][2] == SCRIPT
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    encodings = tmp / "mirror"
    encodings.mkdir(exist_ok=True)
    (encodings / "o200k_base.tiktoken").write_bytes(ENCODING)
    return env | {
        "HF_HOME": str(tmp / "models"),
        "GPTOSS_MARKER_DIR": str(tmp / "models" / "marker"),
        "GPTOSS_ENCODINGS_DIR": str(tmp / "models" / "tiktoken"),
        "GPTOSS_ENCODINGS_URL": encodings.as_uri(),
        "GPTOSS_ENCODINGS_SHA256": hashlib.sha256(ENCODING).hexdigest(),
        "GPTOSS_TERMINATION_LOG": str(tmp / "termination-log"),
    }


def _fake_hub(monkeypatch: pytest.MonkeyPatch, tmp: Path, corrupt: str = "") -> list[str]:
    from huggingface_hub.hf_api import ModelInfo

    fetched: list[str] = []

    def model_info(self: Any, repo_id: str, *, revision: str | None = None, **kw: Any) -> Any:
        assert kw.get("files_metadata") is True
        siblings = []
        for name, data in FILES.items():
            sibling: dict[str, Any] = {"rfilename": name, "size": len(data)}
            if name.endswith((".safetensors", ".bin")):
                sha = hashlib.sha256(data).hexdigest()
                sibling["lfs"] = {"size": len(data), "sha256": sha, "pointerSize": 134}
            siblings.append(sibling)
        return ModelInfo(id=repo_id, sha=COMMIT, siblings=siblings)

    def download(repo_id: str, filename: str, *, revision: str | None = None) -> str:
        fetched.append(filename)
        path = tmp / "models" / "hub" / "snapshots" / COMMIT / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * len(FILES[filename]) if filename == corrupt else FILES[filename])
        return str(path)

    monkeypatch.setattr(hf.HfApi, "model_info", model_info)
    monkeypatch.setattr(hf, "hf_hub_download", download)
    return fetched


def _run(env: dict[str, str], index: int, monkeypatch: pytest.MonkeyPatch) -> int:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
    try:
        exec(compile(SCRIPT, "download", "exec"), {"__name__": "__main__"})  # noqa: S102
    except SystemExit as done:
        return int(done.code or 0)
    return 0


SPEC = {"model": {"name": "gpt-oss-20b", "revision": "v1"}, "modelCache": {"size": "50Gi"}}


def test_three_parts_fetch_every_file_but_the_extra_copies_once_then_mark_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(SPEC, tmp_path)
    assert env["GPTOSS_PARTS"] == "3"
    fetched = _fake_hub(monkeypatch, tmp_path)
    marker = Path(env["GPTOSS_MARKER_DIR"])
    for index in range(3):
        assert not (marker / "complete").exists()
        assert _run(env, index, monkeypatch) == 0
    assert sorted(fetched) == sorted(f for f in FILES if not f.startswith(("original/", "metal/")))
    done = json.loads((marker / "complete").read_text())
    assert done == {"repository": "openai/gpt-oss-20b", "revision": "v1", "commit": COMMIT,
                    "parts": 3}  # fmt: skip
    # One shard per part: the split is by size, largest first.
    parts = [json.loads((marker / "parts" / f"3-{i}").read_text())["files"] for i in range(3)]
    assert [p[0] for p in parts] == sorted(f for f in FILES if f.startswith("model-"))
    assert (Path(env["GPTOSS_ENCODINGS_DIR"]) / "o200k_base.tiktoken").read_bytes() == ENCODING


def test_a_corrupt_file_fails_verification_and_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(SPEC, tmp_path)
    _fake_hub(monkeypatch, tmp_path, corrupt="model-00000-of-00002.safetensors")
    assert _run(env, 0, monkeypatch) == EXIT_VERIFY
    assert "does not match its sha256" in (tmp_path / "termination-log").read_text()
    assert not (tmp_path / "models" / "hub" / "snapshots" / COMMIT / "model-00000-of-00002"
                ".safetensors").exists()  # fmt: skip


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        ("GatedRepoError", EXIT_UNAUTHORIZED, "is gated"),
        ("RevisionNotFoundError", EXIT_REVISION, "revision v1 of openai/gpt-oss-20b not found"),
    ],
)
def test_hub_errors_become_exit_codes_and_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: str, code: int, says: str
) -> None:
    import httpx2  # huggingface_hub's HTTP client in this version

    env = _env(SPEC, tmp_path)
    _fake_hub(monkeypatch, tmp_path)
    request = httpx2.Request("GET", "https://huggingface.co/api/models/openai/gpt-oss-20b")
    response = httpx2.Response(401 if code == EXIT_UNAUTHORIZED else 404, request=request)
    exc = getattr(hf.errors, error)("refused", response=response)

    def refuse(*_: Any, **__: Any) -> Any:
        raise exc

    monkeypatch.setattr(hf.HfApi, "model_info", refuse)
    assert _run(env, 0, monkeypatch) == code
    assert says in (tmp_path / "termination-log").read_text()


def test_a_mirror_reaches_huggingface_hub_through_hf_endpoint() -> None:
    """spec.modelCache.download.endpoint is HF_ENDPOINT, which huggingface_hub reads."""
    spec = {**SPEC, "modelCache": {"size": "50Gi", "download": {"endpoint": "https://m.example"}}}
    (job,) = [c for c in render_children("m", "ns", parse_spec(spec)) if c["kind"] == "Job"]
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["HF_ENDPOINT"] == "https://m.example"
    assert "HF_ENDPOINT" in inspect.getsource(hf.constants)
