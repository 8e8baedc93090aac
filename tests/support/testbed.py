"""Test-side handle on the test bed: kubectl, polling, nodes and the apiserver's audit log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
TESTBED_SCRIPTS = REPO / "tests" / "testbed"

T = TypeVar("T")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def binaries() -> dict[str, Path]:
    """K8S_BIN, ETCD_BIN, KWOK_BIN, HELM_BIN from build.sh (builds what is missing)."""
    out = subprocess.run(
        ["bash", str(TESTBED_SCRIPTS / "build.sh"), "all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.split())}


@dataclass
class Testbed:
    """A running test bed: its state directory, binaries and admin kubeconfig."""

    __test__ = False  # a helper, not a test class

    state: Path
    bins: dict[str, Path]
    started_here: bool = False
    _audit_offset: int = field(default=0, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def operator_kubeconfig(self) -> Path:
        """Kubeconfig of the `gptoss-operator` user, whose writes the audit log tells apart."""
        return self.state / "operator.kubeconfig"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as the admin; on failure with check=True, raise with its stderr."""
        proc = subprocess.run(
            [str(self.bins["K8S_BIN"] / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def apply(
        self, namespace: str, manifest: str | dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl apply` a manifest (JSON/YAML text, or an object) into `namespace`."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("-n", namespace, "apply", "-f", "-", input=text, check=check)

    def get(self, *args: str) -> Any:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bins["HELM_BIN"] / "helm"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    # --- nodes -----------------------------------------------------------------------------
    def add_node(self, name: str, kind: str) -> None:
        """Add a simulated node of a kind in tests/testbed/nodes.py (h100, a100-40gb, l40s, cpu)."""
        manifest = subprocess.run(
            ["python3", str(TESTBED_SCRIPTS / "nodes.py"), "node", kind, name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.kubectl("create", "-f", "-", input=manifest)
        self.kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=60s")

    def remove_node(self, name: str) -> None:
        self.kubectl("delete", "node", name, "--wait=true")

    @contextlib.contextmanager
    def extra_nodes(
        self, prefix: str, kind: str, count: int, labels: dict[str, str] | None = None
    ) -> Iterator[list[str]]:
        """`count` more nodes of `kind` (with extra `labels`) for the duration of a `with` block."""
        names = [f"{prefix}-{i}" for i in range(count)]
        for name in names:
            self.add_node(name, kind)
            if labels:
                self.kubectl("label", "node", name, *(f"{k}={v}" for k, v in labels.items()))
        try:
            yield names
        finally:
            for name in names:
                self.remove_node(name)

    # --- faults --------------------------------------------------------------------------------
    def component_pid(self, name: str) -> int:
        return int((self.state / "pids" / f"{name}.pid").read_text())

    def kill_component(self, name: str) -> tuple[list[str], str, dict[str, str]]:
        """SIGKILL a control-plane process; returns its command line, directory and environment
        (as /proc knew them) for `start_component`."""
        pid = self.component_pid(name)
        proc = Path(f"/proc/{pid}")
        argv = [a.decode() for a in proc.joinpath("cmdline").read_bytes().split(b"\0") if a]
        cwd = os.readlink(proc / "cwd")
        env = dict(
            e.decode().split("=", 1)
            for e in proc.joinpath("environ").read_bytes().split(b"\0")
            if b"=" in e
        )
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 30, f"{name} ({pid}) to exit")
        return argv, cwd, env

    def start_component(self, name: str, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        """Start a component again with exactly the command line it had, logging where it did."""
        with (self.state / "logs" / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.state / "pids" / f"{name}.pid").write_text(str(proc.pid))

    def apiserver_ready(self) -> bool:
        return self.kubectl("get", "--raw=/readyz", check=False, timeout=5).returncode == 0

    def etcdctl(self, *args: str) -> str:
        pid = self.component_pid("etcd")
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        url = next(a.split("=", 1)[1] for a in argv if a.startswith("--listen-client-urls="))
        return subprocess.run(
            [str(self.bins["ETCD_BIN"] / "etcdctl"), f"--endpoints={url}", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    # --- audit log ---------------------------------------------------------------------------
    @property
    def audit_log(self) -> Path:
        return self.state / "logs" / "audit.log"

    def _audit_files(self) -> list[Path]:
        """The audit log's files, oldest first: the apiserver rotates it at 100 MB (into
        audit-<time>.log, kept), so a position is a byte count across all of them."""
        rotated = sorted(self.audit_log.parent.glob("audit-*.log"))
        return [*rotated, self.audit_log] if self.audit_log.exists() else rotated

    def audit_mark(self) -> int:
        """A position in the audit log; `audit_writes(since=mark)` reads what came after it."""
        return sum(f.stat().st_size for f in self._audit_files())

    def _audit_lines(self, since: int, needle: str | None) -> Iterator[bytes]:
        skip = since
        for path in self._audit_files():
            size = path.stat().st_size
            if skip >= size:
                skip -= size
                continue
            with path.open("rb") as log:
                log.seek(skip)
                skip = 0
                for line in log:
                    if line.strip() and (needle is None or needle.encode() in line):
                        yield line

    def audit_events(self, since: int, user: str | None = None) -> list[dict[str, Any]]:
        """Completed requests the apiserver recorded after `since` (writes, and the operator's
        lists), optionally of one user."""
        needle = None if user is None else json.dumps(user)
        events = (json.loads(line) for line in self._audit_lines(since, needle))
        return [
            e
            for e in events
            if e.get("stage") == "ResponseComplete"
            and (user is None or e.get("user", {}).get("username") == user)
        ]

    def audit_writes(
        self, since: int, user: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Write requests (create/update/patch/delete) the apiserver recorded after `since`
        (in `namespace` when given); server-side dry-runs store nothing and are counted apart
        (`audit_dry_runs`)."""
        return [
            e
            for e in self.audit_events(since, user)
            if e.get("verb") in WRITE_VERBS and not _dry_run(e) and _in(e, namespace)
        ]

    def writes_during(self, seconds: float, user: str, namespace: str) -> list[str]:
        """The writes `user` makes in `namespace` over the next `seconds`, described: an idle
        window, which is the measurement itself (nothing to poll for)."""
        mark = self.audit_mark()
        time.sleep(seconds)
        return [describe_write(e) for e in self.audit_writes(mark, user, namespace)]

    def audit_dry_runs(
        self, since: int, user: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Server-side dry-run requests recorded after `since` (in `namespace` when given)."""
        return [e for e in self.audit_events(since, user) if _dry_run(e) and _in(e, namespace)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of this process stays a zombie until reaped; it is not running.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _in(event: dict[str, Any], namespace: str | None) -> bool:
    return namespace is None or event.get("objectRef", {}).get("namespace") == namespace


def _dry_run(event: dict[str, Any]) -> bool:
    return "dryRun=All" in event.get("requestURI", "")


def describe_write(event: dict[str, Any]) -> str:
    """One audit event as `verb resource/subresource ns/name -> code`, for failure messages."""
    ref = event.get("objectRef", {})
    resource = ref.get("resource", "?") + (
        f"/{ref['subresource']}" if ref.get("subresource") else ""
    )
    code = event.get("responseStatus", {}).get("code")
    return (
        f"{event.get('verb')} {resource} {ref.get('namespace', '')}/{ref.get('name', '')} -> {code}"
    )
