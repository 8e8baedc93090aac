"""A real Prometheus (built from the Go module proxy by tests/testbed/build.sh prometheus) on
127.0.0.1, scraping given targets every second with the `namespace` and `pod` labels a
PodMonitor would attach. Used as a context manager; its data and log live in the test bed."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from support import process
from support.testbed import Testbed, wait_until


class Prometheus:
    def __init__(self, testbed: Testbed, targets: list[tuple[str, dict[str, str]]]) -> None:
        self.binary = testbed.bins["PROMETHEUS_BIN"] / "prometheus"
        self.dir = testbed.state / "prometheus"
        self.log = testbed.state / "logs" / "prometheus.log"
        self.targets = targets
        self.port = process.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        # Fresh data: series of an earlier run would still answer within the 5-minute lookback.
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "vllm",
                    "static_configs": [
                        {"targets": [target], "labels": labels} for target, labels in self.targets
                    ],
                }
            ],
        }
        path: Path = self.dir / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={path}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, 60, f"Prometheus on :{self.port} (log: {self.log})", 0.5)
        return self

    def _ready(self) -> bool:
        return process.answers(self.proc, f"{self.url}/-/ready", "Prometheus", self.log)

    def value(self, query: str) -> float | None:
        """The instant value of `query` (None: an empty result)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310
            result = json.load(r)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def __exit__(self, *exc: object) -> None:
        process.stop(self.proc)
