"""Simulated GPU nodes for the test bed, shaped like real GPU servers.

Each node carries the `nvidia.com/gpu` capacity and the labels NVIDIA GPU feature discovery puts on
real nodes (`nvidia.com/gpu.product`, `.memory` in MiB, `.count`, `.family`, `.present`), and the
CPU and memory of the server it stands for. kwok manages every node with the annotation
`kwok.x-k8s.io/node: fake`; the real kube-scheduler packs GPUs onto them.

Standard library only, so the shell scripts can use it before any venv exists:

    python3 nodes.py default            # JSON List of the default topology, for kubectl create -f -
    python3 nodes.py node h100 my-node  # one node of a kind
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

KUBELET_VERSION = "v1.35.4"


@dataclass(frozen=True)
class ServerKind:
    """One kind of server: its GPUs (product label as GFD reports it) and host resources."""

    product: str
    family: str
    gpu_memory_mib: int
    gpus: int
    cpu: str
    memory: str
    instance_type: str
    gke_accelerator: str = ""
    """GKE's own GPU label value; a GKE node carries it instead of GPU feature discovery's."""


KINDS: dict[str, ServerKind] = {
    # DGX H100 / p5.48xlarge class: 8 x H100 SXM 80GB, 2 x 56-core Xeon, 2 TiB.
    "h100": ServerKind("NVIDIA-H100-80GB-HBM3", "hopper", 81559, 8, "224", "2048Gi", "p5.48xlarge"),
    # DGX A100 40GB / p4d.24xlarge class: 8 x A100 SXM4 40GB, 96 vCPU, 1.1 TiB.
    "a100-40gb": ServerKind(
        "NVIDIA-A100-SXM4-40GB", "ampere", 40960, 8, "96", "1152Gi", "p4d.24xlarge"
    ),
    # g6e.12xlarge class: 4 x L40S 48GB, 48 vCPU, 384 GiB.
    "l40s": ServerKind("NVIDIA-L40S", "ada-lovelace", 46068, 4, "48", "384Gi", "g6e.12xlarge"),
    # GKE g2-standard-48: 4 x L4, 48 vCPU, 192 GiB, labelled the GKE way (no GPU feature
    # discovery): https://cloud.google.com/kubernetes-engine/docs/how-to/gpus
    "l4-gke": ServerKind(
        "NVIDIA-L4", "ada-lovelace", 23034, 4, "48", "192Gi", "g2-standard-48", "nvidia-l4"
    ),
    # A plain CPU node for the operator itself and anything that needs no GPU.
    "cpu": ServerKind("", "", 0, 0, "32", "128Gi", "m7i.8xlarge"),
}

DEFAULT_TOPOLOGY: list[tuple[str, str]] = [
    ("gpu-h100-0", "h100"),
    ("gpu-h100-1", "h100"),
    ("gpu-a100-40gb-0", "a100-40gb"),
    ("gpu-l40s-0", "l40s"),
    ("cpu-0", "cpu"),
]


def node(name: str, kind: str) -> dict[str, object]:
    """A Node manifest for a server of `kind`, status included (nodes may set it on create)."""
    server = KINDS[kind]
    labels = {
        "type": "kwok",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": server.instance_type,
    }
    capacity = {
        "cpu": server.cpu,
        "memory": server.memory,
        "pods": "110",
        "ephemeral-storage": "3Ti",
    }
    if server.gke_accelerator:
        labels["cloud.google.com/gke-accelerator"] = server.gke_accelerator
    elif server.gpus:
        labels |= {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": server.product,
            "nvidia.com/gpu.family": server.family,
            "nvidia.com/gpu.memory": str(server.gpu_memory_mib),
            "nvidia.com/gpu.count": str(server.gpus),
        }
    if server.gpus:
        capacity["nvidia.com/gpu"] = str(server.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "nodeInfo": {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": "6.8.0-kwok",
                "osImage": "Ubuntu 24.04 LTS",
                "kubeProxyVersion": "",
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": KUBELET_VERSION,
                "containerRuntimeVersion": "containerd://kwok",
            },
        },
    }


def default_topology() -> dict[str, object]:
    """Two 8 x H100 nodes, one 8 x A100 40GB, one 4 x L40S and one CPU-only node."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [node(name, kind) for name, kind in DEFAULT_TOPOLOGY],
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["default"]:
        print(json.dumps(default_topology(), indent=1))
    elif sys.argv[1:2] == ["node"] and len(sys.argv) == 4:
        print(json.dumps(node(sys.argv[3], sys.argv[2]), indent=1))
    else:
        sys.exit("usage: nodes.py default | nodes.py node KIND NAME")
