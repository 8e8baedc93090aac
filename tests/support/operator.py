"""The operator as a real process (`python -m gptoss_operator run`), for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from support.testbed import wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """Start, stop and restart the operator against a kubeconfig; its log goes to `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path, *args: str) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = args  # no --namespace: every namespace
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port = _free_port()  # kept across restarts: /metrics at this port

    def start(self) -> None:
        """Start and wait until Kopf's liveness endpoint answers (indexes loaded, watching)."""
        self.port = _free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gptoss_operator",
                    "run",
                    *self.args,
                    "--liveness",
                    f"http://127.0.0.1:{self.port}/healthz",
                    "--metrics-address=127.0.0.1",
                    f"--metrics-port={self.metrics_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until(
            self._alive, 60, f"the operator to answer on :{self.port} (log: {self.log_path})"
        )

    def _alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"operator exited; log: {self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def scrape(self) -> str:
        """The operator's /metrics text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
