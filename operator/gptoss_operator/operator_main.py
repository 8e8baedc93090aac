"""`gptoss-operator run`: start Kopf with the handlers, cluster-wide or on some namespaces."""

from __future__ import annotations

import argparse

import kopf

import gptoss_operator.handlers  # noqa: F401  (registers the handlers)


def run(args: argparse.Namespace) -> None:
    """Run until stopped; kubeconfig from KUBECONFIG/~/.kube or the pod's service account."""
    namespaces = list(args.namespace or [])
    kopf.configure(verbose=args.verbose)
    kopf.run(
        # One replica (the chart's Deployment uses Recreate): no peering between operators.
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=args.liveness,
    )
