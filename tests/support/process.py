"""Processes the tests start themselves (the operator, Prometheus, KEDA, the image's
operator): a free port for them, whether they answer, and stopping them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def answers(proc: subprocess.Popen[bytes] | None, url: str, name: str, log: Path) -> bool:
    """Whether `url` answers 200 yet; once `proc` has exited, an AssertionError with its log."""
    if proc is None or proc.poll() is not None:
        raise AssertionError(f"{name} exited; log: {log_tail(log)}")
    try:
        with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (a local URL)
            return bool(r.status == 200)
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20, group: bool = False) -> None:
    """SIGTERM, and SIGKILL if it has not exited after `timeout` s. `group`: its whole process
    group (a process started with start_new_session, whose children must go too)."""
    if proc is None or proc.poll() is not None:
        return

    def send(sig: signal.Signals) -> None:
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()
