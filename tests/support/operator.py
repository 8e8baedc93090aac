"""The operator as a real process (`python -m gptoss_operator run`), for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from support import process
from support.testbed import wait_until


class OperatorProcess:
    """Start, stop and restart the operator against a kubeconfig; its log goes to `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path, *args: str) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = args  # no --namespace: every namespace
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port = process.free_port()  # kept across restarts: /metrics at this port

    def start(self) -> None:
        """Start and wait until Kopf's liveness endpoint answers (indexes loaded, watching)."""
        self.port = process.free_port()
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
        url = f"http://127.0.0.1:{self.port}/healthz"
        return process.answers(self.proc, url, "the operator", self.log_path)

    def scrape(self) -> str:
        """The operator's /metrics text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        process.stop(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        return process.log_tail(self.log_path, lines)
