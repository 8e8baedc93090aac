"""Leader election with a coordination.k8s.io Lease: of several replicas, one writes.

Every replica keeps its watch caches warm; only the holder of the Lease reconciles. The holder
renews the Lease every RENEW_SECONDS; a standby takes it over once it has not been renewed for
LEASE_SECONDS (a killed leader), or at once when the leader released it on a clean shutdown (a
rolling update). A leader that cannot renew stops writing before its Lease can expire, so two
replicas never write at the same time for longer than one in-flight request.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gptoss_operator.controller import Controller
from gptoss_operator.kube import Kube, KubeError

log = logging.getLogger(__name__)
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
RETRY_SECONDS = 2.0
# Stop writing when the last successful renewal is this old: well before the Lease expires.
STEP_DOWN_SECONDS = LEASE_SECONDS * 2 / 3
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    for fmt in (_FORMAT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(value, fmt).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


def identity() -> str:
    """This replica's name in the Lease: the pod name (or host name) and a unique suffix."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass
class LeaderElection:
    controller: Controller
    kube: Kube
    namespace: str
    name: str
    me: str = field(default_factory=identity)
    leading: bool = False
    _renewed: float = float("-inf")

    def _lease(self, current: dict[str, Any] | None, transitions: int) -> dict[str, Any]:
        now = _now().strftime(_FORMAT)
        spec = dict((current or {}).get("spec") or {})
        taking_over = spec.get("holderIdentity") != self.me
        spec |= {
            "holderIdentity": self.me,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if taking_over:
            spec["acquireTime"] = now
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def try_acquire(self) -> bool:
        """Take or renew the Lease; False when another replica holds it (blocking call)."""
        current = self.kube.get_lease(self.namespace, self.name)
        spec = (current or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or LEASE_SECONDS)
        expired = renewed is None or (_now() - renewed).total_seconds() > duration
        if current is not None and holder and holder != self.me and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + int(
            bool(holder) and holder != self.me
        )
        try:
            self.kube.write_lease(self._lease(current, transitions))
        except KubeError as error:
            if error.status == 409:  # another replica wrote it first
                return False
            raise
        return True

    def release(self) -> None:
        """On a clean shutdown: hand the Lease over now instead of after it expires."""
        if not self.leading:
            return
        self.controller.active = False
        current = self.kube.get_lease(self.namespace, self.name)
        if current and (current.get("spec") or {}).get("holderIdentity") == self.me:
            lease = self._lease(current, int(current["spec"].get("leaseTransitions") or 0))
            lease["spec"] |= {"holderIdentity": "", "leaseDurationSeconds": 1}
            self.kube.write_lease(lease)
        log.info("released the leader Lease %s/%s", self.namespace, self.name)

    def _lead(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        self.controller.active = leading
        if leading:
            log.info("leading (Lease %s/%s as %s)", self.namespace, self.name, self.me)
            self.controller.request_soon(self.controller.resources())
        else:
            log.warning("not leading any more: standing by")

    async def run(self) -> None:
        """Acquire and renew until cancelled."""
        self.controller.active = False
        log.info("standing by for the leader Lease %s/%s", self.namespace, self.name)
        while True:
            try:
                acquired = await asyncio.to_thread(self.try_acquire)
                if acquired:
                    self._renewed = time.monotonic()
            except Exception as error:  # an outage: keep trying, step down in time
                log.warning("leader election: %s", error)
                # Unknown whether the renewal landed: lead on only while the Lease surely holds.
                acquired = self.leading and time.monotonic() - self._renewed < STEP_DOWN_SECONDS
            self._lead(acquired)
            await asyncio.sleep(RENEW_SECONDS if self.leading else RETRY_SECONDS)
