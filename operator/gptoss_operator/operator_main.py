"""`gptoss-operator run`: start Kopf with the handlers, cluster-wide or on some namespaces."""

from __future__ import annotations

import argparse
import logging

import kopf

import gptoss_operator.handlers  # noqa: F401  (registers the handlers)
from gptoss_operator import memory, settings


def run(args: argparse.Namespace) -> None:
    """Run until stopped; kubeconfig from KUBECONFIG/~/.kube or the pod's service account."""
    namespaces = list(args.namespace or [])
    try:
        labels = settings.parse_gpu_node_labels(args.gpu_node_labels)
    except ValueError as error:
        raise SystemExit(f"gptoss-operator run: --gpu-node-labels: {error}") from None
    lease_namespace, _, lease_name = args.lease.partition("/")
    if not (lease_namespace and lease_name):
        raise SystemExit("gptoss-operator run: --lease: expected NAMESPACE/NAME")
    settings.configure(
        settings.OperatorSettings(
            gpu_node_labels=labels,
            namespaces=tuple(namespaces),
            resync_seconds=args.resync_seconds,
            lease=(lease_namespace, lease_name) if args.leader_elect else None,
            metrics=(args.metrics_address, args.metrics_port) if args.metrics_port else None,
        )
    )
    memory.limit_malloc_arenas()  # before any thread starts
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Kopf logs every handled watch event at INFO ("Handler ... succeeded"); the default
        # level should say what the operator did (its writes, transitions and failures).
        for name in ("kopf.objects", "kopf.activities.probe"):
            logging.getLogger(name).setLevel(logging.WARNING)
    kopf.run(
        # Kopf's peering pauses operators by priority; leader election (--leader-elect) is
        # this operator's own, with a Lease, as Kubernetes' controllers do it.
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
