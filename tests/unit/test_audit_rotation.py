"""The test bed's audit-log reader: a mark taken before the apiserver rotates its log (at 100 MB,
into audit-<time>.log) still finds every request after it, once."""

from __future__ import annotations

import json
from pathlib import Path

from support.testbed import Testbed


def _event(name: str) -> bytes:
    event = {
        "stage": "ResponseComplete",
        "verb": "create",
        "user": {"username": "gptoss-operator"},
        "objectRef": {"resource": "deployments", "namespace": "ns", "name": name},
        "requestURI": "/apis/apps/v1/namespaces/ns/deployments",
    }
    return json.dumps(event).encode() + b"\n"


def test_a_mark_survives_a_rotation(tmp_path: Path) -> None:
    bed = Testbed(state=tmp_path, bins={})
    logs = tmp_path / "logs"
    logs.mkdir()
    bed.audit_log.write_bytes(_event("before"))
    mark = bed.audit_mark()
    with bed.audit_log.open("ab") as log:
        log.write(_event("a"))
    # The rotation: the file moves aside whole, a new one starts.
    bed.audit_log.rename(logs / "audit-2026-11-29T14-00-00.000.log")
    bed.audit_log.write_bytes(_event("b") + _event("c"))
    names = [e["objectRef"]["name"] for e in bed.audit_writes(since=mark, user="gptoss-operator")]
    assert names == ["a", "b", "c"]
    assert bed.audit_writes(since=bed.audit_mark()) == []
